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
from core.runfolder import RunFolder
from data.formats import INSTRUCTION, KIND_NAMES, PREFERENCE
from evaluation import judging, render
from evaluation.evaluate import evaluate, load_rows
from evaluation.judges.verifiable import references_of
from evaluation.metrics import heldout_prompts, split_row
from trainers import config as config_mod
from trainers import estimate as estimator
from trainers import methods
from trainers.config import ModelSection, read_yaml
from trainers.models import resolve_and_load_tokenizer

log = logging.getLogger(__name__)
ARMS = methods.arms()  # {arm: label}: every method that can be an arm, then the chains (trainers/methods.py)
EVAL_DEFAULTS = {"generations": 6, "max_new_tokens": 48, "beta": 0.1, "max_length": 512, "tier": None}
DATA_KEYS = tuple(dict.fromkeys(m.compare_data for m in methods.METHODS.values()))  # sft_data, preference_data
TRAINING_KEYS = tuple(f"{name}_training" for name in methods.names())  # sft_training, dpo_training
KEYS = {"model", "peft", "data", *DATA_KEYS, "arms", "seed", "training", *TRAINING_KEYS, "existing", "evaluation"}
KEYS |= {"rewards", "prompting", "judges"}  # GRPO arms' rewards; the prompting arm's system prompt and examples
DEFAULT_ARMS = ("sft", "dpo", "sft_dpo")  # the comparison a config without `arms:` runs
# Arms that train nothing: the base itself (always evaluated) and the base prompted with a system prompt and k
# examples drawn from the training rows, the cheap alternative to try before paying for training.
UNTRAINED = {"base": "Base model", "prompting": "Prompting (base + system prompt + examples)"}
PROMPTING_DEFAULTS = {"system_prompt": None, "examples": 3}


def load(path: str | Path) -> dict:
    return validate(read_yaml(path, "Comparison config"))


def validate(raw: dict) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError("A comparison config is a mapping with model, sft_data, preference_data and arms.")
    unknown = set(raw) - KEYS
    if unknown:
        raise ConfigError(f"Unknown comparison keys {sorted(unknown)}: use {sorted(KEYS)}.")
    cfg = copy.deepcopy(raw)
    shared = cfg.pop("data", None)
    for key in DATA_KEYS:
        cfg.setdefault(key, shared)
    cfg.setdefault("arms", list(DEFAULT_ARMS))
    bad = [a for a in cfg["arms"] if a not in ARMS and a not in UNTRAINED]
    if bad:
        raise ConfigError(f"Unknown arms {bad}: choose from {', '.join([*UNTRAINED, *ARMS])}.")
    prompting = {**PROMPTING_DEFAULTS, **(cfg.get("prompting") or {})}
    if (
        not isinstance(prompting["examples"], int)
        or isinstance(prompting["examples"], bool)
        or prompting["examples"] < 0
    ):
        raise ConfigError(
            f"prompting.examples must be a whole number of examples, 0 or more; got {prompting['examples']!r}."
        )
    cfg["prompting"] = prompting
    cfg["judges"] = judging.validate(cfg.get("judges"))
    if cfg["judges"].get("reward_model", {}).get("train") and not cfg.get("preference_data"):
        raise ConfigError("judges.reward_model.train trains the judge on preference_data (or data): give one.")
    if "prompting" in cfg["arms"] and not cfg.get("sft_data"):
        raise ConfigError("The prompting arm draws its examples from sft_data (or data): give one.")
    if not cfg.get("model"):
        raise ConfigError("The comparison needs model: {name_or_path: ...} (the one base every arm starts from).")
    staged = {stage for arm in cfg["arms"] if arm in ARMS for stage in methods.stages(arm)}
    for method in methods.METHODS.values():
        if method.name in staged and not cfg.get(method.compare_data):
            kind = KIND_NAMES[method.data_kinds[0]]
            raise ConfigError(f"The {method.label} arms need {method.compare_data} (or data) with a dataset of {kind}.")
    cfg.setdefault("seed", 42)
    cfg["evaluation"] = {**EVAL_DEFAULTS, **(cfg.get("evaluation") or {})}
    tier = cfg["evaluation"]["tier"]
    if tier is not None and tier not in {t["name"] for t in estimator.tiers()}:
        names = ", ".join(t["name"] for t in estimator.tiers())
        raise ConfigError(
            f"evaluation.tier {tier!r} is not a Spaces tier: use one of {names} (for the cost in dollars)."
        )
    for section in DATA_KEYS:  # local files: absolute, so arms run from anywhere
        data = cfg.get(section) or {}
        for key in ("source", "eval_source"):
            if data.get(key) and Path(data[key]).expanduser().exists():
                data[key] = str(Path(data[key]).expanduser().resolve())
    for run in plan(cfg).values():  # every arm must be a valid RunConfig before anything is queued
        config_mod.from_dict({**run, "init_from": None})
    return cfg


