"""The Python API the UI (and the CLI) use: submit, list, get, metrics, log tail, cancel, resume, delete.

Every call names an owner and sees only that owner's runs; a call without one is refused (jobs.access), never
read as "every owner".  On a shared Space, submit() checks every path the config names (jobs.access).
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import tempfile
import time
import zipfile
from pathlib import Path

from core.errors import StudioError
from core.paths import studio_home
from jobs import access, chain, monitor
from jobs.runner import Worker, signal_group
from jobs.store import FINAL, Run, Store, new_run_id
from trainers import config as config_mod
from trainers import continuation


class JobError(StudioError):
    """A queue operation that cannot be done; the message says why."""


# A run that failed on its own input fails again when resumed unchanged (its config is frozen in the run folder).
INPUT_ERRORS = {"DataError": "data", "ConfigError": "config"}


class JobQueue:
    def __init__(self, home: str | Path | None = None, worker: Worker | None = None):
        self.home = Path(home) if home else studio_home()
        self.store = Store(self.home / "jobs.db")
        self.worker = worker  # set when a worker runs in this process (the app): tokens stay in memory

    def submit(
        self,
        config: str | Path | dict,
        owner: str = "local",
        token: str | None = None,
        overrides: list[str] | None = None,
        name: str | None = None,
        continues: str | None = None,
    ) -> str:
        """Validate a RunConfig (a YAML path or a parsed mapping), give it a run folder, queue it."""
        owner = access.require_owner(owner)
        # The shared-Space path rules come first: validation tells a missing path from a file or a folder, and
        # that difference must not let a user probe the server's paths.
        if isinstance(config, dict):
            raw = config_mod.apply_overrides(config, overrides or [])
            access.check_config(raw, owner, self.home, self.store)
            cfg = config_mod.from_dict(raw)
            name = name or cfg.method
        else:
            access.check_path(str(config), owner, self.home, self.store)
            cfg = config_mod.load(config, overrides)
        access.check_config(cfg.to_dict(), owner, self.home, self.store)
        # Folder, config and token first, the queue row last: a worker may claim the row the moment it exists.
        run_id = new_run_id()
        run_dir = self.home / "runs" / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        config_mod.dump(cfg, run_dir / "config.yaml", f"# Queued run {run_id}\n")
        if token and self.worker is not None:
            self.worker.tokens[run_id] = token
        name = name or Path(str(config)).stem
        return self.store.add(owner, name, str(run_dir), run_id, needs_token=bool(token), continues=continues)

    def submit_chain(self, docs: list[dict], owner: str = "local", token: str | None = None) -> list[str]:
        """Queue several RunConfig mappings, all checked first; `init_from: previous` names the run before."""
        return chain.submit_chain(self, docs, owner, token)

    def provide_token(self, owner: str, token: str | None) -> list[str]:
        """The owner is here again with their token: their runs waiting for it (after a restart) are requeued."""
        if not token or self.worker is None:
            return []
        return self.worker.provide_token(access.require_owner(owner), token)

    def list(self, owner: str) -> list[Run]:
        return self.store.list(access.require_owner(owner))

    def get(self, run_id: str, owner: str) -> Run:
        run = self.store.get(run_id, access.require_owner(owner))
        if run is None:
            raise JobError(f"There is no run {run_id!r} among your runs.")
        return run

    def metrics(self, run_id: str, owner: str, after_step: int = -1) -> list[dict]:
        return monitor.metrics_since(Path(self.get(run_id, owner).run_dir), after_step)[0]

    def log_tail(self, run_id: str, owner: str, max_bytes: int = 20_000) -> str:
        return monitor.log_tail(Path(self.get(run_id, owner).run_dir), max_bytes)

    def summary(self, run_id: str, owner: str) -> dict:
        return monitor.read_summary(Path(self.get(run_id, owner).run_dir))

    def cancel(self, run_id: str, owner: str) -> str:
        run = self.get(run_id, owner)
        if run.status in ("queued", "interrupted", "waiting"):
            self.store.update(
                run_id,
                owner,
                status="cancelled",
                finished_at=time.time(),
                exit_reason="cancelled",
                error="Cancelled before it started.",
            )
            return "cancelled"
        if run.status != "running":
            raise JobError(f"Run {run_id} is already {run.status}.")
        self.store.update(run_id, owner, cancel_requested_at=time.time())
        if run.pid:
            signal_group(run.pid, signal.SIGTERM)  # the trainer saves a checkpoint and stops
        return "cancelling"

    def resume(self, run_id: str, owner: str, token: str | None = None) -> str:
        """Queue the run again; `token` (the owner's, from this request) replaces one lost with a restart."""
        run = self.get(run_id, owner)
        if run.status not in ("failed", "cancelled", "interrupted"):
            raise JobError(f"Run {run_id} is {run.status}; only failed, cancelled or interrupted runs resume.")
        if run.status == "failed" and run.exit_reason in INPUT_ERRORS:
            raise JobError(
                f"Run {run_id} failed on its {INPUT_ERRORS[run.exit_reason]} (its error is on the Runs tab), so "
                "resuming it would fail the same way: fix that and start a new run."
            )
        if token and self.worker is not None:
            self.worker.tokens[run_id] = token
        self.store.update(run_id, owner, status="queued", cancel_requested_at=None, error=None, exit_reason=None)
        return "queued"

    def continue_run(
        self, run_id: str, owner: str, token: str | None = None, steps: int | None = None, epochs=None
    ) -> str:
        """Train a finished run N more steps (or epochs): a new queued run that continues it (its last checkpoint's
        weights and optimizer state, a fresh schedule, metrics logged on from its last step); the new run's id."""
        run = self.get(run_id, owner)  # the owner's own runs only
        if run.status != "succeeded":
            raise JobError(f"Run {run_id} is {run.status}; only a finished (succeeded) run can be trained further.")
        raw = continuation.continuation_config(Path(run.run_dir), run.id, steps, epochs)
        more = f"+{steps} steps" if steps is not None else f"+{epochs:g} epochs"
        return self.submit(raw, owner, token, name=f"{run.name} {more}", continues=run.id)

    def delete(self, run_id: str, owner: str) -> None:
        run = self.get(run_id, owner)
        if run.status not in FINAL + ("interrupted", "waiting"):
            raise JobError(f"Run {run_id} is {run.status}: cancel it before deleting it.")
        if run.run_dir and Path(run.run_dir).is_relative_to(self.home / "runs"):
            shutil.rmtree(run.run_dir, ignore_errors=True)
        self.store.delete(run_id, owner)

    def adapter_zip(self, run_id: str, owner: str, dest: str | Path | None = None) -> Path:
        """A zip of the run's adapter folder (regular files only) in `dest` (default: a new temp folder)."""
        run = self.get(run_id, owner)
        adapter = Path(run.run_dir) / "adapter"
        if adapter.is_symlink():
            raise JobError(f"Run {run.id}'s adapter folder is a link, which is never downloaded: re-run it.")
        if not adapter.is_dir():
            raise JobError("This run has no adapter yet: it appears when the run succeeds.")
        files = []
        for folder, dirs, names in os.walk(adapter):  # does not follow links to folders
            for name in sorted(dirs + names):
                path = Path(folder) / name
                mode = path.lstat().st_mode
                if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise JobError(
                        f"Run {run.id}'s adapter holds {path.relative_to(adapter)}, which is a link or special "
                        "file and is never downloaded: remove it from the run folder, then download again."
                    )
                if stat.S_ISREG(mode):
                    files.append(path)
        target = Path(dest or tempfile.mkdtemp(prefix="adapter-")) / f"{run.id}-adapter.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(adapter).as_posix())
        return target
