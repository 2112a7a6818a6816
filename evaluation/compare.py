"""SFT vs DPO vs SFT→DPO on the same base: plan the arms, train them, evaluate them fairly, write the report.

A comparison config (templates/recipes/demo-compare.yaml) names one base model, PEFT settings, seeds, an
instruction dataset and a preference dataset (or one `data:` that serves both), the arms to run and any
existing runs to add. Every arm gets the same model, PEFT, seed and held-out splits; every model is scored on
the same held-out rows (evaluation/evaluate.py). A failed arm is reported as failed with its reason.
"""

from __future__ import annotations

import copy
import json
import logging
import subprocess
import sys
from pathlib import Path

import yaml

from core.errors import ConfigError

log = logging.getLogger(__name__)
ARMS = {"sft": "SFT", "dpo": "DPO", "sft_dpo": "SFT→DPO"}
EVAL_DEFAULTS = {"generations": 6, "max_new_tokens": 48, "beta": 0.1, "max_length": 512}
KEYS = {"model", "peft", "data", "sft_data", "preference_data", "arms", "seed", "training", "sft_training"}
KEYS |= {"dpo_training", "existing", "evaluation"}


def load(path: str | Path) -> dict:
    from trainers.config import read_yaml

    return validate(read_yaml(path, "Comparison config"))


def validate(raw: dict) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError("A comparison config is a mapping with model, sft_data, preference_data and arms.")
    unknown = set(raw) - KEYS
    if unknown:
        raise ConfigError(f"Unknown comparison keys {sorted(unknown)}: use {sorted(KEYS)}.")
    cfg = copy.deepcopy(raw)
    shared = cfg.pop("data", None)
    cfg.setdefault("sft_data", shared)
    cfg.setdefault("preference_data", shared)
    cfg.setdefault("arms", list(ARMS))
    bad = [a for a in cfg["arms"] if a not in ARMS]
    if bad:
        raise ConfigError(f"Unknown arms {bad}: choose from {', '.join(ARMS)}.")
    if not cfg.get("model"):
        raise ConfigError("The comparison needs model: {name_or_path: ...} (the one base every arm starts from).")
    if {"sft", "sft_dpo"} & set(cfg["arms"]) and not cfg.get("sft_data"):
        raise ConfigError("The SFT arms need sft_data (or data) with an instruction dataset.")
    if {"dpo", "sft_dpo"} & set(cfg["arms"]) and not cfg.get("preference_data"):
        raise ConfigError("The DPO arms need preference_data (or data) with a preference dataset.")
    cfg.setdefault("seed", 42)
    cfg["evaluation"] = {**EVAL_DEFAULTS, **(cfg.get("evaluation") or {})}
    for section in ("sft_data", "preference_data"):  # local files: absolute, so arms run from anywhere
        data = cfg.get(section) or {}
        for key in ("source", "eval_source"):
            if data.get(key) and Path(data[key]).expanduser().exists():
                data[key] = str(Path(data[key]).expanduser().resolve())
    from trainers import config as config_mod

    for run in plan(cfg).values():  # every arm must be a valid RunConfig before anything is queued
        config_mod.from_dict({**run, "init_from": None})
    return cfg


def plan(cfg: dict) -> dict[str, dict]:
    """{arm: RunConfig mapping}; sft_dpo's init_from is filled in once the SFT run folder is known."""
    seed = cfg.get("seed", 42)

    def run(method: str, data: dict, extra: dict | None) -> dict:
        return {
            "method": method,
            "model": copy.deepcopy(cfg["model"]),
            "peft": copy.deepcopy(cfg.get("peft") or {}),
            "data": {**copy.deepcopy(data), "seed": seed},
            "training": {**(cfg.get("training") or {}), **(extra or {}), "seed": seed},
        }

    arms = set(cfg["arms"])
    out = {}
    if arms & {"sft", "sft_dpo"}:
        out["sft"] = run("sft", cfg["sft_data"], cfg.get("sft_training"))
    if "dpo" in arms:
        out["dpo"] = run("dpo", cfg["preference_data"], cfg.get("dpo_training"))
    if "sft_dpo" in arms:
        out["sft_dpo"] = {**run("dpo", cfg["preference_data"], cfg.get("dpo_training")), "init_from": "sft"}
    return out


def train_arms(cfg: dict, out_dir: Path) -> dict[str, Path]:
    """Train each planned arm in its own `python -m trainers train` process, in order; returns run folders.
    (The app queues the same plan through the jobs worker instead.)"""
    runs: dict[str, Path] = {}
    for arm, run in plan(cfg).items():
        run_dir = out_dir / "runs" / arm
        run_dir.mkdir(parents=True, exist_ok=True)
        if run.get("init_from") == "sft":
            run["init_from"] = str(runs["sft"])
        config_path = run_dir / "arm.yaml"
        config_path.write_text(yaml.safe_dump(run, sort_keys=False), encoding="utf-8")
        log.info("training arm %s into %s", arm, run_dir)
        cmd = [sys.executable, "-m", "trainers", "train", str(config_path), "--output-dir", str(run_dir)]
        with open(run_dir / "console.log", "ab") as console:  # the engine's own log is train.log
            code = subprocess.run(cmd, check=False, stdin=subprocess.DEVNULL, stdout=console, stderr=console).returncode
        log.info("arm %s finished with exit code %s", arm, code)
        runs[arm] = run_dir
    return runs


