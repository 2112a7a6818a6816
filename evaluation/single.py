"""`python -m evaluation eval`: one run, adapter or model against its base on held-out data."""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import ConfigError, user_message
from data.formats import INSTRUCTION, PREFERENCE
from evaluation.evaluate import evaluate, load_rows, resolve_model
from evaluation.metrics import heldout_prompts
from trainers import methods


def evaluate_target(target, data=None, pref_data=None, generations=4, max_new_tokens=48, beta=0.1) -> dict:
    import yaml
    from transformers import AutoTokenizer

    base, adapter, tokenizer_path = resolve_model(str(target))
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    except Exception as exc:
        if Path(str(target)).expanduser().exists():
            raise
        raise ConfigError(
            f"{target} is not a run, adapter or model folder here, and as a Hub id it failed: {user_message(exc)}"
        ) from exc
    run_config = Path(target) / "config.yaml"
    sft_rows, pref_rows = [], []
    if data:
        sft_rows = load_rows({"source": data}, methods.for_kind(INSTRUCTION).task, tokenizer, None, held_out=False)
    if pref_data:
        pref_rows = load_rows({"source": pref_data}, methods.for_kind(PREFERENCE).task, tokenizer, None, held_out=False)
    if not data and not pref_data:
        if not run_config.exists():
            raise ConfigError("Pass --data and/or --pref-data (held-out files or Hub ids) to evaluate on.")
        cfg = yaml.safe_load(run_config.read_text(encoding="utf-8"))
        method = methods.get(cfg.get("method") or methods.names()[0])
        rows = load_rows(cfg["data"], method.task, tokenizer, None)
        # held-out rows are scored by their kind: instruction rows by NLL, preference pairs by log-prob margins
        sft_rows, pref_rows = (rows, []) if INSTRUCTION in method.data_kinds else ([], rows)
        if not rows:
            raise ConfigError("This run has no held-out split: pass --data and/or --pref-data.")
    prompts = heldout_prompts(sft_rows, pref_rows, generations)
    results = evaluate(
        base,
        tokenizer_path,
        {"base": None, "model": adapter or base},
        sft_rows,
        pref_rows,
        prompts,
        beta,
        max_new_tokens,
    )
    return {"target": str(target), "base_model": base, **results, "prompts": json.loads(json.dumps(prompts))}
