"""The model card of a pushed run: huggingface_hub's ModelCard rendered from templates/model_card.md.j2.

Everything comes from the run folder (config.yaml, summary.json, data_report.json, metrics.jsonl), which is
token-free by construction.  Local paths never reach a published file: `public()` turns a run folder into "a
local SFT run (not published)", a file into its name, and any other path under STUDIO_HOME into a neutral
description, so neither the server's paths nor the run ids of local folders are published.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from core.paths import studio_home
from core.runfolder import RunFolder
from trainers import methods

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "model_card.md.j2"
APP_TAG = "fine-tune-studio"
KIND_NAMES = {"lora": "LoRA", "qlora": "QLoRA", "dora": "DoRA", "qdora": "QDoRA", "full": "full fine-tune"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_METRICS = [  # (label, key in summary.final_metrics, format)
    ("Held-out loss before training", "eval_loss_before", "{:.4f}"),
    ("Held-out loss after training", "eval_loss", "{:.4f}"),
    ("Held-out token accuracy", "eval_mean_token_accuracy", "{:.3f}"),
    ("Held-out DPO reward accuracy", "eval_rewards/accuracies", "{:.3f}"),
    ("Held-out DPO reward margin", "eval_rewards/margins", "{:.4f}"),
    ("Held-out pair accuracy (chosen scored above rejected)", "eval_accuracy", "{:.3f}"),
    ("Held-out reward margin (chosen - rejected)", "eval_margin", "{:.4f}"),
    ("Training loss (mean over the run)", "train_loss", "{:.4f}"),
    ("Training loss (last logged step)", "loss", "{:.4f}"),
    ("Training runtime (s)", "train_runtime", "{:.1f}"),
]


def hub_id(name: str | None) -> str | None:
    """`name` if it is a Hub repo id (not a local path), else None."""
    if not name or not _HUB_ID.match(name) or Path(name).expanduser().exists():
        return None
    return name


def _studio_home() -> Path:
    return studio_home()


def _run_folder(path: Path) -> Path | None:
    """The run folder `path` is (or is inside: its adapter, a checkpoint), else None."""
    for folder in (path, *path.parents):
        if (folder / RunFolder.CONFIG).is_file() and (RunFolder(folder).is_run() or folder.parent.name == "runs"):
            return folder
        if folder.parent.name == "runs" and folder.parent.parent == _studio_home():
            return folder
    return None


def describe_path(value: str) -> str:
    """A neutral, publishable description of a local path."""
    path = Path(value).expanduser()
    run = _run_folder(path.resolve()) if path.is_absolute() or path.exists() else None
    if run is not None:
        try:
            method = (yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}).get("method")
        except (OSError, yaml.YAMLError, AttributeError):
            method = None
        return f"a local {str(method).upper() + ' ' if method else ''}run (not published)"
    if path.is_file() or path.suffix:
        return f"local file {path.name}"
    if (path / "config.json").is_file():
        return "a local model (not published)"
    return "a local folder (not published)"


def _local_path(value: str) -> bool:
    if hub_id(value):
        return False
    return value.startswith(("/", "~")) or (len(value) < 4096 and "\n" not in value and Path(value).exists())


def public(obj):
    """`obj` (a parsed config, summary or report) with every local path replaced by describe_path(); any other
    mention of the STUDIO_HOME folder inside a longer text is described too."""
    if isinstance(obj, dict):
        return {key: public(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [public(value) for value in obj]
    if not isinstance(obj, str):
        return obj
    if _local_path(obj):
        return describe_path(obj)
    home = str(_studio_home())
    if home in obj:
        obj = re.sub(re.escape(home) + r"[^\s'\"`),;]*", lambda m: describe_path(m.group(0)), obj)
    return obj


def read_run(run_dir: Path) -> dict:
    """config, summary, data reports and metrics rows of a run folder."""
    folder = RunFolder(run_dir)
    config = yaml.safe_load(folder.config_path.read_text(encoding="utf-8"))
    return {
        "config": config,
        "summary": folder.summary().to_dict(),
        "reports": folder.data_reports(),
        "metrics": folder.metrics(),
    }


def adapter_kind(config: dict) -> str:
    """lora / qlora / dora / full — the tag and the word the card uses."""
    peft_type = config.get("peft", {}).get("type", "lora")
    if peft_type == "none":
        return "full"
    quantized = config.get("model", {}).get("quantization", "none") != "none"
    if peft_type == "dora":
        return "qdora" if quantized else "dora"
    return "qlora" if quantized else "lora"


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif value is not None and value != {} and value != []:
        out[prefix] = value


def _table(rows: list[tuple[str, str]], head: tuple[str, str]) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += ["| {} | {} |".format(k, str(v).replace("|", "\\|")) for k, v in rows]
    return "\n".join(lines)


def config_table(config: dict) -> str:
    flat: dict = {}
    for section in ("model", "data", "peft", "training"):
        _flatten(section, config.get(section) or {}, flat)
    flat["method"] = config.get("method")
    if config.get("init_from"):
        flat["init_from"] = config["init_from"]
    return _table([(f"`{k}`", f"`{v}`") for k, v in flat.items() if v is not None], ("Setting", "Value"))


def metrics_table(summary: dict, perplexity: bool = True) -> str:
    """The run's final metrics; `perplexity` False for a reward model, whose loss is over pairs, not tokens."""
    final = summary.get("final_metrics") or {}
    rows = [(label, fmt.format(final[key])) for label, key, fmt in _METRICS if isinstance(final.get(key), (int, float))]
    for key, label in (("eval_loss_before", "before"), ("eval_loss", "after")):
        if perplexity and isinstance(final.get(key), (int, float)) and final[key] < 50:
            rows.append((f"Held-out perplexity {label} training", f"{math.exp(final[key]):.2f}"))
    if not rows:
        return "No metrics were logged."
    return _table(rows, ("Metric", "Value"))


