"""Comparisons as queued work: a folder per comparison, its arms as ordinary queued runs, and the report
built by a child process (`python -m evaluation report FOLDER`) once every arm has finished.

`ctx` is anything with `.home` (STUDIO_HOME) and `.queue` (jobs.api.JobQueue); no gradio here. The folder,
STUDIO_HOME/comparisons/<id>/, holds everything, so a page reload or an app restart loses nothing:

    comparison.yaml   the validated comparison config (evaluation.compare.validate)
    arms.json         {arm: run folder}, what `python -m evaluation report` evaluates
    meta.json         {owner, run_ids, existing_ids, title, created_at}; only the owner sees the comparison
    report.started    {pid, started_at}: the report child was launched (at most once per build)
    report.log        the report child's stdout and stderr
    report.md/.json, loss_curves.png, metrics.png   written by the report child
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from core import threads
from core.errors import StudioError
from core.paths import ROOT
from core.runfolder import RunFolder, read_json, write_json_atomic
from evaluation import compare
from hub.pull import check_run_sources
from jobs import access
from jobs.childenv import child_env
from jobs.runner import alive
from jobs.status import run_status
from jobs.store import FINAL, new_run_id
from trainers import config as config_mod
from trainers import methods

# {arm: label}: the prompting arm (trains nothing), every method that can be an arm, then the chains (SFT→DPO)
ARM_LABELS = {"prompting": compare.UNTRAINED["prompting"], **methods.arms()}
ARM_ORDER = tuple(ARM_LABELS)
DATA_SECTIONS = ("data", "sft_data", "preference_data")
IMAGE_LINE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
ID_PATTERN = re.compile(r"[0-9A-Za-z][\w-]{0,80}")


def comparisons_root(ctx) -> Path:
    return ctx.home / "comparisons"


def _anchor_paths(raw: dict) -> dict:
    """Relative local data paths (as in the shipped recipes) are resolved against the repository root."""
    for section in DATA_SECTIONS:
        data = raw.get(section)
        if not isinstance(data, dict):
            continue
        for key in ("source", "eval_source"):
            value = data.get(key)
            if isinstance(value, str) and value and not Path(value).expanduser().exists() and (ROOT / value).exists():
                data[key] = str(ROOT / value)
    return raw


def _resolve_existing(ctx, raw: dict, owner: str) -> dict[str, str]:
    """`existing: {name: run id or run folder}` -> {name: run id}; only the owner's own runs are accepted."""
    existing = raw.get("existing") or {}
    if not isinstance(existing, dict):
        raise StudioError("existing: is a mapping {name: run id}, e.g. {my-old-sft: 20250101-120000-abc123}.")
    mine = {run.id: run for run in ctx.queue.list(owner)}
    by_dir = {str(Path(run.run_dir).resolve()): run.id for run in mine.values()}
    ids = {}
    for name, ref in existing.items():
        ref = str(ref or "").strip()
        run_id = ref if ref in mine else by_dir.get(str(Path(ref).expanduser().resolve())) if ref else None
        if run_id is None:
            raise StudioError(f"Existing run {ref!r} is not one of your runs: give a run id from the Runs tab.")
        if str(name) in ARM_LABELS:
            raise StudioError(f"Name the existing run {ref} something other than {name!r} (that is an arm's name).")
        ids[str(name)] = run_id
    return ids