def plan(cfg: dict) -> dict[str, dict]:
    """{arm: RunConfig mapping}, plain methods first, then chains.  A chain (SFT→DPO) trains its last stage from
    the run of its earlier stage, which is planned as that method's own arm: its init_from names that arm and is
    filled in once the arm's run folder is known."""
    seed = cfg.get("seed", 42)

    def run(name: str) -> dict:
        method = methods.get(name)
        return {
            "method": name,
            "model": copy.deepcopy(cfg["model"]),
            "peft": copy.deepcopy(cfg.get("peft") or {}),
            "data": {**copy.deepcopy(cfg[method.compare_data]), "seed": seed},
            "training": {**(cfg.get("training") or {}), **(cfg.get(f"{name}_training") or {}), "seed": seed},
            **({"rewards": copy.deepcopy(cfg.get("rewards") or [])} if name == "grpo" else {}),
        }

    trained = [arm for arm in cfg["arms"] if arm in ARMS]
    wanted = {stage for arm in trained for stage in methods.stages(arm)[:-1]} | set(trained)
    out = {}
    for arm in methods.arms():
        if arm not in wanted:
            continue
        *earlier, last = methods.stages(arm)
        out[arm] = {**run(last), "init_from": earlier[-1]} if earlier else run(last)
    if ((cfg.get("judges") or {}).get("reward_model") or {}).get("train"):
        out["reward"] = run("reward")  # the reward-model judge, trained on the same preference data
    return out


def train_arms(cfg: dict, out_dir: Path) -> dict[str, Path]:
    """Train each planned arm in its own `python -m trainers train` process, in order; returns run folders.
    (The app queues the same plan through the jobs worker instead.)"""
    runs: dict[str, Path] = {}
    for arm, run in plan(cfg).items():
        run_dir = out_dir / "runs" / arm
        run_dir.mkdir(parents=True, exist_ok=True)
        if run.get("init_from") in runs:  # a chain's later stage starts from its earlier stage's run
            run["init_from"] = str(runs[run["init_from"]])
        config_path = run_dir / "arm.yaml"
        config_path.write_text(yaml.safe_dump(run, sort_keys=False), encoding="utf-8")
        log.info("training arm %s into %s", arm, run_dir)
        cmd = [sys.executable, "-m", "trainers", "train", str(config_path), "--output-dir", str(run_dir)]
        with open(run_dir / "console.log", "ab") as console:  # the engine's own log is train.log
            code = subprocess.run(cmd, check=False, stdin=subprocess.DEVNULL, stdout=console, stderr=console).returncode
        log.info("arm %s finished with exit code %s", arm, code)
        runs[arm] = run_dir
    return runs


def cost(run_dir: Path) -> dict:
    s = RunFolder(run_dir).summary()
    return {
        "wall_time_s": s.wall_time_s,
        "trainable_params": s.trainable_params,
        "peak_memory_mb": s.peak_memory_mb,
        "peak_memory_kind": s.peak_memory_kind,
        "tokens_seen": s.tokens_seen,
        "steps": s.global_step,
    }


