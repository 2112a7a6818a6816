"""Evaluate a base model and any number of adapters (or full models) on the same held-out sets.

The base is loaded once; adapters are attached to it by name (PEFT) and the base is scored with adapters
disabled, so every model sees identical rows, tokenization, batch order and max tokens.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from core.runfolder import RunFolder, adapter_location
from data import doctor
from data.formats import Task
from data.splits import load_for_run
from evaluation import metrics
from trainers.config import DataSection
from trainers.models import refuse_scorer, resolve_model_path

log = logging.getLogger(__name__)


def load_rows(section: dict | None, task: Task, tokenizer, max_length: int | None, held_out: bool = True):
    """Rows in TRL's standard form: the held-out split of a `data:` section (or all rows with held_out=False),
    checked as the data of `task` (a method's data.formats.Task, trainers/methods.py)."""
    if not section:
        return []
    data = DataSection(**section)
    if not held_out:
        data.eval_source, data.eval_split, data.eval_size = None, None, 0
    train, eval_ds, _, _, reports = load_for_run(data, task, tokenizer, max_length)
    doctor.raise_on_errors(*reports)
    rows = eval_ds if held_out else train
    return [] if rows is None else list(rows)


def is_adapter(path: str | Path) -> bool:
    return (Path(path) / "adapter_config.json").exists()


def resolve_model(target: str) -> tuple[str, str | None, str]:
    """(base model path, adapter path or None, tokenizer path) for a run folder, adapter folder or model."""
    path = Path(target)
    folder = RunFolder(path)
    if folder.is_run() and folder.adapter_path.is_dir():
        summary, adapter = folder.summary(), folder.adapter_path
        if is_adapter(adapter):
            refuse_scorer(json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8")), str(target))
        if is_adapter(adapter):
            return summary.model_path or summary["model"], str(adapter), str(adapter)
        return str(adapter), None, str(adapter)
    if adapter_location(path) == path and is_adapter(path):
        adapter_config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
        refuse_scorer(adapter_config, str(target))
        base = adapter_config["base_model_name_or_path"]
        return base, str(path), str(path)
    resolved = resolve_model_path(target)
    return resolved, None, resolved


def with_context(prompt, context: list[dict] | None):
    """A prompt (message list) with a prompting arm's context in front: its system turn (replacing the row's) and
    its example exchanges, then the row's own turns.  Plain-text prompts are returned unchanged."""
    if not context or not isinstance(prompt, list):
        return prompt
    system = [m for m in context[:1] if m["role"] == "system"]
    examples = context[len(system) :]
    row_system = prompt[:1] if prompt and prompt[0]["role"] == "system" else []
    return [*(system or row_system), *examples, *prompt[len(row_system) :]]


def _in_context(sft_rows: list[dict], pref_rows: list[dict], prompts: list, context: list[dict]):
    """The held-out rows and prompts as a prompting arm sees them (context before every prompt)."""
    sft = []
    for row in sft_rows:
        prompt, completion = metrics.split_row(row)
        if "messages" in row:
            sft.append({"messages": [*with_context(prompt, context), *completion]})
        elif isinstance(prompt, list):
            sft.append({**row, "prompt": with_context(prompt, context)})
        else:
            sft.append(row)
    pref = [{**p, "prompt": with_context(p["prompt"], context)} for p in pref_rows]
    return sft, pref, [with_context(p, context) for p in prompts]


def evaluate(
    base_path: str,
    tokenizer_path: str,
    adapters: dict[str, str | None],
    sft_rows: list[dict],
    pref_rows: list[dict],
    prompts: list,
    beta: float = 0.1,
    max_new_tokens: int = 48,
    max_length: int = metrics.MAX_LENGTH,
    contexts: dict[str, list[dict]] | None = None,
) -> dict[str, dict]:
    """{name: metrics} for each entry of `adapters` (None = the base itself; a folder without
    adapter_config.json = a full model). Implicit rewards are against the base.  `contexts` gives an arm (the
    prompting arm: the base with a system prompt and k examples) messages put before every held-out prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype="auto").eval()

    def score(m, context=None) -> tuple[dict, list, list]:
        out = {}
        sft, pref, asked = (
            _in_context(sft_rows, pref_rows, prompts, context) if context else (sft_rows, pref_rows, prompts)
        )
        if sft:
            out.update(metrics.heldout_nll(m, tokenizer, sft, max_length))
        pairs = metrics.pair_logprobs(m, tokenizer, pref, max_length) if pref else []
        gens = metrics.generations(m, tokenizer, asked, max_new_tokens) if asked else []
        if gens:
            out["mean_reply_tokens"] = sum(g["tokens"] for g in gens) / len(gens)
        return out, pairs, gens

    base_scores, base_pairs, base_gens = score(model)
    results: dict[str, dict] = {}
    peft_model = None
    for name, adapter in adapters.items():
        context = (contexts or {}).get(name)
        if adapter is None and context:
            if peft_model is not None:
                with peft_model.disable_adapter():
                    m_scores, pairs, gens = score(peft_model, context)
            else:
                m_scores, pairs, gens = score(model, context)
        elif adapter is None:
            m_scores, pairs, gens = dict(base_scores), base_pairs, base_gens
        elif is_adapter(adapter):
            from peft import PeftModel

            if peft_model is None:
                peft_model = PeftModel.from_pretrained(model, adapter, adapter_name=name).eval()
            else:
                peft_model.load_adapter(adapter, adapter_name=name)
            peft_model.set_adapter(name)
            m_scores, pairs, gens = score(peft_model)
        else:
            full = AutoModelForCausalLM.from_pretrained(adapter, dtype="auto").eval()
            m_scores, pairs, gens = score(full)
            del full
        if pairs:
            m_scores.update(metrics.preference_metrics(pairs, base_pairs, beta))
        results[name] = {"metrics": m_scores, "generations": [g["reply"] for g in gens]}
        log.info("evaluated %s: %s", name, m_scores)
    return results
