"""Shared fixtures (an isolated STUDIO_HOME, the offline demo model, the fake Hub) and the test tiers.

Helpers that test modules import live in tests/helpers.py.  Tiers: `python -m pytest` runs everything (CI);
`python -m pytest -m "not slow"` is the edit loop's fast subset (under 90 s on 2 cores): the tests listed in SLOW
below are marked slow here, in one place, instead of in each module."""

import os
import tempfile
from pathlib import Path

import pytest
from helpers import PLANTED_TOKEN, RECIPES, read_summary, train

os.environ["STUDIO_HOME"] = tempfile.mkdtemp(prefix="studio-test-")
os.environ["HF_HUB_CACHE"] = os.path.join(os.environ["STUDIO_HOME"], "hub-cache")  # before any HF import
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("STUDIO_QUIET", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: the suite's processes share the cores
os.environ["HF_TOKEN"] = PLANTED_TOKEN  # every run inherits it; none may write it anywhere (see below)

from browser_kit import playwright_api, studio  # noqa: E402, F401 - Chromium + the app on a port (browser tests)
from fakehub.fixture import fake_hub, fake_hub_env  # noqa: E402, F401 - the loopback fake Hub, after the env is set


@pytest.fixture(scope="session")
def demo_model_dir():
    from trainers.models import resolve_model_path

    return Path(resolve_model_path("demo-tiny"))


@pytest.fixture
def home(tmp_path, demo_model_dir, monkeypatch):
    """A fresh STUDIO_HOME for one test, reusing the session's demo model."""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "demo-tiny").symlink_to(demo_model_dir)
    monkeypatch.setenv("STUDIO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def sft_then_dpo(tmp_path_factory, demo_model_dir):
    """The shipped demo-sft-then-dpo recipe, run once: (sft_run_dir, dpo_run_dir)."""
    dpo_dir = tmp_path_factory.mktemp("runs") / "sft-then-dpo"
    assert train(RECIPES / "demo-sft-then-dpo.yaml", dpo_dir) == 0
    sft_dir = Path(read_summary(dpo_dir)["init_from"]).parent
    return sft_dir, dpo_dir


@pytest.fixture(scope="session", autouse=True)
def no_token_on_disk(tmp_path_factory):
    """After all tests, no file under STUDIO_HOME or any test's folder holds the planted token."""
    yield
    roots = [Path(os.environ["STUDIO_HOME"]), tmp_path_factory.getbasetemp()]
    leaks = [
        str(path)
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and PLANTED_TOKEN.encode() in path.read_bytes()
    ]
    assert not leaks, f"the HF token was written to {leaks[:5]}"


# --- test tiers ----------------------------------------------------------------------------------------------
# Marked slow: setup + call over ~1.5 s on 2 shared cores (measured with `--durations=0`), and every test that
# uses one of SLOW_FIXTURES (each trains or starts a server once, and the first test to ask pays for it).  An
# entry is a module ("test_x.py": all its tests) or one test ("test_x.py::test_y": all its parameters); every
# browser test module (test_browser*.py) is slow.
# Everything else is the fast subset: `python -m pytest -m "not slow"`, under 90 s on 2 cores.
SLOW_FIXTURES = {
    "sft_then_dpo",  # trains the demo SFT then DPO recipe
    "comparison",  # test_evaluation: trains and evaluates the SFT and DPO arms
    "space",  # test_shared_space: starts the shared Space server
    "alice_run",
}
SLOW = {
    "test_browser.py",
    "test_resume.py",
    "test_bad_inputs.py::test_no_traceback_reaches_stderr_of_a_real_process",
    "test_data_bad_inputs.py::test_enormous_row_loads_and_is_flagged",
    "test_data_formats.py::test_fixture_is_detected_converted_and_trains",
    "test_preference_methods.py::test_kto_separates_held_out_desirable_from_undesirable_replies",
    "test_forgetting.py",
    "test_grpo.py::test_grpo_raises_the_held_out_reward_of_the_demo_model",
    "test_llm_judge.py::test_the_local_backend_runs_the_demo_model_offline",
    "test_preference_methods.py::test_reference_free_methods_raise_held_out_preference_accuracy",
    "test_realworld_data.py::test_a_dpo_run_reports_the_rows_it_trained_and_a_held_out_loss",
    "test_doctor_bounded.py::test_without_max_length_measuring_is_bounded_too",
    "test_estimate.py::test_llama_8b_counts_on_the_meta_device",
    "test_fakehub.py::test_snapshot_download_and_from_pretrained",
    "test_hub_sync.py::test_a_checkpoint_repo_of_another_run_is_refused",
    "test_hub_sync.py::test_checkpoints_sync_to_a_private_repo_and_a_fresh_machine_resumes_from_it",
    "test_jobs.py::test_cancel_mid_run_keeps_the_last_checkpoint",
    "test_jobs.py::test_five_runs_complete_in_submission_order",
    "test_jobs.py::test_out_of_memory_run_gets_the_memory_message",
    "test_jobs.py::test_restarted_worker_resumes_an_interrupted_run",
    "test_jobs.py::test_sigkilled_trainer_is_reported_as_killed",
    "test_jobs.py::test_token_reaches_the_child_only_through_its_environment",
    "test_methods.py::test_method_end_to_end",
    "test_reliability.py::test_disk_full_during_a_save_is_one_sentence_and_resumes",
    "test_reliability.py::test_disk_full_through_the_queue_is_one_sentence_everywhere_and_resumes",
    "test_reliability.py::test_kill_inside_a_checkpoint_save_resumes_from_the_previous_complete_one",
    "test_reliability.py::test_two_kills_in_a_row_and_a_full_fine_tune",
    "test_scale.py::test_dpo_runs_under_two_processes",
    "test_scale.py::test_tensorboard_logging_writes_event_files_offline",
    "test_scale.py::test_two_processes_of_batch_b_match_one_process_of_batch_2b",
    "test_scale.py::test_two_processes_write_the_run_folder_once_and_resume",
    "test_threads.py::test_a_queued_run_trains_with_the_workers_thread_share_and_records_it",
    "test_ui.py::test_client_submits_polls_and_survives_a_closed_client",
    "test_ui.py::test_sft_then_dpo_queues_two_linked_runs",
    "test_variants.py::test_rerunning_a_finished_runs_config_reproduces_its_losses",
    "test_variants.py::test_variant_trains_a_few_steps",
    "test_worker_lease.py::test_a_starting_worker_never_relaunches_a_run_another_live_worker_claimed",
    "test_worker_lease.py::test_two_workers_started_together_launch_each_run_once",
}


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.nodeid.split("::")[0].rsplit("/", 1)[-1]
        test = item.nodeid.split("::", 1)[-1].split("[")[0]
        named = module in SLOW or f"{module}::{test}" in SLOW or module.startswith("test_browser")
        if named or SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
