"""CPU threads are decided deliberately (issue 20) and a child's environment is an allowlist (issue 13.5)."""

import json

from helpers import RECIPES, record_child_env

from core import threads
from jobs.api import JobQueue
from jobs.childenv import child_env
from jobs.runner import Worker

QUICK = ["data.eval_source=null", "data.eval_size=0", "training.max_steps=2", "training.logging_steps=1"]


def test_child_threads_share_the_cores_left_by_the_parent():
    assert threads.child_threads(reserve=1, siblings=1, cores=2) == 1
    assert threads.child_threads(reserve=4, siblings=2, cores=16) == 6
    assert threads.child_threads(reserve=8, siblings=4, cores=4) == 1  # never zero
    assert threads.app_share(2) == 1 and threads.app_share(16) == 4


def test_the_users_omp_num_threads_wins_over_the_parents_hint():
    assert threads.decide({"OMP_NUM_THREADS": "3", threads.HINT: "1"})["threads"] == 3
    plan = threads.decide({threads.HINT: "1"})
    assert plan["threads"] == 1 and plan["wait_policy"] == "PASSIVE" and "STUDIO_CPU_THREADS" in plan["source"]
    assert threads.decide({})["threads"] == threads.available_cores()
    assert threads.decide({"OMP_WAIT_POLICY": "ACTIVE"})["wait_policy"] == "ACTIVE"
    assert threads.child_vars(2, {"OMP_WAIT_POLICY": "ACTIVE"}) == {threads.HINT: "2"}


def test_cgroup_quota_caps_the_cores(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads._cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads._cgroup_quota(tmp_path) is None


def test_child_env_is_an_allowlist_plus_the_runs_own_token(tmp_path):
    base = {
        "PATH": "/usr/bin",
        "HF_HOME": "/cache",
        "HF_TOKEN": "hf_space_owners_token_000000000000000000",
        "OAUTH_CLIENT_SECRET": "cookie-signing-key",
        "WANDB_API_KEY": "w" * 40,
        "AWS_SECRET_ACCESS_KEY": "s" * 40,
        "RANDOM_APP_SETTING": "x",
        "MY_DEBUG": "1",
        "STUDIO_CHILD_ENV": "MY_DEBUG, MY_API_KEY",
        "MY_API_KEY": "k" * 40,
    }
    env = child_env(tmp_path, "hf_users_own_token_111111111111111111111", 3, base)
    assert env["HF_TOKEN"] == "hf_users_own_token_111111111111111111111"
    assert env["PATH"] == "/usr/bin" and env["HF_HOME"] == "/cache" and env["MY_DEBUG"] == "1"
    for name in ("OAUTH_CLIENT_SECRET", "WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY", "RANDOM_APP_SETTING", "MY_API_KEY"):
        assert name not in env, name
    assert env[threads.HINT] == "3" and env["OMP_WAIT_POLICY"] == "PASSIVE" and env["STUDIO_HOME"] == str(tmp_path)
    assert "HF_TOKEN" not in child_env(tmp_path, None, 1, base)


def test_a_queued_run_trains_with_the_workers_thread_share_and_records_it(home, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "cookie-signing-key")
    queue = JobQueue(home)
    worker = Worker(home, poll_s=0.1, cpu_reserve=1)
    run_id = queue.submit(RECIPES / "demo-sft.yaml", overrides=QUICK)
    seen = record_child_env(worker, monkeypatch)
    worker.run(until_empty=True)
    run = queue.get(run_id, "local")
    assert run.status == "succeeded", run.error
    assert "OAUTH_CLIENT_SECRET" not in seen["env"]
    expected = threads.child_threads(1, 1)
    summary = json.loads((home / "runs" / run_id / "summary.json").read_text())
    assert summary["cpu_threads"]["threads"] == expected and summary["cpu_threads"]["wait_policy"] == "PASSIVE"
    assert f"CPU threads: {expected}" in (home / "runs" / run_id / "train.log").read_text()


def test_a_second_configure_in_one_process_keeps_the_first_decisions_source(monkeypatch):
    """The CLI configures before torch loads and the run records the decision again: the hint the first call
    left for this process's children must not be read back as a parent's."""
    for name in ("OMP_NUM_THREADS", threads.HINT):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_APPLIED", {})
    first = threads.configure()
    assert first["source"] == "all available cores"
    assert threads.configure() == first
