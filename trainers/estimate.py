"""Pre-flight estimate: parameters, peak memory, time and cost per Spaces tier, before any weight is loaded.

The model's shape comes from its config.json alone (a local folder, a Hub id via AutoConfig, or demo-tiny).
Parameters are counted exactly: the model is built on the meta device and wrapped by PEFT itself.
The memory and throughput models, and their calibration, are documented in bench/README.md.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import warnings
from pathlib import Path

from core.errors import StudioError
from data import doctor
from data.sources import is_local, load
from trainers import attention, methods
from trainers.config import DataSection, ModelSection, PeftSection, RunConfig, activation_checkpointing
from trainers.models import peft_config, resolve_and_load_tokenizer, resolve_model_path

TIERS_FILE = Path(__file__).resolve().parent.parent / "templates" / "hardware" / "spaces-2026-11.yaml"
GB = 1e9
MAX_HOURS = 24  # the side-by-side's "cheapest tier" must finish an epoch within this
FIT, TIGHT = 0.85, 1.0  # peak / memory: <= 0.85 fits, <= 1.0 tight, above does not fit
# Memory model (elements saved per token per decoder layer, Llama-style, no checkpointing), calibrated on CPU.
ACT_H, ACT_I, ACT_KV = 16.0, 5.0, 4.0
BASELINE_GB = 0.49  # RSS of the engine's imports + tokenizer + data on CPU (measured), added for CPU RAM checks
DORA_COPIES = 3.0
CPU_OVERHEAD_GB, GPU_OVERHEAD_GB, SLACK = 0.03, 0.8, 0.10  # fixed + allocator slack (share of the rest)
Q_BYTES = {"none": None, "8bit": 1.0 + 4 / 4096, "4bit": 0.5 + 0.127 / 8 + 4 / 64 / 8}  # nf4 + double-quant consts
# Throughput model: model FLOPs utilisation on GPUs (stated, not measured) and measured CPU FLOP/s per core.
MFU = {"full": 0.40, "lora": 0.35, "qlora": 0.25}
CPU_FLOPS_PER_CORE = 1.0e10  # measured 15-25 GFLOP/s on 2 busy cores (bench/README.md)


class EstimateError(StudioError):
    """The estimate cannot be made for this config; the message says why in one sentence."""


def _text_config(path: str, section):
    from transformers import AutoConfig

    local = Path(path).expanduser()
    if local.is_dir() and not (local / "config.json").is_file():
        raise EstimateError(f"{path!r} has no config.json: the estimate reads the model's shape from it.")
    if not local.exists() and (path.startswith((".", "/", "~")) or path.count("/") > 1):
        raise EstimateError(f"Model folder {path!r} does not exist: check model.name_or_path.")
    try:
        return AutoConfig.from_pretrained(path, revision=section.revision, trust_remote_code=section.trust_remote_code)
    except (ValueError, KeyError) as exc:
        raise EstimateError(
            f"The architecture in {path!r}'s config.json is not one transformers knows ({str(exc).splitlines()[0][:120]})."
        ) from exc


@functools.lru_cache(maxsize=32)
def count_parameters(path: str, revision: str, trust: bool, peft_key: tuple | None) -> dict:
    """Exact counts on the meta device: PEFT's own get_nb_trainable_parameters on the wrapped meta model."""
    import torch
    from transformers import AutoModelForCausalLM

    model_cfg = _text_config(path, ModelSection(name_or_path=path, revision=revision, trust_remote_code=trust))
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = AutoModelForCausalLM.from_config(model_cfg, trust_remote_code=trust)
    except (ValueError, KeyError) as exc:
        kind = getattr(model_cfg, "model_type", "?")
        raise EstimateError(
            f"Model type {kind!r} in {path!r} is not a causal language model transformers can build."
        ) from exc
    text = model_cfg.get_text_config()
    embed = model.get_input_embeddings().weight.numel()
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is model.get_input_embeddings().weight
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head]
    shape = {
        "hidden": text.hidden_size,
        "layers": text.num_hidden_layers,
        "intermediate": getattr(text, "intermediate_size", None) or 4 * text.hidden_size,
        "vocab": text.vocab_size,
        "heads": text.num_attention_heads,
        "kv_dim": getattr(text, "num_key_value_heads", None) or text.num_attention_heads,
        "linear_params": sum(m.weight.numel() for _, m in layers),  # what bitsandbytes quantizes
        "embedding_params": embed,
        "lm_head_params": 0 if tied or head is None else head.weight.numel(),
    }
    shape["kv_dim"] *= getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    if peft_key is None:
        total = sum(p.numel() for p in model.parameters())
        return {**shape, "trainable_params": total, "total_params": total, "magnitude_params": 0}
    from peft import get_peft_model

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            wrapped = get_peft_model(model, peft_config(PeftSection(*peft_key)))
    except ValueError as exc:
        if "not found in the base model" not in str(exc):
            raise
        names = sorted({name.rsplit(".", 1)[-1] for name, _ in layers})
        targets = peft_key[4] if isinstance(peft_key[4], str) else f"[{', '.join(peft_key[4])}]"
        raise EstimateError(
            f"'peft.target_modules' {targets} matches no module of the model: its linear modules are "
            f"{', '.join(names)} (or use all-linear)."
        ) from exc
    trainable, total = wrapped.get_nb_trainable_parameters()
    magnitude = sum(p.numel() for n, p in wrapped.named_parameters() if "lora_magnitude_vector" in n)
    return {**shape, "trainable_params": trainable, "total_params": total, "magnitude_params": magnitude}


