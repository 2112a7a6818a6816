"""The worker: a FIFO queue of runs, each a `python -m trainers train` child in its own process group.

State lives in the store and the run folder, never in this process: a new worker on the same
STUDIO_HOME picks up where a dead one left off (interrupted runs are requeued and resume from their
last checkpoint).  The HF token, when given, reaches the child only through its environment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core import settings, threads
from core.errors import disk_full
from core.paths import ROOT, studio_home
from jobs import monitor
from jobs.childenv import child_env
from jobs.store import ANY_OWNER, FINAL, Store

log = logging.getLogger("jobs")
STARTED = ("running", "succeeded", "failed", "cancelled")
# A run's end state is never replaced by a worse guess: a later "failed" leaves "succeeded"/"cancelled" alone.
WORSE_THAN = {"failed": ("succeeded", "cancelled"), "cancelled": ("succeeded",), "interrupted": FINAL}


def alive(pid: int | None, command: bytes = b"trainers") -> bool:
    """True while `pid` runs a live process whose command line contains `command`."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie or a recycled pid running something else is not our child
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return stat.split(")")[-1].split()[0] != "Z" and command in cmdline


def signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # each child leads its own process group (start_new_session)


def train_command(config_path: Path, run_dir: Path) -> list[str]:
    """`python -m trainers train`, through `accelerate launch` when the config names a launch profile."""
    import yaml

    train = ["-m", "trainers", "train", str(config_path), "--output-dir", str(run_dir)]
    try:
        launch = (yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}).get("launch") or {}
    except (OSError, yaml.YAMLError):
        launch = {}  # the engine reports the bad config in one line
    if not launch.get("profile"):
        return [sys.executable, *train]
    profile = ROOT / "templates" / "accelerate" / f"{launch['profile']}.yaml"
    n = str(int(launch.get("num_processes") or 1))
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(profile),
        "--num_processes",
        n,
        *train,
    ]


WAIT_FOR_TOKEN = "Sign in again to continue this run; it resumes from its last checkpoint."


