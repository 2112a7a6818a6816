"""Worker leases, adoption, full disks and waiting runs, with a trivially fast fake trainer (no training).

Two workers on one STUDIO_HOME never launch a run twice; a run adopted after a restart is recorded from its own
summary.json; a store or disk error never kills the worker; a shared Space's requeued run waits for its owner's
token; the store refuses calls without an owner."""

import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

import jobs.runner as runner
from jobs import monitor
from jobs.runner import WAIT_FOR_TOKEN, Worker
from jobs.store import ANY_OWNER, Store

# The fake trainer: records its launch, waits for run_dir/go when asked, writes a succeeded summary.
FAKE = """
import json, os, sys, time
run_dir = sys.argv[2]
with open(os.path.join(run_dir, "launches.txt"), "a") as f:
    f.write(f"{os.getpid()}\\n")
if os.path.exists(os.path.join(run_dir, "wait")):
    while not os.path.exists(os.path.join(run_dir, "go")):
        time.sleep(0.02)
with open(os.path.join(run_dir, "summary.json"), "w") as f:
    json.dump({"status": "succeeded", "token": bool(os.environ.get("HF_TOKEN"))}, f)
"""


@pytest.fixture(autouse=True)
def fake_trainer(monkeypatch):
    monkeypatch.setattr(runner, "train_command", lambda config, run_dir: [sys.executable, "-c", FAKE, "trainers-fake", str(run_dir)])  # fmt: skip


def add_runs(home: Path, n: int, owner: str = "local", **kw) -> list[str]:
    store = Store(home / "jobs.db")
    ids = []
    for i in range(n):
        run_dir = home / "runs" / f"r{i}-{owner}"
        run_dir.mkdir(parents=True)
        ids.append(store.add(owner, f"r{i}", str(run_dir), **kw))
    return ids


def launches(store: Store, run_id: str) -> int:
    path = Path(store.get(run_id, ANY_OWNER).run_dir) / "launches.txt"
    return len(path.read_text().split()) if path.exists() else 0