def _peft_key(section) -> tuple | None:
    if section.type == "none":
        return None
    targets = section.target_modules if isinstance(section.target_modules, str) else tuple(section.target_modules)
    save = tuple(section.modules_to_save) if section.modules_to_save else None
    return (section.type, section.r, section.lora_alpha, section.lora_dropout, targets, save)


def _runtime(cfg: RunConfig, gpu: bool) -> dict:
    """What the engine will do on that device (trainers/run.py: runtime_training_args)."""
    t = cfg.training
    batch, accum = int(t.get("per_device_train_batch_size", 8)), int(t.get("gradient_accumulation_steps", 1))
    if batch <= 0:
        raise EstimateError(f"training.per_device_train_batch_size must be at least 1, got {batch}.")
    seq = int(t.get("max_length") or 1024)
    packed = methods.get(cfg.method).packs and (
        t.get("padding_free") or (t.get("packing") and t.get("packing_strategy", "bfd") != "wrapped")
    )
    flash = attention.is_flash(cfg.model.attn_implementation)
    micro = 1 if packed and not flash else batch  # packed rows one per forward pass without FlashAttention
    ckpt = activation_checkpointing(t, gpu)  # TRL's default is on; the engine turns it off on CPU
    return {"batch": batch, "accum": accum, "seq": seq, "micro": micro, "ckpt": ckpt, "packed": bool(t.get("packing"))}


def memory(counts: dict, cfg: RunConfig, gpu: bool) -> dict:
    """Peak training memory in GB, by part. gpu: bf16 compute (2 B); CPU: fp32 everywhere (4 B)."""
    rt, s = _runtime(cfg, gpu), counts
    full = cfg.peft.type == "none"  # auto dtype: full fine-tuning keeps fp32 master weights (models._dtype)
    wb = 2 if gpu and (cfg.model.dtype in ("bfloat16", "float16") or (cfg.model.dtype == "auto" and not full)) else 4
    ab = 2 if cfg.model.dtype in ("bfloat16", "float16") or gpu else 4  # activation dtype (autocast on GPU)
    full, quant = cfg.peft.type == "none", Q_BYTES[cfg.model.quantization]
    base = s["total_params"] - (0 if full else s["trainable_params"])
    # bitsandbytes quantizes the decoder's Linear layers; embeddings, lm_head and norms stay in wb
    weights = s["linear_params"] * quant + (base - s["linear_params"]) * wb if quant else base * wb
    trainable = s["trainable_params"]
    if full:
        adapter, pb = 0.0, wb
    else:  # PEFT upcasts adapters to fp32; on a quantized base TRL casts them to bf16 (DoRA magnitudes stay fp32)
        pb = 2 if quant and gpu else 4
        adapter = (trainable - s["magnitude_params"]) * pb + s["magnitude_params"] * 4
    grads = trainable * pb if full else adapter
    optimizer = 2 * (trainable * pb if full else adapter)  # AdamW exp_avg + exp_avg_sq in the parameter dtype
    tokens = rt["micro"] * rt["seq"] * methods.get(cfg.method).sequences(cfg.training)  # DPO: chosen + rejected
    h, i, kv, layers = s["hidden"], s["intermediate"], s["kv_dim"], s["layers"]
    per_layer = ACT_H * h + ACT_I * i + ACT_KV * kv
    if not full:
        per_layer += 7 * cfg.peft.r + (6 * h + i if cfg.peft.lora_dropout > 0 else 0)
    attn = 0.0
    if (cfg.model.attn_implementation or "") == "eager":  # materialised (batch, heads, seq, seq) probabilities
        attn = 2 * s["heads"] * rt["seq"]  # per token: one row of probabilities per head, and its softmax grad
    if rt["ckpt"]:  # keep each layer's input; recompute one layer at a time in backward
        act = tokens * (layers * h + per_layer + attn + 4 * h) * ab
    else:
        act = tokens * (layers * (per_layer + attn) + 4 * h) * ab
    # TRL's fused LM head scores (<=4096 tokens x <=32768 vocab) tiles in fp32, never the full logits
    logits = 2 * min(tokens, 4096) * min(s["vocab"], 32768) * 4 + tokens * h * 4
    if cfg.peft.type == "dora":  # DoRA's weight norm materialises weight-sized temporaries (measured: ~3 copies)
        act += DORA_COPIES * s["linear_params"] * wb
    parts = {"weights": weights, "adapter": adapter, "gradients": grads, "optimizer": optimizer}
    parts.update(activations=act, logits=logits)
    # GPU: gradients grow in backward while activations are freed; AdamW state lives from the first step on.
    # CPU (measured, bench/README.md): the RSS peak does not add AdamW state to activations (freed pages reused).
    if gpu:
        rest = weights + adapter + optimizer + max(grads, act + logits)
    else:
        rest = weights + adapter + max(optimizer + grads, act + logits)
    parts["overhead"] = (GPU_OVERHEAD_GB if gpu else CPU_OVERHEAD_GB) * GB + SLACK * rest
    peak = rest + parts["overhead"]
    out = {k: round(v / GB, 3) for k, v in parts.items()}
    return {"peak_memory_gb": round(peak / GB, 3), "breakdown": out, "runtime": rt}