@dataclass
class Worker:
    home: Path = field(default_factory=studio_home)
    concurrency: int = 1
    auto_resume: bool = True
    grace_s: float = 60.0
    poll_s: float = 0.5
    memory_limit_mb: int | None = None  # RLIMIT_AS for children (None = unlimited)
    tokens: dict = field(default_factory=dict)  # run id -> HF token, in memory only
    on_idle: Callable[[], None] | None = None  # called once each time the queue has been empty idle_after_s
    idle_after_s: float = 600.0
    cpu_reserve: int = 0  # cores kept for the parent (the app's own inference); children share the rest
    heartbeat_s: float = 1.0  # how often the lease is renewed
    stale_after_s: float = 30.0  # a worker whose lease is older than this (and >= 10 beats) is gone
    error_pause_s: float = 5.0  # pause after a store or disk error in the loop, then retry

    def __post_init__(self):
        self.home = Path(self.home)
        self.store = Store(self.home / "jobs.db")
        self.children: dict[str, subprocess.Popen] = {}
        self.adopted: dict[str, int] = {}  # runs whose process outlived a previous worker
        self.host = socket.gethostname()
        self.id = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._beat_at = 0.0
        self._launch_errors: dict[str, tuple[str, str]] = {}  # run id -> (exit reason, message) not yet recorded
        self._unrecorded_pids: dict[str, int] = {}  # run id -> pid of a child the store does not know yet

    # --- the lease ---------------------------------------------------------------------------------

    def heartbeat(self, force: bool = False) -> None:
        now = time.time()
        if force or now - self._beat_at >= self.heartbeat_s:
            self.store.heartbeat(self.id, self.host, os.getpid())
            self._beat_at = now

    def _stale_s(self) -> float:
        return max(self.stale_after_s, 10 * max(self.heartbeat_s, self.poll_s))

    def gone_workers(self, rows=None) -> set[str]:
        """Ids of registered workers that are provably gone: on this host with a dead pid, or silent for long."""
        now, gone = time.time(), set()
        for w in self.store.workers() if rows is None else rows:
            if w.id == self.id:
                continue
            dead_here = w.host == self.host and not alive(w.pid, command=b"")
            if dead_here or now - w.heartbeat_at > self._stale_s():
                gone.add(w.id)
        return gone

    def _holder_gone(self, worker_id: str | None, live: set[str]) -> bool:
        return worker_id != self.id and worker_id not in live

    # --- lifecycle -------------------------------------------------------------------------------

    def recover(self) -> None:
        """Runs held by a worker that is provably gone: adopted while their process lives, recorded from their
        own summary.json when it finished meanwhile, otherwise interrupted (and requeued)."""
        self.heartbeat(force=True)
        # Runs first, workers second: a worker registers before it claims, so every holder of a run listed here
        # is in the workers table read below unless it has left (or was found gone) since.
        running = self.store.list(ANY_OWNER, ("running",))
        rows = self.store.workers()
        gone = self.gone_workers(rows)
        live = {w.id for w in rows} - gone
        for run in running:
            if run.id in self.children or run.id in self.adopted or not self._holder_gone(run.worker_id, live):
                continue
            # Compare-and-set: of two recovering workers, only one takes the run over.
            if not self.store.update(run.id, ANY_OWNER, only_worker=run.worker_id, worker_id=self.id):
                continue
            if alive(run.pid):
                self.adopted[run.id] = run.pid
                log.info("run %s adopted (pid %s) from worker %s", run.id, run.pid, run.worker_id)
                continue
            if monitor.read_summary(Path(run.run_dir)).get("status") in FINAL:  # it ended while no worker watched
                self._finish(run.id, None)
                continue
            self.store.update(
                run.id,
                ANY_OWNER,
                unless_status=FINAL,
                status="interrupted",
                exit_reason="worker_restart",
                pid=None,
                worker_id=None,
                error="The app restarted while this run was training.",
            )
            if self.auto_resume and not run.cancel_requested_at:
                self.store.update(run.id, ANY_OWNER, unless_status=FINAL, status="queued", error=None)
                log.info("run %s interrupted; requeued to resume from its last checkpoint", run.id)
        for worker_id in gone:
            self.store.remove_worker(worker_id)

    def _env(self, run_id: str) -> dict:
        """Allowlisted environment + this run's owner token.  Off a shared Space the one user's own HF_TOKEN
        stands in for a token lost with a restart; on a Space the Space's token never does."""
        token = settings.user_token(self.tokens.get(run_id))
        cpu = threads.child_threads(self.cpu_reserve, self.concurrency)
        return child_env(self.home, token, cpu)

    def _must_wait(self, run) -> bool:
        """A run submitted with its owner's token, on a shared Space, after the token was lost with a restart."""
        return bool(run.needs_token) and settings.multi_user() and not self.tokens.get(run.id)

    def provide_token(self, owner: str, token: str) -> list[str]:
        """The owner signed in again: remember the token for their waiting runs and requeue them (their ids)."""
        ids = []
        for run in self.store.list(owner, ("waiting",)):
            self.tokens[run.id] = token
            if self.store.update(run.id, owner, unless_status=STARTED, status="queued", error=None, exit_reason=None):
                ids.append(run.id)
        return ids

    def _limit(self):
        if self.memory_limit_mb:
            import resource

            limit = self.memory_limit_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def launch(self, run) -> None:
        if self._must_wait(run):
            self.store.update(
                run.id, ANY_OWNER, status="waiting", worker_id=None, pid=None, exit_reason="needs_token",
                error=WAIT_FOR_TOKEN,
            )  # fmt: skip
            log.info("run %s waits for its owner to sign in again (no token after a restart)", run.id)
            return
        run_dir = Path(run.run_dir)
        cmd = train_command(run_dir / "config.yaml", run_dir)
        try:
            with open(run_dir / "train.log", "ab") as out:
                proc = subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env=self._env(run.id),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=self._limit if self.memory_limit_mb else None,
                )
        except OSError as exc:  # a full disk (train.log) or a missing run folder: the run fails, the worker lives
            full = disk_full(exc)
            reason, message = (
                ("disk_full", monitor.DISK_FULL)
                if full
                else ("launch_error", f"The training process could not start ({exc.strerror or exc}); resume the run to retry.")
            )  # fmt: skip
            self._launch_errors[run.id] = (reason, message)
            log.warning("run %s could not start: %s", run.id, exc)
            self._record_launch_errors()
            return
        self.children[run.id] = proc
        self._unrecorded_pids[run.id] = proc.pid
        log.info("run %s started (pid %s)", run.id, proc.pid)
        self._record_pids()

    def _record_pids(self) -> None:
        """The store learns each child's pid (retried after a store error: a worker that restarts must find the
        pid to adopt the child rather than start the run a second time)."""
        for run_id, pid in list(self._unrecorded_pids.items()):
            self.store.update(run_id, ANY_OWNER, pid=pid, exit_code=None, exit_reason=None, error=None)
            del self._unrecorded_pids[run_id]

    def _record_launch_errors(self) -> None:
        for run_id, (reason, message) in list(self._launch_errors.items()):
            self._record(run_id, "failed", reason, message, None)
            del self._launch_errors[run_id]

    def _record(self, run_id: str, status: str, reason: str, message: str | None, returncode: int | None) -> None:
        """Write a run's end state; a worse guess never overwrites a better terminal state already recorded."""
        self.store.update(
            run_id,
            ANY_OWNER,
            unless_status=WORSE_THAN.get(status, ()),
            status=status,
            exit_code=returncode,
            exit_reason=reason,
            error=message,
            finished_at=time.time(),
            pid=None,
        )
        log.info("run %s %s (%s)", run_id, status, reason)

    def _finish(self, run_id: str, returncode: int | None) -> None:
        run = self.store.get(run_id, ANY_OWNER)
        if run is None:  # deleted meanwhile
            self.tokens.pop(run_id, None)
            return
        status, reason, message = monitor.classify(returncode, Path(run.run_dir), bool(run.cancel_requested_at))
        self._record(run_id, status, reason, message, returncode)
        self.tokens.pop(run_id, None)

    def _enforce_cancel(self, run_id: str, pid: int) -> None:
        run = self.store.get(run_id, ANY_OWNER)
        if run and run.cancel_requested_at:
            signal_group(pid, signal.SIGTERM)
            if time.time() - run.cancel_requested_at > self.grace_s:
                signal_group(pid, signal.SIGKILL)

    def step(self) -> None:
        """One pass: renew the lease, reap finished children, enforce cancels, start queued runs up to the limit.
        A child is forgotten only once its end is recorded, so a store error here is retried on the next pass."""
        self.heartbeat()
        self._record_pids()
        self._record_launch_errors()
        for run_id, proc in list(self.children.items()):
            code = proc.poll()
            if code is None:
                self._enforce_cancel(run_id, proc.pid)
                continue
            self._finish(run_id, code)
            del self.children[run_id]
        for run_id, pid in list(self.adopted.items()):
            if alive(pid):
                self._enforce_cancel(run_id, pid)
                continue
            self._finish(run_id, None)
            del self.adopted[run_id]
        while len(self.children) + len(self.adopted) < self.concurrency:
            run = self.store.claim_next(self.id)
            if run is None:
                break
            self.launch(run)

    def busy(self) -> bool:
        return bool(self.children or self.adopted or self._launch_errors or self.store.list(ANY_OWNER, ("queued",)))

    def run(self, until_empty: bool = False, stop=lambda: False) -> None:
        """Children are independent processes: if this worker dies they train on, and the next worker
        adopts them (or requeues them if they died too).  A store or disk error (a full disk) is logged and
        retried after a pause; the worker itself keeps going."""
        busy_until = None  # when the queue last emptied after some work; None once on_idle has fired
        recovered = False
        try:
            while not stop():
                try:
                    if not recovered:
                        self.recover()
                        recovered = True
                    self.step()
                    busy = self.busy()
                except (sqlite3.Error, OSError) as exc:
                    why = "the disk is full" if disk_full(exc) or "disk i/o" in str(exc).lower() else "an error"
                    log.warning("worker: %s (%s); retrying in %.0f s", why, exc, self.error_pause_s)
                    self._pause(self.error_pause_s, stop)
                    continue
                if until_empty and not busy:
                    return
                if busy:
                    busy_until = time.time()
                elif busy_until is not None and time.time() - busy_until >= self.idle_after_s:
                    busy_until = None
                    if self.on_idle:
                        self.on_idle()
                time.sleep(self.poll_s)
        finally:
            with contextlib.suppress(sqlite3.Error, OSError):
                self.store.remove_worker(self.id)  # our children (if any) are adopted by the next worker

    @staticmethod
    def _pause(seconds: float, stop) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline and not stop():
            time.sleep(min(0.1, seconds))
