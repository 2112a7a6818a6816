"""A run's status, progress and ETA, and the series its charts show: what the Runs tab, /run_status, the
comparison view and `python -m jobs status` read.  No gradio, no pandas: plain dicts and tuples.

`queue` is a jobs.api.JobQueue; every call names an owner (the queue refuses a missing one).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from core.runfolder import RunFolder
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
    steps = (run_config(run_dir).get("training") or {}).get("max_steps")
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
    if train and step and status == "running":
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


def charted_keys() -> dict[str, str]:
    """{metrics.jsonl key: series name} of every method's charted metrics (the method table's `charted`)."""
    keys: dict[str, str] = {}
    for _, name in methods.choices():
        for key in methods.get(name).charts:
            keys.setdefault(key, key.split("/")[-1])
    return keys


def curves(queue, run_id: str, owner: str | None) -> dict[str, list[tuple]]:
    """{"loss": [(step, value, series)], "learning_rate": [...], "method": [...]}: train and held-out loss, the
    learning rate, and the metrics the run's method charts (trainers.methods)."""
    run = queue.get(run_id, owner)
    metrics = RunFolder(run.run_dir).metrics()
    loss = [(m["step"], m["loss"], "train") for m in metrics if m.get("loss") is not None]
    loss += [(m["step"], m["eval_loss"], "held-out") for m in metrics if m.get("eval_loss") is not None]
    lr = [(m["step"], m["learning_rate"], "learning rate") for m in metrics if "learning_rate" in m]
    name = run_config(run.run_dir).get("method")
    keys = methods.get(name).charts if name in methods.names() else ()
    series = charted_keys()
    charted = [(m["step"], m[k], series[k]) for m in metrics for k in keys if m.get(k) is not None]
    return {"loss": loss, "learning_rate": lr, "method": charted}