def data_stats(cfg: RunConfig, rows: int | None = None, tokens_per_row: float | None = None) -> dict:
    """Rows and mean tokens per row: given, or from the data doctor for local data, else a stated assumption."""
    if rows and tokens_per_row:
        return {"rows": int(rows), "tokens_per_row": float(tokens_per_row), "source": "given"}
    if is_local(cfg.data.source):
        try:
            return _doctor_stats(cfg.data.source, cfg.data.split, cfg.model.name_or_path, cfg.method, rows)
        except Exception:  # noqa: BLE001 - stats are optional: fall back to the assumption below
            pass
    n = rows or cfg.data.max_samples or 10_000
    mean = tokens_per_row or (cfg.training.get("max_length") or 1024) / 2
    return {"rows": int(n), "tokens_per_row": float(mean), "source": "assumed (pass --rows / --tokens-per-row)"}


@functools.lru_cache(maxsize=8)
def _doctor_stats(source: str, split: str, model: str, method: str, rows: int | None) -> dict:
    import datasets

    datasets.disable_progress_bars()
    tokenizer, _ = resolve_and_load_tokenizer(ModelSection(name_or_path=model))
    task = methods.get(method).task
    _, report, _ = doctor.examine(load(source, split), task, DataSection(source=source), tokenizer=tokenizer)
    mean = report.tokens["mean"] if report.tokens else 0.0
    return {"rows": rows or report.rows_kept, "tokens_per_row": mean, "source": "data doctor"}


def tiers() -> list[dict]:
    """The Spaces hardware tiers with their prices (templates/hardware)."""
    import yaml

    return yaml.safe_load(TIERS_FILE.read_text(encoding="utf-8"))["tiers"]


def fits(peak_gb: float, memory_gb: float) -> str:
    share = peak_gb / memory_gb if memory_gb else math.inf
    return "fits" if share <= FIT else "tight" if share <= TIGHT else "does not fit"


def flops_per_token(counts: dict, cfg: RunConfig, ckpt: bool) -> float:
    """6N (full) or 4N (adapters: forward + input gradients through frozen weights) + 6 x adapter; +2N with
    checkpointing (recomputed forward); + 6 L seq h attention; DPO adds the reference forward (2N)."""
    n = (
        counts["total_params"]
        - counts["embedding_params"]
        - (0 if cfg.peft.type == "none" else counts["trainable_params"])
    )
    k = 6 if cfg.peft.type == "none" else 4
    adapter = 0 if cfg.peft.type == "none" else 6 * counts["trainable_params"]
    attn = 6 * counts["layers"] * int(cfg.training.get("max_length") or 1024) * counts["hidden"]
    return (k + 2 * ckpt + 2 * methods.get(cfg.method).reference_forward) * n + adapter + attn


