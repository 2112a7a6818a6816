"""Background runs: FIFO order, cancel, killed children, worker restarts, owners, concurrency, OOM, tokens."""

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import RECIPES, ROOT, StepBarrier, read_metrics, record_child_env

from jobs.api import JobError, JobQueue
from jobs.runner import Worker, alive
from jobs.store import Store

QUICK = ["data.eval_source=null", "data.eval_size=0", "training.max_steps=2", "training.logging_steps=1"]
LONG = [
    "data.eval_source=null",
    "data.eval_size=0",
    "training.max_steps=400",
    "training.save_steps=20",
    "training.logging_steps=10",
]
SECRET = "hf_planted_secret_token_123"


def wait_for(predicate, timeout=180, every=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def background(worker):
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop.is_set}, daemon=True)
    thread.start()
    return stop, thread


def test_five_runs_complete_in_submission_order(home):
    queue = JobQueue(home)
    ids = [queue.submit(RECIPES / "demo-sft.yaml", overrides=QUICK, name=f"r{i}") for i in range(5)]
    Worker(home, poll_s=0.1).run(until_empty=True)
    runs = [queue.get(i, "local") for i in ids]
    assert [r.status for r in runs] == ["succeeded"] * 5, [(r.status, r.error) for r in runs]
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.finished_at <= later.started_at  # concurrency 1, first in first out
    assert all(len(read_metrics(r.run_dir)) >= 2 for r in runs)


def started(queue, run_id):
    return lambda: queue.get(run_id, "local").status in ("queued", "running")