def _summary(run_dir: Path) -> dict:
    path = run_dir / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def cost(run_dir: Path) -> dict:
    s = _summary(run_dir)
    peak = s.get("peak_gpu_mb") or s.get("peak_rss_mb")
    return {
        "wall_time_s": s.get("wall_time_s"),
        "trainable_params": s.get("trainable_params"),
        "peak_memory_mb": peak,
        "peak_memory_kind": "GPU" if s.get("peak_gpu_mb") else "RSS",
        "tokens_seen": s.get("tokens_seen"),
        "steps": s.get("global_step"),
    }


def heldout_rows(cfg: dict, tokenizer, max_length: int | None) -> tuple[list, list]:
    """The held-out instruction rows and preference pairs, exactly as the arms split them (same seed)."""
    from evaluation.evaluate import load_rows

    seed = cfg.get("seed", 42)
    sft = {**cfg["sft_data"], "seed": seed} if cfg.get("sft_data") else None
    pref = {**cfg["preference_data"], "seed": seed} if cfg.get("preference_data") else None
    return load_rows(sft, "sft", tokenizer, max_length), load_rows(pref, "dpo", tokenizer, max_length)


def report(cfg: dict, runs: dict[str, Path], out_dir: Path) -> dict:
    """Evaluate the base and every finished arm on the same held-out sets; write report.json/report.md/images."""
    from evaluation import render
    from evaluation.evaluate import evaluate
    from trainers.config import ModelSection
    from trainers.metrics_file import read_metrics
    from trainers.models import resolve_and_load_tokenizer

    ev = cfg["evaluation"]
    selected = {arm: runs[arm] for arm in cfg["arms"] if arm in runs}
    selected.update({name: Path(path) for name, path in (cfg.get("existing") or {}).items()})
    arms: dict[str, dict] = {}
    adapters: dict[str, str | None] = {"base": None}
    for name, run_dir in selected.items():
        summary = _summary(run_dir)
        status = summary.get("status", "missing")
        entry = {"label": ARMS.get(name, name), "run_dir": str(run_dir), "status": status, "cost": cost(run_dir)}
        if name == "sft_dpo" and "sft" in runs:  # its real cost includes the SFT stage it started from
            entry["cost"]["wall_time_s_with_sft"] = (entry["cost"]["wall_time_s"] or 0) + (
                cost(runs["sft"])["wall_time_s"] or 0
            )
        if status == "succeeded" and summary.get("model") not in (None, cfg["model"]["name_or_path"]):
            status = entry["status"] = "skipped"  # scoring it on another base would not be a fair comparison
            summary["error"] = f"it was trained on {summary['model']}, not on {cfg['model']['name_or_path']}"
        if status != "succeeded":
            entry["error"] = summary.get("error") or (
                "it never ran (the SFT arm it starts from failed)" if name == "sft_dpo" else "it did not finish"
            )
        else:
            adapters[name] = str(run_dir / "adapter")
        entry["metrics_rows"] = read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
        arms[name] = entry

    tokenizer, base_path = resolve_and_load_tokenizer(ModelSection(**cfg["model"]))
    tokenizer_path = next((p for p in adapters.values() if p), base_path)
    max_length = ev["max_length"]
    sft_rows, pref_rows = heldout_rows(cfg, tokenizer, max_length)
    from evaluation.metrics import heldout_prompts

    prompts = heldout_prompts(sft_rows, pref_rows, ev["generations"])
    results = evaluate(
        base_path, tokenizer_path, adapters, sft_rows, pref_rows, prompts, ev["beta"], ev["max_new_tokens"], max_length
    )
    data = {
        "base_model": cfg["model"]["name_or_path"],
        "settings": {
            "seed": cfg.get("seed"),
            "peft": cfg.get("peft"),
            "held_out": {"sft_rows": len(sft_rows), "preference_pairs": len(pref_rows)},
            "evaluation": ev,
        },
        "base": results["base"],
        "arms": {},
        "prompts": prompts,
    }
    for name, entry in arms.items():
        rows = entry.pop("metrics_rows")
        entry.update(results.get(name, {}))
        data["arms"][name] = entry
        entry["_rows"] = rows
    render.write(data, out_dir)
    return data


def compare(config_path: str | Path, out_dir: str | Path) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = load(config_path)
    (out_dir / "comparison.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    runs = train_arms(cfg, out_dir)
    return report(cfg, runs, out_dir)


def report_folder(folder: Path) -> dict:
    """Rebuild the report of a comparison folder (the app's queued arms are listed in arms.json)."""
    cfg = validate(yaml.safe_load((folder / "comparison.yaml").read_text(encoding="utf-8")))
    listed = folder / "arms.json"
    if listed.exists():
        runs = {arm: Path(path) for arm, path in json.loads(listed.read_text(encoding="utf-8")).items()}
    else:
        runs = {arm: folder / "runs" / arm for arm in plan(cfg)}
    return report(cfg, runs, folder)