def heldout_rows(cfg: dict, tokenizer) -> tuple[list, list]:
    """The held-out instruction rows and preference pairs, exactly as the arms split them (same seed), whole: the
    data layer is given no max_length, so it shortens or drops none of them; the evaluation cuts a row longer than
    its own max_length itself and counts it (metrics.encode_cut, encode_pair; the report says how many)."""
    seed = cfg.get("seed", 42)
    out = []
    for kind in (INSTRUCTION, PREFERENCE):
        method = methods.for_kind(kind)
        data = cfg.get(method.compare_data)
        out.append(load_rows({**data, "seed": seed} if data else None, method.task, tokenizer, None))
    return out[0], out[1]


def arm_cost(entry: dict) -> dict:
    """What an arm cost: wall time (a chain's includes the stage it started from), trainable params, peak memory."""
    c = entry.get("cost") or {}
    wall = next((v for k, v in c.items() if k.startswith("wall_time_s_with_")), c.get("wall_time_s"))
    out = {
        "wall_time_s": wall,
        "trainable_params": c.get("trainable_params"),
        "peak_memory_mb": c.get("peak_memory_mb"),
    }
    return {**out, **({"dollars": c["dollars"]} if c.get("dollars") is not None else {})}


def hub_token() -> str | None:
    """The user's own token for the LLM judge (the CLI's environment; the app's child gets its owner's token)."""
    from huggingface_hub import get_token

    return get_token()


def _flat(value, prefix=""):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def config_diff(planned: dict[str, dict], arms: list[str]) -> dict:
    """{setting: {arm: value}} for the settings that differ between the trained arms (the rest is shared)."""
    flat = {arm: _flat(run) for arm, run in planned.items() if arm in arms}
    keys = sorted({k for f in flat.values() for k in f})
    return {
        k: {arm: f.get(k) for arm, f in flat.items()} for k in keys if len({repr(f.get(k)) for f in flat.values()}) > 1
    }


def prompting_context(cfg: dict, tokenizer) -> list[dict]:
    """The prompting arm's messages: its system prompt, then k example exchanges drawn (with the comparison's seed)
    from the training rows of sft_data — never from the held-out rows."""
    import random

    settings = cfg.get("prompting") or PROMPTING_DEFAULTS
    rows = load_rows(
        {**cfg["sft_data"], "seed": cfg.get("seed", 42)},
        methods.for_kind(INSTRUCTION).task,
        tokenizer,
        None,
        held_out=False,
    )
    examples = random.Random(cfg.get("seed", 42)).sample(rows, min(settings["examples"], len(rows)))
    context = [{"role": "system", "content": settings["system_prompt"]}] if settings.get("system_prompt") else []
    for row in examples:
        prompt, completion = split_row(row)
        if isinstance(prompt, list) and isinstance(completion, list):
            context += [m for m in prompt if m["role"] != "system"] + completion
    return context


def truncation(cfg: dict, scored: dict, max_length: int) -> dict:
    """How the held-out rows were cut to the evaluation's max_length (the counts in `scored`, a model's metrics:
    they depend on the rows and the tokenizer only, so they are the same for every model) and what each method's
    training does with overlong rows (its max_length, and the side it keeps: trainers/methods.py)."""
    training = {}
    for run in plan(cfg).values():
        method = methods.get(run["method"])
        args = {**method.defaults, **run["training"]}
        training.setdefault(method.name, {"max_length": args.get("max_length"), "keeps": method.truncation_side(args)})
    out: dict = {"max_length": max_length, "training": training}
    if "rows" in scored:
        out["sft_rows"] = {"prompt_cut": scored["rows_prompt_cut"], "reply_cut": scored["rows_reply_cut"]}
    if "pairs_excluded" in scored:
        out["preference_pairs"] = {
            "scored": scored["pairs"],
            "prompt_cut": scored["pairs_prompt_cut"],
            "excluded": scored["pairs_excluded"],
        }
    return out