def data_summary(reports: list[dict]) -> str:
    if not reports:
        return "No data report was saved with this run."
    lines = []
    for r in reports:
        tokens = r.get("tokens") or {}
        token_text = (
            f"; tokens per row p50 {tokens.get('p50')}, p90 {tokens.get('p90')}, max {tokens.get('max')}"
            if tokens
            else ""
        )
        lines.append(
            f"- **{r.get('what', 'data')}**: {r.get('rows_kept', r.get('rows'))} of {r.get('rows')} rows used, "
            f"format `{r.get('format')}`{token_text}."
        )
        lines += [f"  - {f['level']}: {f['message']}" for f in r.get("findings", [])[:8]]
    return "\n".join(lines)


def _sources(config: dict) -> list[str]:
    data = config.get("data") or {}
    return [s for s in (data.get("source"), data.get("eval_source")) if hub_id(s)]


def _describe_source(source: str | None) -> str:
    if not source:
        return "—"
    if hub_id(source):
        return f"[{source}](https://huggingface.co/datasets/{source})"
    if source.startswith(("local file ", "a local ")):  # already made public()
        return source
    return f"local file `{Path(source).name}`"


def render(
    run_dir: Path,
    repo_id: str,
    *,
    merged: bool = False,
    license: str | None = None,  # noqa: A002 - the card's own field name
    loss_curve: str | None = None,
    comparison: str | None = None,
    run: dict | None = None,
):
    """The ModelCard for the run in `run_dir` as pushed to `repo_id` (the adapter, or the merged model);
    `run`: its read_run() record when the caller has it already."""
    from huggingface_hub import ModelCard, ModelCardData

    run = run or read_run(run_dir)
    config, summary = public(run["config"]), public(run["summary"])
    method = methods.get(config.get("method") or methods.names()[0])
    init = bool(config.get("init_from"))
    kind = adapter_kind(config)
    base = config.get("model", {}).get("name_or_path")
    base_hub = hub_id(base)
    full_model = merged or kind == "full"
    tags = ["trl", *method.card_tags, *(method.init_tags if init else ()), APP_TAG]
    tags.append("merged" if merged else kind if kind != "full" else "full-finetune")
    scorer = method.output == "reward_model"
    card_data = ModelCardData(
        base_model=base_hub,
        library_name="transformers" if full_model else "peft",
        pipeline_tag="text-classification" if scorer else "text-generation",
        tags=tags,
        datasets=_sources(config) or None,
        license=license,
        model_name=repo_id.split("/")[-1],
    )
    trainer = method.trainer_name
    method_line = method.card_line + (method.init_line if init else "")
    peft = config.get("peft") or {}
    adapter_line = (
        "none (all weights trained)"
        if kind == "full"
        else f"{KIND_NAMES[kind]} r={peft.get('r')}, alpha={peft.get('lora_alpha')}, modules {peft.get('target_modules')}"
    )
    if merged:
        adapter_line += "; merged into the base weights (merge_and_unload)"
    trainable, total = summary.get("trainable_params"), summary.get("total_params")
    percent = summary.get("trainable_percent")
    percent_text = f" ({percent:.2f} %)" if isinstance(percent, (int, float)) else ""
    params_line = f"{trainable:,} of {total:,}{percent_text}" if trainable and total else "—"
    data_info = summary.get("data") or {}
    data_rows = data_info.get("train_rows", "its")
    hw = summary.get("hardware") or {}
    if scorer:
        loader, usage = reward_snippets(repo_id, base_hub, full_model)
        usage_intro = "Score a reply to a prompt (higher = preferred; compare replies to the same prompt):"
    else:
        loader, usage = generation_snippets(repo_id, full_model)
        usage_intro = "Chat with it through the tokenizer's chat template:"
    form = "merged model" if merged else "full fine-tune" if kind == "full" else KIND_NAMES[kind] + " adapter"
    what = (
        f"A {form} for {base_hub or 'a local base model'} trained with {method.label}{method.init_after if init else ''} "
        f"on {_describe_source((config.get('data') or {}).get('source'))}."
    )
    if scorer:
        what = (
            f"A reward model ({form} with a scoring head) on {base_hub or 'a local base model'}, trained with TRL's "
            f"{trainer}{method.init_line if init else ''} on {_describe_source((config.get('data') or {}).get('source'))}: "
            "it gives a prompt and reply one score."
        )
    context = {
        "title": repo_id.split("/")[-1],
        "what": what,
        "trainer": trainer,
        "peft_kind": None if kind == "full" else KIND_NAMES[kind],
        "base_model_line": f"[{base_hub}](https://huggingface.co/{base_hub})"
        if base_hub
        else f"`{base}` (a local model, not on the Hub: `base_model_name_or_path` in adapter_config.json "
        "points to a path on the training machine)",
        "method_line": method_line,
        "adapter_line": adapter_line,
        "params_line": params_line,
        "data_line": f"{_describe_source(data_info.get('source'))}: {data_rows} training rows, "
        f"{data_info.get('eval_rows', 0)} held out ({data_info.get('format', '?')} format)",
        "steps_line": f"{summary.get('global_step', '—')} steps / {summary.get('tokens_seen', 0):,} tokens",
        "hardware_line": f"{hw.get('gpu') or hw.get('device', '?')} / {summary.get('wall_time_s', '—')} s",
        "load_snippet": loader,
        "usage_intro": usage_intro,
        "usage_snippet": usage,
        "metrics_table": metrics_table(summary, perplexity=not scorer),
        "loss_curve": loss_curve,
        "comparison": comparison,
        "data_summary": data_summary(public(run["reports"])),
        "config_table": config_table(config),
        "kind": "model" if full_model else "adapter",
        "data_rows": data_rows,
        "eval_line": f"{data_info.get('eval_rows')} held-out rows of "
        f"{_describe_source((config.get('data') or {}).get('eval_source') or (config.get('data') or {}).get('source'))}"
        if data_info.get("eval_rows")
        else "no held-out set (none was configured)",
        "license": license,
    }
    return ModelCard.from_template(card_data, template_path=str(TEMPLATE), **context)