def wait_for(predicate, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def start(worker: Worker, **kw) -> threading.Thread:
    thread = threading.Thread(target=worker.run, kwargs=kw, daemon=True)
    thread.start()
    return thread


class HeldLaunch(Worker):
    """A worker that stops between claiming a run and launching it until `release` is set: the window in which
    a starting worker used to requeue the claimed run (it had no pid yet) and launch it a second time."""

    def __post_init__(self):
        super().__post_init__()
        self.claimed, self.release = threading.Event(), threading.Event()

    def launch(self, run):
        self.claimed.set()
        assert self.release.wait(30)
        super().launch(run)


def test_a_starting_worker_never_relaunches_a_run_another_live_worker_claimed(tmp_path):
    for trial in range(20):
        home = tmp_path / f"trial{trial}"
        ids = add_runs(home, 3)
        store = Store(home / "jobs.db")
        first = HeldLaunch(home, poll_s=0.01)
        a = start(first, until_empty=True)
        assert first.claimed.wait(30)  # run 0 claimed by a live worker, no pid yet
        second = Worker(home, poll_s=0.01)
        b = start(second, until_empty=True)  # its recover() runs inside the window
        assert wait_for(lambda store=store, ids=ids: all(store.get(i, ANY_OWNER).status != "queued" for i in ids))
        first.release.set()
        a.join(60)
        b.join(60)
        runs = [store.get(i, ANY_OWNER) for i in ids]
        assert [launches(store, i) for i in ids] == [1, 1, 1], trial
        assert [r.status for r in runs] == ["succeeded"] * 3, [(r.status, r.error) for r in runs]
        assert [r.attempts for r in runs] == [1, 1, 1]


def test_a_worker_that_registers_and_claims_during_anothers_recovery_keeps_its_run(tmp_path):
    """The interleaving behind the flaky double launch: B reads the workers table, then A registers and claims,
    then B looks at running runs.  B must not take A's run for an orphan."""
    home = tmp_path / "home"
    (run_id,) = add_runs(home, 1)
    a, b = Worker(home), Worker(home)
    workers = b.store.workers

    def a_starts_meanwhile():
        rows = workers()
        if not a.children and a.store.get(run_id, ANY_OWNER).status == "queued":
            a.heartbeat(force=True)
            assert a.store.claim_next(a.id).id == run_id  # claimed, not yet launched
        return rows

    b.store.workers = a_starts_meanwhile
    b.recover()
    run = b.store.get(run_id, ANY_OWNER)
    assert (run.status, run.worker_id, run.attempts) == ("running", a.id, 1)
    assert not b.adopted and b.store.claim_next(b.id) is None


def test_two_workers_started_together_launch_each_run_once(tmp_path):
    for trial in range(20):
        home = tmp_path / f"trial{trial}"
        ids = add_runs(home, 4)
        store = Store(home / "jobs.db")
        gate = threading.Barrier(2)
        workers = [Worker(home, poll_s=0.01) for _ in range(2)]
        threads = []
        for w in workers:
            recover = w.recover

            def together(recover=recover, gate=gate):
                gate.wait(10)
                recover()

            w.recover = together
            threads.append(start(w, until_empty=True))
        for t in threads:
            t.join(60)
        assert [launches(store, i) for i in ids] == [1] * 4, trial
        assert {store.get(i, ANY_OWNER).status for i in ids} == {"succeeded"}
        assert store.workers() == []  # both left the workers table on exit


def test_an_adopted_run_that_succeeds_is_recorded_as_succeeded(tmp_path):
    home = tmp_path / "home"
    (run_id,) = add_runs(home, 1)
    store = Store(home / "jobs.db")
    run_dir = Path(store.get(run_id, ANY_OWNER).run_dir)
    (run_dir / "wait").touch()
    old = Worker(home, poll_s=0.01)
    old.step()  # claims and launches; then "dies": no more steps, its lease goes stale
    assert wait_for(lambda: (run_dir / "launches.txt").exists())
    with sqlite3.connect(home / "jobs.db") as db:
        db.execute("UPDATE workers SET heartbeat_at = 0 WHERE id = ?", (old.id,))
    new = Worker(home, poll_s=0.01)
    new.recover()
    assert run_id in new.adopted and store.get(run_id, ANY_OWNER).worker_id == new.id
    (run_dir / "go").touch()
    new.run(until_empty=True)
    run = store.get(run_id, ANY_OWNER)
    assert (run.status, run.exit_reason, run.error) == ("succeeded", "completed", None)
    assert launches(store, run_id) == 1
    old.children[run_id].wait()


def test_a_run_that_finished_while_no_worker_watched_is_not_retrained(tmp_path):
    home = tmp_path / "home"
    (run_id,) = add_runs(home, 1)
    store = Store(home / "jobs.db")
    store.update(run_id, ANY_OWNER, status="running", pid=2**22 + 7, worker_id="gone-host:1:dead")
    (Path(store.get(run_id, ANY_OWNER).run_dir) / "summary.json").write_text(json.dumps({"status": "succeeded"}))
    Worker(home, poll_s=0.01).run(until_empty=True)
    run = store.get(run_id, ANY_OWNER)
    assert run.status == "succeeded" and launches(store, run_id) == 0


def test_a_terminal_state_is_never_overwritten_by_a_worse_guess(tmp_path):
    home = tmp_path / "home"
    (run_id,) = add_runs(home, 1)
    store = Store(home / "jobs.db")
    store.update(run_id, ANY_OWNER, status="succeeded")
    worker = Worker(home)
    worker._record(run_id, "failed", "lost", "The training process ended without recording how.", None)
    worker._record(run_id, "interrupted", "worker_restart", "restart", None)
    assert store.get(run_id, ANY_OWNER).status == "succeeded"


def test_the_worker_survives_a_full_disk_and_the_run_resumes(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (run_id,) = add_runs(home, 1)
    store = Store(home / "jobs.db")
    worker = Worker(home, poll_s=0.01, error_pause_s=0.01)
    # 1. the store itself fails for a while (sqlite on a full disk): the loop logs, pauses, retries
    execute, failures = worker.store._execute, {"left": 5}

    def flaky(*args, **kw):
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return execute(*args, **kw)

    monkeypatch.setattr(worker.store, "_execute", flaky)
    # 2. then the launch fails with ENOSPC (train.log cannot be written)
    popen, enospc = runner.subprocess.Popen, {"left": 1}

    def full_disk(*args, **kw):
        if enospc["left"]:
            enospc["left"] -= 1
            raise OSError(28, "No space left on device")
        return popen(*args, **kw)

    monkeypatch.setattr(runner.subprocess, "Popen", full_disk)
    worker.run(until_empty=True)
    assert failures["left"] == 0 and enospc["left"] == 0
    run = store.get(run_id, ANY_OWNER)
    assert (run.status, run.exit_reason, run.error) == ("failed", "disk_full", monitor.DISK_FULL)
    # space freed: the run resumes (the queue's resume) and the same worker object runs it
    from jobs.api import JobQueue

    assert JobQueue(home).resume(run_id, "local") == "queued"
    worker.run(until_empty=True)
    assert store.get(run_id, ANY_OWNER).status == "succeeded"


def test_jobs_status_on_a_broken_store_is_one_sentence(tmp_path, monkeypatch, capsys):
    from jobs.__main__ import main

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))

    def broken(self):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Store, "_connect", broken)
    assert main(["status", "20260101-000000-abcdef"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {monitor.DISK_FULL}"


def test_a_requeued_run_on_a_shared_space_waits_for_its_owner_to_sign_in(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_MULTI_USER", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_the_spaces_own_token_never_lent")
    home = tmp_path / "home"
    (alice_run,) = add_runs(home, 1, owner="alice", needs_token=True)
    (bob_run,) = add_runs(home, 1, owner="bob")  # submitted without a token: starts as usual
    store = Store(home / "jobs.db")
    worker = Worker(home, poll_s=0.01)  # a restarted worker: no tokens in memory
    seen = {}
    env = worker._env
    worker._env = lambda run_id: seen.setdefault(run_id, env(run_id))
    worker.run(until_empty=True)
    alice = store.get(alice_run, "alice")
    assert (alice.status, alice.error) == ("waiting", WAIT_FOR_TOKEN) and launches(store, alice_run) == 0
    assert store.get(bob_run, "bob").status == "succeeded" and "HF_TOKEN" not in seen[bob_run]
    assert worker.provide_token("bob", "hf_bobs_token_1234567890") == []  # only the owner's own runs
    assert worker.provide_token("alice", "hf_alices_token_1234567890") == [alice_run]
    assert store.get(alice_run, "alice").status == "queued"
    worker.run(until_empty=True)
    assert store.get(alice_run, "alice").status == "succeeded" and launches(store, alice_run) == 1
    assert seen[alice_run]["HF_TOKEN"] == "hf_alices_token_1234567890"
    assert alice_run not in worker.tokens  # forgotten once the run ended


def test_a_token_run_off_a_shared_space_starts_with_the_users_own_token(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_MULTI_USER", "0")
    (run_id,) = add_runs(tmp_path / "home", 1, needs_token=True)
    Worker(tmp_path / "home", poll_s=0.01).run(until_empty=True)
    assert Store(tmp_path / "home" / "jobs.db").get(run_id, "local").status == "succeeded"


def test_the_store_refuses_calls_without_an_owner(tmp_path):
    store = Store(tmp_path / "jobs.db")
    run_id = store.add("alice", "a", str(tmp_path))
    for call in (
        lambda: store.get(run_id, None),
        lambda: store.list(None),
        lambda: store.update(run_id, None, status="failed"),
        lambda: store.delete(run_id, None),
        lambda: store.add(None, "x", str(tmp_path)),
        lambda: store.get(run_id, ""),
    ):
        with pytest.raises(ValueError, match="needs an owner"):
            call()
    assert store.get(run_id, "bob") is None and store.get(run_id, ANY_OWNER).owner == "alice"
    assert [r.id for r in store.list(ANY_OWNER)] == [run_id] and store.update(run_id, ANY_OWNER, error="x") == 1


def test_an_older_store_file_gains_the_lease_columns(tmp_path):
    path = tmp_path / "jobs.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, owner TEXT NOT NULL, "
            "name TEXT NOT NULL, run_dir TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL, "
            "started_at REAL, finished_at REAL, pid INTEGER, attempts INTEGER NOT NULL DEFAULT 0, "
            "cancel_requested_at REAL, exit_code INTEGER, exit_reason TEXT, error TEXT)"
        )
        db.execute("INSERT INTO runs (id, owner, name, run_dir, status, created_at) VALUES ('old', 'local', 'n', '', 'running', 0)")  # fmt: skip
    store = Store(path)
    run = store.get("old", "local")
    assert run.worker_id is None and run.needs_token == 0
    assert Store(path).get("old", "local").status == "running"  # a second open migrates nothing twice
    assert os.path.exists(path)