def report(cfg: dict, runs: dict[str, Path], out_dir: Path) -> dict:
    """Evaluate the base and every finished arm on the same held-out sets; write report.json/report.md/images."""
    ev = cfg["evaluation"]
    selected = {arm: runs[arm] for arm in cfg["arms"] if arm in runs}
    selected.update({name: Path(path) for name, path in (cfg.get("existing") or {}).items()})
    arms: dict[str, dict] = {}
    adapters: dict[str, str | None] = {"base": None}
    for name, run_dir in selected.items():
        folder = RunFolder(run_dir)
        summary = folder.summary()
        status = summary.status
        error = summary.error
        entry = {"label": ARMS.get(name, name), "run_dir": str(run_dir), "status": status, "cost": cost(run_dir)}
        earlier = methods.stages(name)[:-1] if name in ARMS else ()
        if earlier and earlier[0] in runs:  # a chain's real cost includes the stage it started from
            key = f"wall_time_s_with_{earlier[0]}"
            entry["cost"][key] = (entry["cost"]["wall_time_s"] or 0) + (cost(runs[earlier[0]])["wall_time_s"] or 0)
        if status == "succeeded" and summary.model not in (None, cfg["model"]["name_or_path"]):
            status = entry["status"] = "skipped"  # scoring it on another base would not be a fair comparison
            error = f"it was trained on {summary.model}, not on {cfg['model']['name_or_path']}"
        if status != "succeeded":
            entry["error"] = error or (
                f"it never ran (the {ARMS[earlier[0]]} arm it starts from failed)" if earlier else "it did not finish"
            )
        else:
            adapters[name] = str(folder.adapter_path)
        entry["metrics_rows"] = folder.metrics()
        arms[name] = entry

    tokenizer, base_path = resolve_and_load_tokenizer(ModelSection(**cfg["model"]))
    tokenizer_path = next((p for p in adapters.values() if p), base_path)
    max_length = ev["max_length"]
    sft_rows, pref_rows = heldout_rows(cfg, tokenizer)
    prompts = heldout_prompts(sft_rows, pref_rows, ev["generations"])
    contexts = {}
    if "prompting" in cfg["arms"]:
        contexts["prompting"] = prompting_context(cfg, tokenizer)
        adapters["prompting"] = None
        arms["prompting"] = {
            "label": UNTRAINED["prompting"],
            "status": "succeeded",
            "untrained": True,
            "context": contexts["prompting"],
            "cost": {"wall_time_s": 0.0, "trainable_params": 0},
            "metrics_rows": [],
        }
    results = evaluate(
        base_path,
        tokenizer_path,
        adapters,
        sft_rows,
        pref_rows,
        prompts,
        ev["beta"],
        ev["max_new_tokens"],
        max_length,
        contexts=contexts,
    )
    replies = {name: results[name]["generations"] for name in adapters if name in results}
    references = references_of(sft_rows[: len(prompts)]) if sft_rows else [None] * len(prompts)
    price = next((t["usd_per_hour"] for t in estimator.tiers() if t["name"] == ev.get("tier")), None)
    for entry in arms.values():
        wall = arm_cost(entry)["wall_time_s"]
        if price is not None and wall is not None:
            entry["cost"]["dollars"] = round(wall / 3600 * price, 4)  # this arm's time at the tier's price
    costs = {name: arm_cost(entry) for name, entry in arms.items() if entry.get("status") == "succeeded"}
    costs["base"] = {"wall_time_s": 0.0, "trainable_params": 0}
    labels = {"base": "base", **{name: entry["label"] for name, entry in arms.items()}}
    judges = judging.run(
        cfg["judges"], prompts, references, replies, base_path, adapters, runs, costs, hub_token(), labels
    )
    data = {
        "base_model": cfg["model"]["name_or_path"],
        "verdict": judges.pop("verdict"),
        "judges": judges,
        "config_diff": config_diff(plan(cfg), cfg["arms"]),
        "settings": {
            "seed": cfg.get("seed"),
            "peft": cfg.get("peft"),
            "held_out": {"sft_rows": len(sft_rows), "preference_pairs": len(pref_rows)},
            "evaluation": ev,
            "truncation": truncation(cfg, results["base"]["metrics"], max_length),
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