def generation_snippets(repo_id: str, full_model: bool) -> tuple[str, str]:
    """(load, usage) code of a policy: a causal LM (or its adapter) that chats."""
    loader = (
        f'from transformers import AutoModelForCausalLM\nmodel = AutoModelForCausalLM.from_pretrained("{repo_id}")'
        if full_model
        else f'from peft import AutoPeftModelForCausalLM\nmodel = AutoPeftModelForCausalLM.from_pretrained("{repo_id}")'
    )
    usage = (
        "from transformers import AutoTokenizer\n"
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")\n'
        'messages = [{"role": "user", "content": "Hello! What can you do?"}]\n'
        "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, "
        'return_tensors="pt", return_dict=True)\n'
        "output = model.generate(**inputs, max_new_tokens=64, do_sample=False)\n"
        'print(tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))'
    )
    return loader, usage


def reward_snippets(repo_id: str, base_hub: str | None, full_model: bool) -> tuple[str, str]:
    """(load, usage) code of a reward model: AutoModelForSequenceClassification (one label) on the base plus the
    PeftModel adapter (its LoRA weights and trained `score` head), then one prompt + reply scored."""
    tokenizer = f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")\n'
    if full_model:
        loader = (
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n"
            + tokenizer
            + f'model = AutoModelForSequenceClassification.from_pretrained("{repo_id}").eval()'
        )
    else:
        base_id = (
            f'base_id = "{base_hub}"\n'
            if base_hub
            else f'base_id = PeftConfig.from_pretrained("{repo_id}").base_model_name_or_path  # the base it was trained on\n'
        )
        loader = (
            "from peft import PeftConfig, PeftModel\n"
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n"
            + tokenizer
            + base_id
            + "base = AutoModelForSequenceClassification.from_pretrained(base_id, num_labels=1)\n"
            "base.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last non-pad token\n"
            f'model = PeftModel.from_pretrained(base, "{repo_id}").eval()'
        )
    usage = (
        "import torch\n"
        "messages = [\n"
        '    {"role": "user", "content": "Hello! What can you do?"},\n'
        '    {"role": "assistant", "content": "I can answer questions. Happy to help!"},\n'
        "]\n"
        'inputs = tokenizer.apply_chat_template(messages, return_tensors="pt", return_dict=True)\n'
        "with torch.no_grad():\n"
        "    reward = model(**inputs).logits[0, 0].item()\n"
        'print(f"{reward:.4f}")'
    )
    return loader, usage


def base_license(base: str | None, token: str | None = None) -> str | None:
    """The base model's licence from its own card on the Hub, when it has one (best effort)."""
    if not hub_id(base):
        return None
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(base, token=token).data.license
    except Exception:  # noqa: BLE001 - a missing or unreadable card just means "licence unknown"
        return None