def counts_of(cfg: RunConfig) -> dict:
    """The config's parameter counts (count_parameters, cached per model, revision and adapter)."""
    return count_parameters(str(_model_path(cfg)), cfg.model.revision, cfg.model.trust_remote_code, _peft_key(cfg.peft))


def _variant(cfg: RunConfig, rows, tokens_per_row, with_tiers: bool = True) -> dict:
    counts = counts_of(cfg)
    gpu = memory(counts, cfg, gpu=True)
    cpu = memory(counts, cfg, gpu=False)
    rt, data = gpu.pop("runtime"), data_stats(cfg, rows, tokens_per_row)
    seq = rt["seq"]
    per_row = min(data["tokens_per_row"], seq) if rt["packed"] else min(seq, data["tokens_per_row"] * 1.3)
    epoch_tokens = data["rows"] * per_row * methods.get(cfg.method).sequences(cfg.training)
    out = {
        "method": cfg.method,
        "peft": cfg.peft.type,
        "quantization": cfg.model.quantization,
        "total_params": counts["total_params"],
        "trainable_params": counts["trainable_params"],
        "trainable_percent": round(100 * counts["trainable_params"] / counts["total_params"], 4),
        "peak_memory_gb": gpu["peak_memory_gb"],
        "breakdown": gpu["breakdown"],
        "tokens_per_step": rt["batch"] * rt["accum"] * seq,
        "micro_batch": rt["micro"],
        "accumulation": rt["batch"] * rt["accum"] // rt["micro"],  # forward passes per optimizer step
        "gradient_checkpointing": rt["ckpt"],
        "cpu_gradient_checkpointing": _runtime(cfg, False)["ckpt"],  # the engine's CPU setting (off unless asked)
        "data": {**data, "tokens_per_epoch": int(epoch_tokens)},
        "local_cpu": {"peak_memory_gb": cpu["peak_memory_gb"], "breakdown": cpu["breakdown"]},
    }
    if not with_tiers:
        return out
    kind = "full" if cfg.peft.type == "none" else "qlora" if cfg.model.quantization != "none" else "lora"
    out["tiers"] = []
    for tier in tiers():
        is_cpu = not tier["tflops"]
        peak = cpu["peak_memory_gb"] + BASELINE_GB if is_cpu else gpu["peak_memory_gb"]  # CPU: + the ~0.5 GB imports
        fpt = flops_per_token(counts, cfg, ckpt=rt["ckpt"] and not is_cpu)
        rate = CPU_FLOPS_PER_CORE * tier["vcpus"] if is_cpu else tier["tflops"] * 1e12 * MFU[kind]
        hours = epoch_tokens * fpt / rate / 3600
        row = {k: tier[k] for k in ("name", "gpu", "vram_gb", "usd_per_hour")}
        row.update(fits=fits(peak, tier["vram_gb"]), hours_per_epoch=float(f"{hours:.3g}"))
        out["tiers"].append({**row, "usd_per_epoch": float(f"{hours * tier['usd_per_hour']:.3g}")})
    return out


def _model_path(cfg: RunConfig) -> str:
    return resolve_model_path(cfg.model.name_or_path)


def local_check(est: dict) -> dict:
    """This machine: its GPU if it has one, else its available RAM."""
    import torch

    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory / GB
        return {
            "device": torch.cuda.get_device_name(0),
            "memory_gb": round(total, 1),
            "fits": fits(est["peak_memory_gb"], total),
        }
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / GB
    need = est["local_cpu"]["peak_memory_gb"] + BASELINE_GB
    return {"device": "CPU RAM (available)", "memory_gb": round(available, 1), "fits": fits(need, available)}


