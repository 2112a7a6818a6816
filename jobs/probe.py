"""'Check on this hardware' (Train tab): a measuring dry run of the form's config, in a child process.

The probe trains (a few optimizer steps), so it never runs inside a web request's process: it is
`python -m trainers probe` in its own process group, with the environment of a queued run (jobs.childenv: the
allowlist and this owner's token only) after the shared-Space path checks (jobs.access) on every path the config
names.  Its run folder lives in a temporary folder in the owner's area and is removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from core import settings, threads
from core.errors import StudioError
from core.paths import ROOT
from jobs import access
from jobs.childenv import child_env
from jobs.store import Store
from trainers import config as config_mod

LIMIT_S = 1800  # a probe is a few steps; anything longer is stuck


class ProbeError(StudioError):
    """The check could not run or failed; the message says what to change, in one sentence."""


def _config(config_text_or_docs) -> dict:
    """The config to check: YAML text, a mapping, or the first of a list of mappings (a chain's first run)."""
    docs = config_text_or_docs
    if isinstance(docs, str):
        docs = config_mod.parse_yaml(docs, "the config")
    if isinstance(docs, list):
        docs = docs[0] if docs else None
    if not isinstance(docs, dict):
        raise ProbeError("There is no config to check: fill in the form or paste a RunConfig YAML first.")
    return docs


def _sentence(stderr: str, code: int) -> str:
    errors = [line[len("error: ") :] for line in stderr.splitlines() if line.startswith("error: ")]
    if errors:
        return errors[-1]
    if code < 0 or code in (137, 9):
        return "The check was stopped (out of memory or killed): try a smaller batch or max_length, or auto-fit."
    return f"The check failed (exit code {code}): run python -m trainers probe on the config to see why."


def run_probe(home, raw: dict, owner: str, token: str | None, steps: int) -> dict:
    """The probe's JSON report, from a child process; raises ProbeError with one sentence."""
    home = Path(home)
    owner = access.require_owner(owner)
    store = Store(home / "jobs.db")
    access.check_config(raw, owner, home, store)
    config_mod.from_dict(json.loads(json.dumps(raw)))  # a bad config is refused here, in one sentence
    area = home / "tmp" / access.owner_folder_name(owner)
    area.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="probe-", dir=area))
    try:
        (work / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
        token = settings.user_token(token)  # as for a queued run
        env = child_env(home, token, threads.child_threads())
        cmd = [sys.executable, "-m", "trainers", "probe", str(work / "config.yaml"), "--steps", str(int(steps))]
        cmd += ["--json", "--keep", str(work / "run")]
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, text=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=LIMIT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ProbeError(
                f"The check took longer than {LIMIT_S // 60} minutes and was stopped: try fewer steps."
            ) from None
        if proc.returncode != 0:
            raise ProbeError(_sentence(err, proc.returncode))
        try:
            return json.loads(out)
        except ValueError:
            raise ProbeError(
                "The check finished without a report: run python -m trainers probe on the config."
            ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_on_this_hardware(home, config_text_or_docs, owner: str, token: str | None = None, steps: int = 10) -> str:
    """Markdown: measured peak memory and tokens/s beside the estimate, and each tier's corrected time and cost."""
    from trainers.probe import render

    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 100:
        raise ProbeError(f"The number of steps to check must be between 1 and 100; got {steps!r}.")
    return render(run_probe(home, _config(config_text_or_docs), owner, token, steps))
