"""Checkpoint sync through TRL's own push options and resuming on a fresh machine; access checks before a
run is queued; pausing the Space when the queue has been idle."""

import json
from pathlib import Path

import pytest
from fakehub.fixture import ALICE, ALICE_READ, BOB
from helpers import RECIPES, read_metrics, read_summary, train

SYNC = [
    "training.push_to_hub=true",
    "training.hub_model_id=alice/sync-ckpt",
    "training.hub_strategy=checkpoint",
    "training.hub_private_repo=true",
    "training.save_steps=5",
    "training.logging_steps=1",
]


@pytest.fixture
def alice(fake_hub_env, monkeypatch, home):
    monkeypatch.setenv("HF_TOKEN", ALICE)
    return fake_hub_env


def test_checkpoints_sync_to_a_private_repo_and_a_fresh_machine_resumes_from_it(alice, tmp_path):
    from huggingface_hub import HfApi

    first = tmp_path / "machine-a" / "run"
    assert train(RECIPES / "demo-sft.yaml", first, *SYNC, "training.max_steps=10") == 0
    repo = alice.repo("alice/sync-ckpt")
    assert repo.meta["private"] is True
    files = HfApi().list_repo_files("alice/sync-ckpt")
    assert "last-checkpoint/trainer_state.json" in files and "run_config.yaml" in files
    assert "last-checkpoint/adapter_model.safetensors" in files and "last-checkpoint/optimizer.pt" in files
    assert read_summary(first)["checkpoint_sync"] == {"repo": "alice/sync-ckpt"}

    # A fresh machine: an empty run folder, same config with more steps to go.
    second = tmp_path / "machine-b" / "run"
    assert train(RECIPES / "demo-sft.yaml", second, *SYNC, "training.max_steps=20") == 0
    summary = read_summary(second)
    assert summary["checkpoint_sync"]["fetched"].endswith("checkpoint-10")
    assert summary["global_step"] == 20
    rows = [r for r in read_metrics(second) if "loss" in r]
    steps = [r["step"] for r in rows]
    assert steps == list(range(1, 21))  # steps 1-10 rebuilt from the fetched checkpoint, 11-20 trained here
    first_rows = {r["step"]: r["loss"] for r in read_metrics(first) if "loss" in r}
    assert all(rows[i]["loss"] == pytest.approx(first_rows[i + 1]) for i in range(10))
    from huggingface_hub import hf_hub_download

    state = json.loads(Path(hf_hub_download("alice/sync-ckpt", "last-checkpoint/trainer_state.json")).read_text())
    assert state["global_step"] == 20  # the resumed run kept syncing
    for root in (tmp_path, alice.store.root):  # run folders, logs, pushed checkpoints: no token anywhere
        leaks = [p for p in root.rglob("*") if p.is_file() and ALICE.encode() in p.read_bytes()]
        assert not leaks


def test_a_checkpoint_repo_of_another_run_is_refused(alice, tmp_path):
    sync = [s.replace("alice/sync-ckpt", "alice/sync-other") for s in SYNC]
    assert train(RECIPES / "demo-sft.yaml", tmp_path / "a", *sync, "training.max_steps=5") == 0
    assert train(RECIPES / "demo-sft.yaml", tmp_path / "b", *sync, "training.learning_rate=0.001") == 2
    assert "holds a different run" in read_summary(tmp_path / "b")["error"]


# --- access checks (pull) -------------------------------------------------------------------------------------


@pytest.fixture
def repos(fake_hub_env):
    hub = fake_hub_env
    hub.add_repo("alice/open-model", {"config.json": "{}"})
    hub.add_repo("alice/secret-data", {"train.jsonl": '{"a": 1}\n'}, "dataset", private=True)
    hub.add_repo("alice/gated-model", {"config.json": "{}"}, gated=True)
    return hub


@pytest.mark.parametrize(
    ("repo", "repo_type", "token", "expected"),
    [
        ("alice/open-model", "model", None, None),
        ("alice/secret-data", "dataset", ALICE_READ, None),
        ("alice/secret-data", "dataset", None, "The dataset alice/secret-data was not found or is private"),
        ("alice/secret-data", "dataset", BOB, "was not found or is private: check the id for typos."),
        ("alice/no-such-model", "model", ALICE, "The model alice/no-such-model was not found"),
        ("alice/gated-model", "model", BOB, "is gated and your account has not been granted access"),
        ("alice/open-model", "model", "hf_revoked_token", "token was rejected (401)"),
    ],
)
def test_access_check_says_one_sentence(repos, repo, repo_type, token, expected):
    from hub.errors import HubError
    from hub.pull import check_access

    if expected is None:
        check_access(repo, repo_type, token)
        return
    with pytest.raises(HubError) as err:
        check_access(repo, repo_type, token)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_access_check_without_network(monkeypatch, tmp_path):
    from fakehub.fixture import use_fake_hub

    from hub.errors import HubError
    from hub.pull import check_access

    use_fake_hub("http://127.0.0.1:9", monkeypatch, tmp_path)  # nothing listens on the discard port
    with pytest.raises(HubError) as err:
        check_access("alice/open-model", "model", ALICE)
    assert "could not be reached" in str(err.value)


def test_the_app_checks_access_before_queueing(repos, tmp_path):
    from hub.errors import HubError
    from hub.pull import check_run_sources
    from trainers import config as config_mod

    cfg = config_mod.load(RECIPES / "demo-sft.yaml", ["model.name_or_path=alice/gated-model"])
    with pytest.raises(HubError, match="gated"):
        check_run_sources(cfg, BOB)
    check_run_sources(config_mod.load(RECIPES / "demo-sft.yaml", []), None)  # local model + files: no Hub call


# --- the Space pauses itself when idle ---------------------------------------------------------------------------


def test_space_pauses_after_the_queue_has_been_idle(fake_hub_env, tmp_path):
    from huggingface_hub import HfApi

    from hub.space import idle_hook
    from jobs.runner import Worker

    fake_hub_env.add_repo("alice/studio", {"README.md": "---\nsdk: gradio\n---\n"}, "space")
    assert idle_hook({"SPACE_ID": "alice/studio"}) == (None, 0.0)  # opt-in only
    pause, delay = idle_hook(
        {"STUDIO_PAUSE_WHEN_IDLE": "1", "SPACE_ID": "alice/studio", "HF_TOKEN": ALICE, "STUDIO_PAUSE_AFTER_S": "0"}
    )
    assert delay == 0.0

    calls = []
    worker = Worker(home=tmp_path / "home", poll_s=0.01, on_idle=lambda: (calls.append(1), pause()), idle_after_s=0)
    busy = iter([True, True, False, False, False, True, False, False])
    worker.busy = lambda: next(busy, False)
    loops = iter(range(12))
    worker.run(stop=lambda: next(loops, None) is None)
    assert len(calls) == 2  # once per time the queue emptied, not on every idle poll
    assert HfApi(token=ALICE).get_space_runtime("alice/studio").stage == "PAUSED"


def test_pause_failure_is_logged_not_raised(fake_hub_env, caplog):
    from hub.space import idle_hook

    fake_hub_env.add_repo("alice/studio2", {"README.md": "---\nsdk: gradio\n---\n"}, "space")
    pause, _ = idle_hook({"STUDIO_PAUSE_WHEN_IDLE": "1", "SPACE_ID": "alice/studio2", "HF_TOKEN": BOB})
    pause()
    assert "Could not pause the Space" in caplog.text and "(403)" in caplog.text
