"""Auto-fit: change a config so its predicted peak memory fits a target with a stated margin, and say what and why.

In order, each only when the previous is not enough: the largest per-device batch that fits, with gradient
accumulation keeping the effective batch (per-device batch x accumulation) the same; then activation
(gradient) checkpointing.  Beyond that nothing is changed silently: QLoRA and a shorter max_length change what is
trained, so they are suggested, with the figures.  The notes go into the config (`autofit:`), so config.yaml and
summary.json say what was changed and why.  Predictions are trainers/estimate.py's memory model.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass

from core.errors import StudioError
from trainers import estimate
from trainers.config import RunConfig, activation_checkpointing

MARGIN = estimate.FIT  # the predicted peak may use at most this share of the target's memory


class FitError(StudioError):
    """The target cannot be read; the message says what to change."""


@dataclass(frozen=True)
class Target:
    name: str
    memory_gb: float
    gpu: bool  # bf16 on a CUDA GPU (the GPU memory model), else fp32 in CPU RAM (+ the process baseline)


def target(tier: str | None = None, memory_gb: float | None = None, gpu: bool | None = None) -> Target:
    """A Spaces tier / HF Jobs flavour by name, `this` (this machine's GPU, else its available RAM), or a memory
    budget in GB (on a GPU when `gpu`, default: when this machine has one)."""
    if memory_gb is not None:
        if not 0 < memory_gb < 1e5:
            raise FitError(f"The memory budget must be a number of GB greater than 0; got {memory_gb:g}.")
        on_gpu = _has_cuda() if gpu is None else gpu
        return Target(f"{memory_gb:g} GB {'GPU' if on_gpu else 'RAM'}", float(memory_gb), on_gpu)
    if tier in (None, "this"):
        if _has_cuda():
            import torch

            return Target("this GPU", torch.cuda.get_device_properties(0).total_memory / estimate.GB, True)
        ram = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / estimate.GB
        return Target("this machine's available RAM", ram, False)
    for row in estimate.tiers():
        if row["name"] == tier:
            return Target(tier, float(row["vram_gb"]), bool(row["tflops"]))
    names = ", ".join(t["name"] for t in estimate.tiers())
    raise FitError(f"Unknown target {tier!r}: name a tier or flavour ({names}), 'this', or give --memory-gb.")


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def predicted_gb(cfg: RunConfig, tgt: Target) -> float:
    """The estimate's peak for the target: GPU memory, or CPU RAM with the process baseline (imports, data)."""
    counts = estimate.counts_of(cfg)
    peak = estimate.memory(counts, cfg, gpu=tgt.gpu)["peak_memory_gb"]
    return peak if tgt.gpu else peak + estimate.BASELINE_GB


def _with(cfg: RunConfig, batch: int, accum: int, ckpt: bool) -> RunConfig:
    training = dict(cfg.training)
    training.pop("gradient_checkpointing", None)  # the deprecated alias: one key, under its current name
    training.update(per_device_train_batch_size=batch, gradient_accumulation_steps=accum, activation_checkpointing=ckpt)
    return dataclasses.replace(cfg, training=training)


def _divisors(n: int) -> list[int]:
    return sorted((d for d in range(1, n + 1) if n % d == 0), reverse=True)


def plan(cfg: RunConfig, tgt: Target) -> dict:
    """{fits, config, changes, predicted_gb, budget_gb}: the fitted config and one line per change (with why)."""
    budget = tgt.memory_gb * MARGIN
    stated = f"{budget:.2f} GB ({MARGIN:.0%} of {tgt.memory_gb:.1f} GB on {tgt.name})"
    before = predicted_gb(cfg, tgt)
    t = cfg.training
    batch, accum = int(t.get("per_device_train_batch_size", 8)), int(t.get("gradient_accumulation_steps", 1))
    ckpt = activation_checkpointing(t, tgt.gpu)
    if before <= budget:
        note = f"fits as configured: predicted peak {before:.2f} GB <= {stated}; nothing changed"
        return {"fits": True, "config": cfg, "changes": [note], "predicted_gb": before, "budget_gb": budget}
    effective = batch * accum
    chosen = None
    for use_ckpt in [ckpt] if ckpt else [False, True]:  # checkpointing (~20-30 % slower) only when needed
        for b in _divisors(effective):
            candidate = _with(cfg, b, effective // b, use_ckpt)
            peak = predicted_gb(candidate, tgt)
            if peak <= budget:
                chosen = (candidate, b, use_ckpt, peak)
                break
        if chosen:
            break
    changes = [f"predicted peak {before:.2f} GB is over {stated}"]
    if chosen is None:
        floor = _with(cfg, 1, effective, True)
        changes += _suggestions(floor, tgt, budget, predicted_gb(floor, tgt))
        return {"fits": False, "config": floor, "changes": changes, "predicted_gb": predicted_gb(floor, tgt),
                "budget_gb": budget}  # fmt: skip
    new, b, use_ckpt, peak = chosen
    if b != batch:
        changes.append(
            f"per_device_train_batch_size {batch} -> {b} with gradient_accumulation_steps {accum} -> {effective // b} "
            f"(same effective batch {effective}): the largest per-device batch that fits"
        )
    if use_ckpt and not ckpt:
        changes.append("activation_checkpointing on: keep each layer's input, recompute the rest in backward")
    changes.append(f"predicted peak now {peak:.2f} GB <= {stated}")
    return {"fits": True, "config": new, "changes": changes, "predicted_gb": peak, "budget_gb": budget}


def _suggestions(cfg: RunConfig, tgt: Target, budget: float, peak: float) -> list[str]:
    """What would fit but changes what is trained: QLoRA (GPU, adapters), a shorter max_length."""
    out = [f"does not fit even at per-device batch 1 with activation checkpointing ({peak:.2f} GB)"]
    if tgt.gpu and cfg.model.quantization == "none":
        peft = cfg.peft if cfg.peft.type != "none" else dataclasses.replace(cfg.peft, type="lora", r=16, lora_alpha=32)
        qlora = dataclasses.replace(cfg, peft=peft, model=dataclasses.replace(cfg.model, quantization="4bit"))
        q = predicted_gb(qlora, tgt)
        if q <= budget:
            out.append(f"suggestion: QLoRA (model.quantization: 4bit, peft.type: {peft.type}) predicts {q:.2f} GB")
    length = int(cfg.training.get("max_length") or 1024)
    while length > 64:
        length //= 2
        shorter = dataclasses.replace(cfg, training={**cfg.training, "max_length": length})
        p = predicted_gb(shorter, tgt)
        if p <= budget:
            out.append(f"suggestion: training.max_length: {length} predicts {p:.2f} GB (longer rows are cut)")
            break
    if len(out) == 1:
        out.append("suggestion: a smaller model or a target with more memory")
    return out


def fit(cfg: RunConfig, tgt: Target) -> tuple[RunConfig, list[str]]:
    """(the fitted config, what was changed and why); the notes are also in the config's `autofit:`.
    When nothing fits, the config is the closest one (batch 1, checkpointing) and the notes say what to try."""
    result = plan(cfg, tgt)
    new = copy.deepcopy(result["config"])
    new.autofit = [f"target {tgt.name}", *result["changes"]]
    return new, result["changes"]


def fit_raw(raw: dict, tier: str | None = None, memory_gb: float | None = None, gpu: bool | None = None):
    """For a form: a raw config mapping fitted to a tier (or a budget), as (mapping with its `autofit:` notes,
    fits, the notes).  Raises ConfigError / FitError with one sentence."""
    from trainers import config as config_mod

    cfg = config_mod.from_dict(copy.deepcopy(raw))
    tgt = target(tier, memory_gb, gpu)
    result = plan(cfg, tgt)
    new, changes = fit(cfg, tgt)
    return new.to_dict(), result["fits"], changes
