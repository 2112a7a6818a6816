"""A run's status, progress and ETA, and the series its charts show: what the Runs tab, /run_status, the
comparison view and `python -m jobs status` read.  No gradio, no pandas: plain dicts and tuples.

`queue` is a jobs.api.JobQueue; every call names an owner (the queue refuses a missing one).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from core.runfolder import RunFolder
from jobs.store import ANY_OWNER
from trainers import methods


def run_config(run_dir: str | Path) -> dict:
    """The run's config.yaml as a mapping ({} when missing or unreadable)."""
    try:
        cfg = yaml.safe_load(RunFolder(run_dir).config_text() or "")
    except yaml.YAMLError:
        return {}
    return cfg if isinstance(cfg, dict) else {}


def max_steps(run_dir: str | Path) -> int | None:
    """training.max_steps of the run's config, None when it trains for epochs (or has no config)."""
    return _max_steps_of(run_config(run_dir))


def _max_steps_of(cfg: dict) -> int | None:
    steps = (cfg.get("training") or {}).get("max_steps")
    try:
        return int(steps) if steps and int(steps) > 0 else None
    except (TypeError, ValueError):
        return None


def progress(status: str, step: int, total: int | None, train: list[dict], started_at: float | None):
    """(share done 0..1, seconds left) from the logged rows; None where unknown."""
    if not total:
        return None, None
    done = 1.0 if status == "succeeded" else round(min(1.0, step / total), 4)
    eta = None
    if train and step and status == "running" and train[-1].get("time"):
        elapsed = train[-1]["time"] - (started_at or train[-1]["time"])
        eta = round(elapsed / step * (total - step), 1)
    return done, eta


def run_status(queue, run_id: str, owner: str | None) -> dict:
    """Status plus the latest metrics: what a script polling /run_status needs."""
    run = queue.get(run_id, owner)  # refuses a missing owner
    folder = RunFolder(run.run_dir)
    train = [m for m in folder.metrics() if "loss" in m]
    summary = folder.summary()
    latest = {k: v for k, v in (train[-1] if train else {}).items() if k != "time"}
    total = max_steps(run.run_dir)
    step = max(latest.get("step", 0), summary.global_step or 0)
    done, eta = progress(run.status, step, total, train, run.started_at)
    return {
        "run_id": run.id,
        "status": run.status,
        "error": run.error,
        "exit_reason": run.exit_reason,
        "step": step,
        "max_steps": total,
        "progress": done,
        "eta_s": eta,
        "latest": latest,
        "final_metrics": summary.get("final_metrics"),  # None (not {}) before the run ends
    }


def _method_keys(run_dir, metrics: list[dict]) -> tuple[str, ...]:
    """The metrics.jsonl keys the run's method charts (trainers.methods): `charted`, plus `charted_if_logged`
    keys this run did log; () for a method without charts (SFT) or an unknown one."""
    name = run_config(run_dir).get("method")
    if name not in methods.names():
        return ()
    method = methods.get(name)
    logged = {k for m in metrics for k, v in m.items() if v is not None}
    return method.charted + tuple(k for k in method.charted_if_logged if k in logged)


def curves(queue, run_id: str, owner: str | None) -> dict:
    """{"train": [(step, loss)], "held_out": [(step, loss)] (evaluations: points, never a line), "learning_rate":
    [(step, lr)], "method_keys": the keys the run's method charts, "per_metric": {key: [(step, value)]}}."""
    run = queue.get(run_id, owner)
    metrics = RunFolder(run.run_dir).metrics()
    keys = _method_keys(run.run_dir, metrics)
    return {
        "train": [(m["step"], m["loss"]) for m in metrics if m.get("loss") is not None],
        "held_out": [(m["step"], m["eval_loss"]) for m in metrics if m.get("eval_loss") is not None],
        "learning_rate": [(m["step"], m["learning_rate"]) for m in metrics if "learning_rate" in m],
        "method_keys": keys,
        "per_metric": {k: [(m["step"], m[k]) for m in metrics if m.get(k) is not None] for k in keys},
    }


def _evaluates(cfg: dict) -> bool:
    """Whether the run has held-out data (an eval source or split, or a carved share)."""
    data = cfg.get("data") or {}
    if data.get("eval_source") or data.get("eval_split"):
        return True
    size = data.get("eval_size", 0.05)  # trainers.config's default
    try:
        return float(size or 0) > 0
    except (TypeError, ValueError):
        return False