def start(ctx, raw: dict, owner: str, token: str | None) -> dict:
    """Validate the comparison mapping, write its folder, queue its arms (sft, dpo, sft_dpo in that order).
    Returns {"comparison_id", "runs": {arm: run id}}."""
    owner = access.require_owner(owner)
    raw = _anchor_paths(raw)
    existing_ids = _resolve_existing(ctx, raw, owner)
    if existing_ids:
        raw["existing"] = {name: ctx.queue.get(run_id, owner).run_dir for name, run_id in existing_ids.items()}
    cfg = compare.validate(raw)
    if not cfg["arms"] and not existing_ids:
        raise StudioError(f"Choose at least one arm ({_either(ARM_LABELS.values())}) or add an existing run.")
    runs = compare.plan(cfg)
    access.check_comparison(cfg, owner, ctx.home, ctx.queue.store)  # shared Space: only the user's own paths
    access.check_config([{**run, "init_from": None} for run in runs.values()], owner, ctx.home, ctx.queue.store)
    for run in runs.values():  # Hub access for every model and dataset before anything is queued
        check_run_sources(config_mod.from_dict({**run, "init_from": None}), token)

    comparison_id = new_run_id()
    folder = comparisons_root(ctx) / comparison_id
    folder.mkdir(parents=True)
    run_ids: dict[str, str] = {}
    try:
        header = f"# Comparison {comparison_id}; rebuild its report with: python -m evaluation report {folder}\n"
        (folder / "comparison.yaml").write_text(
            header + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        run_dirs: dict[str, str] = {}
        for arm in runs:  # plan order: methods, then chains, then the reward-model judge when it is trained here
            mapping = dict(runs[arm])
            if mapping.get("init_from") in run_dirs:  # a chain's later stage starts from its earlier arm
                mapping["init_from"] = run_dirs[mapping["init_from"]]
            run_ids[arm] = ctx.queue.submit(mapping, owner=owner, token=token, name=f"compare-{comparison_id}-{arm}")
            run_dirs[arm] = ctx.queue.get(run_ids[arm], owner).run_dir
        write_json_atomic(folder / "arms.json", run_dirs)
        names = ", ".join(ARM_LABELS.get(a, compare.UNTRAINED.get(a, a)) for a in cfg["arms"])
        title = f"{names or 'existing runs'} on {cfg['model']['name_or_path']}"
        write_meta(folder, owner, run_ids, existing_ids, title)  # last: the comparison is listed once complete
    except Exception:
        for run_id in run_ids.values():
            with contextlib.suppress(StudioError):
                ctx.queue.cancel(run_id, owner)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return {"comparison_id": comparison_id, "runs": run_ids}


def _either(labels) -> str:
    labels = list(labels)
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"


def write_meta(folder: Path, owner: str, run_ids=None, existing_ids=None, title: str = "") -> None:
    """meta.json: who owns the comparison and which queued runs are its arms."""
    meta = {
        "owner": owner,
        "run_ids": dict(run_ids or {}),
        "existing_ids": dict(existing_ids or {}),
        "title": title,
        "created_at": time.time(),
    }
    write_json_atomic(Path(folder) / "meta.json", meta)


# --- finding a comparison, only the owner's ---------------------------------------------------------------


def _read_meta(folder: Path) -> dict:
    return read_json(folder / "meta.json")


def comparison_folder(ctx, comparison_id: str, owner: str | None) -> tuple[Path, dict]:
    owner = access.require_owner(owner)
    comparison_id = (comparison_id or "").strip()
    folder = comparisons_root(ctx) / comparison_id
    meta = _read_meta(folder) if ID_PATTERN.fullmatch(comparison_id) else {}
    if meta.get("owner") != owner:  # someone else's and missing read the same
        raise StudioError(f"There is no comparison {comparison_id!r} among your comparisons.")
    return folder, meta


def list_comparisons(ctx, owner: str | None) -> list[tuple[str, str]]:
    """(label, id) of the owner's comparisons, newest first."""
    root = comparisons_root(ctx)
    if not owner or not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        meta = _read_meta(folder)
        if meta.get("owner") == owner:
            label = f"{folder.name} — {meta['title']}" if meta.get("title") else folder.name
            found.append((meta.get("created_at") or 0, folder.name, label))
    return [(label, name) for _, name, label in sorted(found, reverse=True)]


# --- arm status and the report child ----------------------------------------------------------------------


def _queued_state(ctx, run_id: str, owner: str) -> dict:
    try:
        state = run_status(ctx.queue, run_id, owner)
    except StudioError:
        return {"run_id": run_id, "status": "deleted", "error": "This run was deleted on the Runs tab."}
    keys = ("status", "error", "step", "max_steps")
    return {"run_id": run_id, **{k: state[k] for k in keys}}


def arm_states(ctx, folder: Path, meta: dict, owner: str) -> dict[str, dict]:
    """{arm or existing name: {label, run_id, status, error, finished}}; queued arms report the queue's state,
    run folders listed in arms.json without a run id (built elsewhere) their summary.json."""
    arms = read_json(folder / "arms.json")
    try:
        chosen = (yaml.safe_load((folder / "comparison.yaml").read_text(encoding="utf-8")) or {}).get("arms") or []
    except (OSError, yaml.YAMLError):
        chosen = []
    run_ids = meta.get("run_ids") or {}
    out: dict[str, dict] = {}
    for arm, run_dir in arms.items():
        label = ARM_LABELS.get(arm, arm)
        chains = [c for c in chosen if c in methods.arms() and arm in methods.stages(c)[:-1]]
        if arm == "reward" and arm not in chosen:
            label = "Reward model (the reward-model judge)"
        if chosen and arm not in chosen and chains:
            label += f" (first stage of {ARM_LABELS[chains[0]]})"
        if arm in run_ids:
            entry = _queued_state(ctx, run_ids[arm], owner)
            entry["finished"] = entry["status"] in FINAL + ("deleted",)
        else:  # a finished run folder listed by hand: nothing will change it
            summary = RunFolder(run_dir).summary()
            entry = {"run_id": None, "status": summary.status, "error": summary.error}
            entry["finished"] = True
        out[arm] = {"label": label, **entry}
    for name, run_id in (meta.get("existing_ids") or {}).items():
        entry = _queued_state(ctx, run_id, owner)
        out[name] = {"label": f"{name} (existing)", **entry, "finished": entry["status"] in FINAL + ("deleted",)}
    return out


def report_state(folder: Path) -> tuple[str, str | None]:
    """("waiting" | "running" | "ready" | "failed", the failure sentence)."""
    marker, report = folder / "report.started", folder / "report.md"
    if not marker.exists():
        return ("ready", None) if report.exists() else ("waiting", None)
    try:
        info = json.loads(marker.read_text(encoding="utf-8") or "{}")
        started = float(info.get("started_at") or marker.stat().st_mtime)
    except (OSError, ValueError, TypeError):
        info, started = {}, time.time()
    if info.get("pid") is None and time.time() - started < 60:
        return "running", None  # another request is launching it right now
    if alive(info.get("pid"), b"evaluation"):  # the report child
        return "running", None
    if report.exists() and report.stat().st_mtime >= started - 1:
        return "ready", None
    return "failed", _report_error(folder)


def _report_error(folder: Path) -> str:
    try:
        lines = (folder / "report.log").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith("error: "):
            return "The report failed: " + line[len("error: ") :].strip()
    return "The report process stopped without writing a report; see report.log in the comparison folder."


def launch_report(ctx, folder: Path, token: str | None) -> int | None:
    """Start `python -m evaluation report FOLDER` as a child process (its own session, log in report.log).
    At most one launch per marker: returns None when another request got there first."""
    marker = folder / "report.started"
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    started = time.time()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"pid": None, "started_at": started}, handle)
    env = child_env(ctx.home, token, threads.child_threads(threads.app_share()))
    try:
        with open(folder / "report.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "evaluation", "report", str(folder)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except OSError as exc:
        marker.unlink(missing_ok=True)
        raise StudioError(f"The report process could not be started ({exc.strerror or exc}).") from exc
    write_json_atomic(marker, {"pid": proc.pid, "started_at": started})
    threading.Thread(target=proc.wait, name=f"report-{folder.name}", daemon=True).start()  # reaps it
    return proc.pid


def comparison_status(ctx, comparison_id: str, owner: str | None, token: str | None = None) -> dict:
    """Each arm's state; once every arm is finished, launches the report child (once); the report when ready."""
    folder, meta = comparison_folder(ctx, comparison_id, owner)
    arms = arm_states(ctx, folder, meta, owner)
    for arm, entry in arms.items():  # a chain whose earlier stage failed would start from an adapter never made
        first = (arms.get(methods.stages(arm)[0]) or {}) if arm in ARM_LABELS and len(methods.stages(arm)) > 1 else {}
        if first.get("status") in ("failed", "cancelled", "deleted") and entry.get("status") in (
            "queued",
            "interrupted",
        ):
            with contextlib.suppress(StudioError):
                ctx.queue.cancel(entry["run_id"], owner)
                label = ARM_LABELS[methods.stages(arm)[0]]
                entry.update(status="cancelled", error=f"Not run: the {label} arm it starts from did not succeed.")
                entry["finished"] = True
    finished = all(a["finished"] for a in arms.values())
    state, error = report_state(folder)
    if state == "waiting" and finished:
        launch_report(ctx, folder, token)
        state = "running"
    result = {
        "comparison_id": folder.name,
        "title": meta.get("title", ""),
        "arms": arms,
        "all_finished": finished,
        "report": state,
        "report_error": error,
        "report_markdown": None,
        "images": {},
        "report_json": None,
    }
    if state == "ready":
        top, bottom, images = render_report(folder)
        result["report_markdown"] = top + "\n" + bottom
        result["images"] = images
        if (folder / "report.json").is_file():
            result["report_json"] = str(folder / "report.json")
    return result


def rebuild_report(ctx, comparison_id: str, owner: str | None, token: str | None) -> str:
    """Build the report again (e.g. after resuming a failed arm)."""
    folder, meta = comparison_folder(ctx, comparison_id, owner)
    if report_state(folder)[0] == "running":
        raise StudioError("The report is being built already: wait for it to appear.")
    if not all(a["finished"] for a in arm_states(ctx, folder, meta, owner).values()):
        raise StudioError("Some arms are still queued or running: the report is built when they finish.")
    (folder / "report.started").unlink(missing_ok=True)
    launch_report(ctx, folder, token)
    return "Rebuilding the report."


def render_report(folder: Path) -> tuple[str, str, dict[str, str]]:
    """report.md split around its images: (markdown above, markdown below, {image stem: PNG path}).
    The relative image links would not resolve in the page, so the images go to gr.Image components."""
    text = (folder / "report.md").read_text(encoding="utf-8")
    top: list[str] = []
    bottom: list[str] = []
    images: dict[str, str] = {}
    target = top
    for line in text.splitlines():
        match = IMAGE_LINE.fullmatch(line.strip())
        if match:
            name = match.group(2)
            path = folder / name
            if Path(name).name == name and path.suffix == ".png" and path.is_file():
                images[path.stem] = str(path)
            target = bottom
            continue
        target.append(line)
    return "\n".join(top).strip() + "\n", "\n".join(bottom).strip() + "\n", images