def estimate(cfg: RunConfig, rows: int | None = None, tokens_per_row: float | None = None) -> dict:
    """The full estimate for a RunConfig (see module docstring); `compare` holds full vs LoRA vs QLoRA."""
    if rows is not None and rows < 1:
        raise EstimateError(f"The number of training rows must be 1 or more; got {rows}.")
    if tokens_per_row is not None and not 0 < tokens_per_row < float("inf"):
        raise EstimateError(f"The mean tokens per row must be greater than 0; got {tokens_per_row:g}.")
    out = _variant(cfg, rows, tokens_per_row)
    r = cfg.peft.r if cfg.peft.type != "none" else 16
    alpha = cfg.peft.lora_alpha if cfg.peft.type != "none" else 2 * r
    lora = dataclasses.replace(cfg.peft, type="lora", r=r, lora_alpha=alpha)

    def swap(peft, quant):
        return dataclasses.replace(cfg, peft=peft, model=dataclasses.replace(cfg.model, quantization=quant))

    variants = {
        "full": swap(dataclasses.replace(cfg.peft, type="none"), "none"),
        "lora": swap(lora, "none"),
        "qlora": swap(lora, "4bit"),
    }
    out["compare"] = {}
    for name, variant in variants.items():
        v = _variant(variant, rows, tokens_per_row)
        cheapest = min(
            (t for t in v["tiers"] if t["fits"] != "does not fit" and t["hours_per_epoch"] <= MAX_HOURS),
            key=lambda t: (t["usd_per_epoch"], t["hours_per_epoch"]),
            default=None,
        )
        out["compare"][name] = {
            **{k: v[k] for k in ("trainable_params", "trainable_percent", "peak_memory_gb")},
            "cheapest_tier": cheapest and {k: cheapest[k] for k in ("name", "hours_per_epoch", "usd_per_epoch")},
        }
    out["local"] = local_check(out)
    return out


def hours_text(hours: float) -> str:
    """A time a person reads: seconds, minutes or hours (a demo's epoch is seconds, not "0.00" hours)."""
    if hours != hours:  # NaN
        return "—"
    seconds = hours * 3600
    if seconds < 1:
        return "< 1 s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{hours:.1f} h"


def dollars_text(x: float) -> str:
    if x != x:  # NaN
        return "—"
    return "< 0.01" if 0 < x < 0.005 else f"{x:.2f}"


def _step_words(est: dict) -> str:
    """How the run takes an optimizer step, as the engine will run it: rows per forward pass x passes, and
    activation checkpointing on a GPU and on a CPU (the engine's own choices, which the run records)."""
    micro, passes = est["micro_batch"], est.get("accumulation", 1)
    rows = f"{micro} row{'s' if micro != 1 else ''} per forward pass x {passes} pass{'es' if passes != 1 else ''}"
    if micro == 1 and passes > 1:
        rows += " (packed rows go one per pass without FlashAttention)"
    on = {True: "on", False: "off"}
    gpu, cpu = on[bool(est["gradient_checkpointing"])], on[bool(est.get("cpu_gradient_checkpointing"))]
    ckpt = (
        f"activation checkpointing {gpu}"
        if gpu == cpu
        else f"activation checkpointing on a GPU: {gpu}, on a CPU: {cpu}"
    )
    return f"{rows}; {ckpt}"


def render(est: dict) -> str:
    """Markdown: the numbers, the breakdown, the tiers and the full / LoRA / QLoRA side by side."""
    b, d, local = est["breakdown"], est["data"], est["local"]
    lines = [
        f"**Trainable parameters:** {est['trainable_params']:,} of {est['total_params']:,} ({est['trainable_percent']:.2f} %)  ",
        f"**Peak memory on a GPU (bf16):** {est['peak_memory_gb']:.2f} GB = "
        + " + ".join(f"{k} {v:.2f}" for k, v in b.items())
        + f"  \n**Tokens per optimizer step:** {est['tokens_per_step']:,} ({_step_words(est)})  ",
        f"**Data:** {d['rows']:,} rows x {d['tokens_per_row']:.0f} tokens ({d['source']}) = {d['tokens_per_epoch']:,} tokens per epoch  ",
        f"**This machine:** {local['device']} {local['memory_gb']} GB: **{local['fits']}**"
        + (
            " -- expect an out-of-memory failure; see the side-by-side below."
            if local["fits"] == "does not fit"
            else ""
        ),
        "",
        "| tier | GPU | memory GB | fits | $/h | time/epoch | $/epoch |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for t in est["tiers"]:
        lines.append(
            f"| {t['name']} | {t['gpu']} | {t['vram_gb']} | {t['fits']} | {t['usd_per_hour']:.2f} | "
            f"{hours_text(t['hours_per_epoch'])} | {dollars_text(t['usd_per_epoch'])} |"
        )
    lines += [
        "",
        "| method | trainable | peak GB (GPU) | cheapest tier that fits (<= 24 h/epoch) | $/epoch |",
        "|---|---:|---:|---|---:|",
    ]
    for name, c in est["compare"].items():
        tier = c["cheapest_tier"] or {"name": "none fits", "usd_per_epoch": float("nan")}
        lines.append(
            f"| {name} | {c['trainable_params']:,} ({c['trainable_percent']:.2f} %) | {c['peak_memory_gb']:.1f} | "
            f"{tier['name']} | {dollars_text(tier['usd_per_epoch'])} |"
        )
    return "\n".join(lines)
