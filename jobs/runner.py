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
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core import settings, threads
from jobs import monitor
from jobs.childenv import child_env
from jobs.store import Store

log = logging.getLogger("jobs")
ROOT = Path(__file__).resolve().parent.parent


def studio_home() -> Path:
    return Path(os.environ.get("STUDIO_HOME", "studio_home")).expanduser().resolve()


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

    def __post_init__(self):
        self.home = Path(self.home)
        self.store = Store(self.home / "jobs.db")
        self.children: dict[str, subprocess.Popen] = {}
        self.adopted: dict[str, int] = {}  # runs whose process outlived a previous worker

    # --- lifecycle -------------------------------------------------------------------------------

    def recover(self) -> None:
        """Runs marked running whose process is gone become interrupted (and are requeued)."""
        for run in self.store.list(None, ("running",)):
            if run.id in self.children:
                continue
            if alive(run.pid):
                self.adopted[run.id] = run.pid
                continue
            self.store.update(
                run.id,
                status="interrupted",
                exit_reason="worker_restart",
                pid=None,
                error="The app restarted while this run was training.",
            )
            if self.auto_resume and not run.cancel_requested_at:
                self.store.update(run.id, status="queued", error=None)
                log.info("run %s interrupted; requeued to resume from its last checkpoint", run.id)

    def _env(self, run_id: str) -> dict:
        """Allowlisted environment + this run's owner token.  Off a shared Space the one user's own HF_TOKEN
        stands in for a token lost with a restart; on a Space the Space's token never does."""
        token = self.tokens.get(run_id)
        if not token and not settings.multi_user():
            token = os.environ.get("HF_TOKEN")
        cpu = threads.child_threads(self.cpu_reserve, self.concurrency)
        return child_env(self.home, token, cpu)

    def _limit(self):
        if self.memory_limit_mb:
            import resource

            limit = self.memory_limit_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def launch(self, run) -> None:
        run_dir = Path(run.run_dir)
        cmd = train_command(run_dir / "config.yaml", run_dir)
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
        self.children[run.id] = proc
        self.store.update(run.id, pid=proc.pid, exit_code=None, exit_reason=None, error=None)
        log.info("run %s started (pid %s)", run.id, proc.pid)

    def _finish(self, run_id: str, returncode: int | None) -> None:
        run = self.store.get(run_id, None)
        status, reason, message = monitor.classify(returncode, Path(run.run_dir), bool(run.cancel_requested_at))
        self.store.update(
            run_id,
            status=status,
            exit_code=returncode,
            exit_reason=reason,
            error=message,
            finished_at=time.time(),
            pid=None,
        )
        self.tokens.pop(run_id, None)
        log.info("run %s %s (%s)", run_id, status, reason)

    def _enforce_cancel(self, run_id: str, pid: int) -> None:
        run = self.store.get(run_id, None)
        if run and run.cancel_requested_at:
            signal_group(pid, signal.SIGTERM)
            if time.time() - run.cancel_requested_at > self.grace_s:
                signal_group(pid, signal.SIGKILL)

    def step(self) -> None:
        """One pass: reap finished children, enforce cancels, start queued runs up to the limit."""
        for run_id, proc in list(self.children.items()):
            code = proc.poll()
            if code is None:
                self._enforce_cancel(run_id, proc.pid)
                continue
            del self.children[run_id]
            self._finish(run_id, code)
        for run_id, pid in list(self.adopted.items()):
            if alive(pid):
                self._enforce_cancel(run_id, pid)
                continue
            del self.adopted[run_id]
            self._finish(run_id, None)
        while len(self.children) + len(self.adopted) < self.concurrency:
            run = self.store.claim_next()
            if run is None:
                break
            self.launch(run)

    def busy(self) -> bool:
        return bool(self.children or self.adopted or self.store.list(None, ("queued",)))

    def run(self, until_empty: bool = False, stop=lambda: False) -> None:
        """Children are independent processes: if this worker dies they train on, and the next worker
        adopts them (or requeues them if they died too)."""
        self.recover()
        busy_until = None  # when the queue last emptied after some work; None once on_idle has fired
        while not stop():
            self.step()
            busy = self.busy()
            if until_empty and not busy:
                return
            if busy:
                busy_until = time.time()
            elif busy_until is not None and time.time() - busy_until >= self.idle_after_s:
                busy_until = None
                if self.on_idle:
                    self.on_idle()
            time.sleep(self.poll_s)