def test_cancel_mid_run_keeps_the_last_checkpoint(home, tmp_path, monkeypatch):
    queue = JobQueue(home)
    barrier = StepBarrier(tmp_path / "barrier", 40)  # the child pauses after step 40 and its checkpoint
    for name, value in barrier.env.items():
        monkeypatch.setenv(name, value)
    run_id = queue.submit(RECIPES / "demo-sft.yaml", overrides=LONG)
    worker = Worker(home, poll_s=0.1, grace_s=30)
    stop, thread = background(worker)
    run_dir = Path(queue.get(run_id, "local").run_dir)
    pid = barrier.wait(running=started(queue, run_id))
    assert (run_dir / "checkpoints" / "checkpoint-40" / "trainer_state.json").exists()
    assert queue.get(run_id, "local").pid == pid
    assert queue.cancel(run_id, "local") == "cancelling"  # SIGTERM while paused: stop at the end of the next step
    barrier.release()
    assert wait_for(lambda: queue.get(run_id, "local").status == "cancelled", timeout=60)
    stop.set()
    thread.join()
    assert not alive(pid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole process group is gone
    checkpoints = sorted((run_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    last = checkpoints[-1]
    assert [p.name for p in checkpoints[-2:]] == ["checkpoint-40", "checkpoint-41"]  # saved on the way out
    assert (last / "adapter_model.safetensors").exists() and (last / "trainer_state.json").exists()
    assert queue.summary(run_id, "local")["status"] == "cancelled"
    assert queue.resume(run_id, "local") == "queued"


def test_sigkilled_trainer_is_reported_as_killed(home, tmp_path, monkeypatch):
    queue = JobQueue(home)
    barrier = StepBarrier(tmp_path / "barrier", 10)  # mid-run: after the first logged step, before step 400
    for name, value in barrier.env.items():
        monkeypatch.setenv(name, value)
    run_id = queue.submit(RECIPES / "demo-sft.yaml", overrides=LONG)
    worker = Worker(home, poll_s=0.1)
    stop, thread = background(worker)
    run_dir = Path(queue.get(run_id, "local").run_dir)
    pid = barrier.wait(running=started(queue, run_id))
    assert (run_dir / "metrics.jsonl").exists() and queue.get(run_id, "local").pid == pid
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: queue.get(run_id, "local").status == "failed", timeout=30)
    stop.set()
    thread.join()
    run = queue.get(run_id, "local")
    assert run.exit_reason == "killed" and "killed (SIGKILL)" in run.error and run.exit_code == -9


def test_restarted_worker_resumes_an_interrupted_run(home):
    queue = JobQueue(home)
    run_id = queue.submit(
        RECIPES / "demo-sft.yaml",
        overrides=LONG[:2] + ["training.max_steps=200", "training.save_steps=40", "training.logging_steps=10"],
    )
    barrier = StepBarrier(home.parent / "barrier", 80)  # the first worker's child pauses after checkpoint-80
    env = {**os.environ, "STUDIO_HOME": str(home), **barrier.env}
    old = subprocess.Popen(
        [sys.executable, "-m", "jobs", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    run_dir = Path(queue.get(run_id, "local").run_dir) if queue.get(run_id, "local").run_dir else None
    child = barrier.wait(running=lambda: old.poll() is None and started(queue, run_id)())
    assert (run_dir / "checkpoints" / "checkpoint-80" / "trainer_state.json").exists()
    assert queue.get(run_id, "local").pid == child
    os.killpg(old.pid, signal.SIGKILL)  # the app dies ...
    os.killpg(child, signal.SIGKILL)  # ... and so does its trainer (a Space restart)
    old.wait()
    assert queue.get(run_id, "local").status == "running"  # nobody recorded the end
    Worker(home, poll_s=0.1).run(until_empty=True)
    run = queue.get(run_id, "local")
    assert run.status == "succeeded" and run.attempts == 2, (run.status, run.error)
    steps = [r["step"] for r in read_metrics(run_dir) if "loss" in r]
    assert steps == list(range(10, 201, 10))  # continuous: nothing lost, nothing twice
    assert queue.summary(run_id, "local")["global_step"] == 200


def test_owners_cannot_see_or_touch_each_others_runs(home):
    queue = JobQueue(home)
    alice = queue.submit(RECIPES / "demo-sft.yaml", owner="alice", overrides=QUICK)
    bob = queue.submit(RECIPES / "demo-sft.yaml", owner="bob", overrides=QUICK)
    assert [r.id for r in queue.list("alice")] == [alice]
    assert [r.id for r in queue.list("bob")] == [bob]
    for call in (queue.get, queue.cancel, queue.resume, queue.metrics, queue.log_tail, queue.delete):
        with pytest.raises(JobError, match="no run"):
            call(alice, "bob")
    assert queue.get(alice, "alice").status == "queued"


def test_fifty_concurrent_calls_lose_nothing(home):
    queue = JobQueue(home)
    queue.submit(RECIPES / "demo-sft.yaml", overrides=QUICK)  # imports TRL once, before the threads

    def work(i):
        run_id = queue.submit(RECIPES / "demo-sft.yaml", owner=f"user{i % 5}", overrides=QUICK)
        assert queue.get(run_id, f"user{i % 5}").status == "queued"
        return run_id, len(queue.list(f"user{i % 5}"))

    script = (
        "import sys; from jobs.store import Store; s = Store(sys.argv[1]);"
        "ids = [s.add('proc', 'p', '') for _ in range(10)];"
        "assert all(s.get(i, 'proc') for i in ids); print(len(s.list('proc')))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(home / "jobs.db")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(5)
    ]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(work, range(50)))
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outputs]
    assert not any("locked" in o[1] for o in outputs)
    assert len({r for r, _ in results}) == 50
    store = Store(home / "jobs.db")
    assert sum(len(store.list(f"user{i}")) for i in range(5)) == 50
    assert len(store.list("proc")) == 50


def test_out_of_memory_run_gets_the_memory_message(home):
    queue = JobQueue(home)
    # An honest allocation failure: the largest LoRA rank the config accepts, whose weights and Adam state need
    # more than the limit (the same run at rank 64 fits in it).
    run_id = queue.submit(RECIPES / "demo-sft.yaml", overrides=QUICK + ["peft.r=16384"])
    Worker(home, poll_s=0.1, memory_limit_mb=3072).run(until_empty=True)
    run = queue.get(run_id, "local")
    assert run.status == "failed" and run.exit_reason == "out_of_memory", (run.exit_reason, run.error)
    assert "ran out of memory" in run.error and "per_device_train_batch_size" in run.error


def test_token_reaches_the_child_only_through_its_environment(home, monkeypatch):
    queue = JobQueue(home)
    worker = Worker(home, poll_s=0.1)
    queue.worker = worker
    run_id = queue.submit(RECIPES / "demo-sft.yaml", overrides=QUICK, token=SECRET)
    seen = record_child_env(worker, monkeypatch)
    worker.run(until_empty=True)
    assert queue.get(run_id, "local").status == "succeeded"
    assert seen["env"]["HF_TOKEN"] == SECRET and run_id not in worker.tokens
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), path


def test_status_progress_and_eta_from_the_logged_rows():
    from jobs import status

    rows = [{"step": 5, "loss": 1.0, "time": 110.0}]
    assert status.progress("running", 5, 10, rows, 100.0) == (0.5, 10.0)  # 10 s for 5 steps: 10 s left
    assert status.progress("succeeded", 7, 10, rows, 100.0) == (1.0, None)
    assert status.progress("running", 5, None, rows, 100.0) == (None, None)  # epochs: no known end


def test_a_chain_is_checked_whole_and_previous_needs_a_run_before_it(tmp_path):
    import yaml

    from core.errors import StudioError

    queue = JobQueue(tmp_path)
    doc = yaml.safe_load((RECIPES / "demo-sft.yaml").read_text())
    with pytest.raises(StudioError, match="needs a run before it"):
        queue.submit_chain([{**doc, "init_from": "previous"}], "local")
    with pytest.raises(StudioError):  # the second document is invalid: the first is not queued either
        queue.submit_chain([doc, {**doc, "method": "nope"}], "local")
    assert queue.list("local") == []
    first, second = queue.submit_chain([doc, {**doc, "init_from": "previous"}], "local")
    run_config = yaml.safe_load(Path(queue.get(second, "local").run_dir, "config.yaml").read_text())
    assert run_config["init_from"] == queue.get(first, "local").run_dir


def test_a_run_that_failed_on_its_data_is_not_resumed_into_the_same_failure(home, tmp_path):
    queue = JobQueue(home)
    run_id = queue.submit(RECIPES / "demo-sft.yaml", overrides=["training.max_steps=2"])
    queue.store.update(run_id, "local", status="failed", exit_reason="DataError", error="The data has no rows.")
    with pytest.raises(JobError, match="failed on its data .* so resuming it would fail the same way") as caught:
        queue.resume(run_id, "local")
    assert str(caught.value).count(". ") == 0 and queue.get(run_id, "local").status == "failed"
    queue.store.update(run_id, "local", exit_reason="killed")  # a crash or a kill resumes as before
    assert queue.resume(run_id, "local") == "queued"