def next_eval(run_dir: str | Path, step: int, status: str, measured: bool = True) -> str | None:
    """When the next held-out loss comes, as words: "next held-out loss at step 40", "... at the end", or
    None when there is none to come (no held-out data, or the run is over). `measured`: a held-out loss was
    logged already (a fresh run measures one before its first step)."""
    cfg = run_config(run_dir)
    if status not in ("queued", "running", "waiting", "interrupted") or not _evaluates(cfg):
        return None
    if not measured and not step:
        return "first held-out loss before the first step"
    training = cfg.get("training") or {}
    strategy = str(training.get("eval_strategy") or "no").lower()
    total = _max_steps_of(cfg)
    if strategy == "steps":
        every = training.get("eval_steps") or training.get("logging_steps") or 500
        try:
            every = float(every)
        except (TypeError, ValueError):
            every = 0.0
        if 0 < every < 1 and total:  # a share of the run
            every = every * total
        every = int(every) if every >= 1 else 0
        if every:
            upcoming = (step // every + 1) * every
            if not total or upcoming < total:
                return f"next held-out loss at step {upcoming}"
    elif strategy == "epoch":
        return "next held-out loss at the end of this epoch"
    return "next held-out loss at the end"


def queue_position(queue, run_id: str, owner: str | None) -> int | None:
    """1 for the run the worker starts next: its place among every owner's queued runs (only the count of
    those ahead is used, never who they are or what they are called); None when the run is not queued."""
    run = queue.get(run_id, owner)  # refuses another owner's run
    if run.status != "queued":
        return None
    ahead = [r.id for r in queue.store.list(ANY_OWNER, ("queued",))]
    return ahead.index(run.id) + 1 if run.id in ahead else None


def default_run(queue, owner: str | None) -> str | None:
    """The run to show when none is chosen: the owner's running run, else their newest."""
    if not owner:
        return None
    runs = queue.list(owner)
    running = [r for r in runs if r.status == "running"]
    chosen = running or runs  # oldest first
    return chosen[-1].id if chosen else None


def run_summary(queue, run_id: str, owner: str | None) -> dict:
    """A finished run's numbers (summary.json): held-out loss before and after, train loss, wall time, tokens
    seen, steps, peak memory and its kind; {} before it ends."""
    run = queue.get(run_id, owner)
    summary = RunFolder(run.run_dir).summary()
    if summary.status in ("missing", "running"):
        return {}
    final = summary.final_metrics
    out = {
        "status": summary.status,
        "eval_loss_before": final.get("eval_loss_before"),
        "eval_loss_after": final.get("eval_loss"),
        "train_loss": final.get("train_loss"),
        "wall_time_s": summary.wall_time_s,
        "tokens_seen": summary.tokens_seen,
        "global_step": summary.global_step,
        "peak_memory_mb": summary.peak_memory_mb,
        "peak_memory_kind": summary.peak_memory_kind,
    }
    return {k: v for k, v in out.items() if v is not None}


def run_label(run) -> str:
    """How a run is named on shared charts and tables: its name and the end of its id."""
    return f"{run.name} · {run.id[-6:]}"


def overlay(queue, run_ids: list[str], owner: str | None, x: str = "step") -> list[tuple]:
    """[(x, train loss, run label)] of several runs on one axis: x "step" or "tokens_seen" (rows that did not
    log tokens seen are left out of a tokens axis)."""
    rows = []
    for run_id in run_ids:
        run = queue.get(run_id, owner)
        label = run_label(run)
        for m in RunFolder(run.run_dir).metrics():
            if m.get("loss") is not None and m.get(x) is not None:
                rows.append((m[x], m["loss"], label))
    return rows


def _flatten(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_diff(queue, run_ids: list[str], owner: str | None) -> tuple[list[str], list[tuple]]:
    """(run labels, [(dotted.path, value of run 1, value of run 2, ...)]): only the config.yaml settings that
    differ between the runs; a setting a run lacks reads None."""
    runs = [queue.get(run_id, owner) for run_id in run_ids]
    flat = [_flatten(run_config(run.run_dir)) for run in runs]
    keys = sorted(set().union(*flat)) if flat else []
    rows = []
    for key in keys:
        values = [f.get(key) for f in flat]
        if any(v != values[0] for v in values[1:]):
            rows.append((key, *values))
    return [run_label(run) for run in runs], rows
