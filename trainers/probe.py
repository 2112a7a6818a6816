"""Dry run that measures: a few optimizer steps of the real config on the real data and hardware, then the measured
peak memory and tokens/s beside the estimate, and each tier's time and dollars per epoch corrected by what was
measured.  The estimate learns nothing silently: both figures are shown.

    python -m trainers probe CONFIG [--steps N] [--set key=value ...] [--keep DIR] [--json]

Memory: on a GPU torch.cuda.max_memory_allocated and max_memory_reserved; on CPU the process's peak RSS above its
baseline (imports, tokenizer and data, measured just before the model loads), which is what the estimate's CPU
profile predicts.  It stops early once the peak has stopped growing (AdamW state exists from the first step).
The run folder is a temporary one, removed afterwards unless --keep names a folder to keep it in.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

from trainers import config as config_mod
from trainers import estimate

DEFAULT_STEPS = 10
MIN_STEPS = 3  # step 1 creates AdamW state; steps 2-3 show whether the peak still grows
FLAT_STEPS = 2  # stop once the peak grew less than 1 % over this many steps
OVERRIDES = (
    "training.save_strategy=no",
    "training.eval_strategy=no",
    "training.logging_steps=1",
    "training.report_to=none",
    "training.push_to_hub=false",
)


def current_peak_mb(device: str) -> float:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakMeter(TrainerCallback):
    """Per optimizer step: the peak so far, the time and the tokens seen; stops training once the peak is flat."""

    def __init__(self, device: str, min_steps: int = MIN_STEPS, flat_steps: int = FLAT_STEPS):
        self.device, self.min_steps, self.flat_steps = device, min_steps, flat_steps
        self.steps: list[dict] = []
        self.stopped_early = False

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(
            {
                "step": state.global_step,
                "peak_mb": current_peak_mb(self.device),
                "time": time.perf_counter(),
                "tokens": float(state.num_input_tokens_seen or 0),
            }
        )
        if len(self.steps) > max(self.min_steps, self.flat_steps):
            earlier = self.steps[-1 - self.flat_steps]["peak_mb"]
            if self.steps[-1]["peak_mb"] <= earlier * 1.01 and state.global_step < state.max_steps:
                control.should_training_stop = True
                self.stopped_early = True

    def tokens_per_second(self) -> float | None:
        """Tokens per second over the steps after the first (which holds one-off set-up work)."""
        if len(self.steps) < 2:
            return None
        first, last = self.steps[0], self.steps[-1]
        seconds = last["time"] - first["time"]
        return (last["tokens"] - first["tokens"]) / seconds if seconds > 0 else None


def measure(config_path: str, overrides: list[str], steps: int, run_dir: Path) -> dict:
    """Train `steps` optimizer steps (fewer once the peak is flat) in `run_dir`; the measured figures."""
    from trainers import models, run

    device = models.hardware()["device"]
    meter = PeakMeter(device)
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = run.setup_logging(run_dir)
    try:
        summary = run.execute(
            config_path,
            run_dir,
            [*overrides, f"training.max_steps={steps}", *OVERRIDES],
            extra_callbacks=(meter,),
            probe=True,
        )
    finally:
        import transformers

        transformers.utils.logging.remove_handler(handler)
        handler.close()
    out = {
        "device": device,
        "hardware": summary.get("hardware"),
        "attention": summary.get("attention"),
        "steps": len(meter.steps),
        "stopped_early": meter.stopped_early,
        "tokens_per_second": meter.tokens_per_second(),
        "tokens_seen": summary.get("tokens_seen"),
        "runtime_training": summary.get("runtime_training"),
        "peak_rss_mb": summary.get("peak_rss_mb"),
        # the zero the CPU peak is measured from: the RSS when the model started loading (else the peak before it)
        "baseline_rss_mb": summary.get("rss_before_model_mb") or summary.get("baseline_rss_mb"),
    }
    if device == "cuda":
        out["peak_gpu_allocated_gb"] = round(summary["peak_gpu_mb"] * 2**20 / estimate.GB, 3)
        out["peak_gpu_reserved_gb"] = round(summary["peak_gpu_reserved_mb"] * 2**20 / estimate.GB, 3)
        out["measured_peak_gb"] = out["peak_gpu_reserved_gb"]
    else:
        above = cpu_peak_above_baseline_mb(summary) * 2**20 / estimate.GB
        out["measured_peak_gb"] = round(above, 3)
    return out


def _predicted_rate(cfg, est: dict, device: str, gpu_name: str | None) -> tuple[float | None, str]:
    """(predicted tokens/s on this machine, the kind of tier it corrects): CPU tiers from a CPU measurement, GPU
    tiers from a GPU one whose model is in the tier table."""
    from core import threads

    counts = estimate.counts_of(cfg)
    if device != "cuda":
        fpt = estimate.flops_per_token(counts, cfg, ckpt=False)
        cores = threads.configure()["threads"]
        return estimate.CPU_FLOPS_PER_CORE * cores / fpt, "cpu"
    fpt = estimate.flops_per_token(counts, cfg, ckpt=est["gradient_checkpointing"])
    kind = "full" if cfg.peft.type == "none" else "qlora" if cfg.model.quantization != "none" else "lora"
    for tier in estimate.tiers():
        model = tier["gpu"].split(" ", 1)[-1] if tier["tflops"] else None
        if model and gpu_name and model.split()[-1].lower() in gpu_name.lower():
            return tier["tflops"] * 1e12 * estimate.MFU[kind] / fpt, "gpu"
    return None, "gpu"


def report(config_path: str, overrides: list[str], measured: dict) -> dict:
    """The estimate for the same config beside the measurement, and the tiers corrected by measured/predicted."""
    cfg = config_mod.load(config_path, overrides)
    chosen = (measured.get("attention") or {}).get("implementation")
    if chosen:
        cfg.model.attn_implementation = chosen  # the kernel the run used decides the micro-batch, as it did
    try:
        est = estimate.estimate(cfg)
    except Exception as exc:  # noqa: BLE001 - the measurement stands without the estimate; say why it is missing
        from core.errors import user_message

        return {"measured": measured, "predicted_peak_gb": None, "predicted_vs_measured": None, "tiers": [],
                "predicted_tokens_per_second": None, "speed_ratio": None, "estimate_error": user_message(exc)}  # fmt: skip
    gpu = measured["device"] == "cuda"
    predicted = est["peak_memory_gb"] if gpu else est["local_cpu"]["peak_memory_gb"]
    rate, kind = _predicted_rate(cfg, est, measured["device"], (measured.get("hardware") or {}).get("gpu"))
    ratio = measured["tokens_per_second"] / rate if rate and measured.get("tokens_per_second") else None
    tiers = []
    for tier in est["tiers"]:
        corrected = ratio is not None and (kind == "cpu") == (not _tier_tflops(tier["name"]))  # like with like
        hours = tier["hours_per_epoch"] / ratio if corrected else tier["hours_per_epoch"]
        tiers.append(
            {
                **tier,
                "corrected": corrected,
                "hours_per_epoch_corrected": float(f"{hours:.3g}"),
                "usd_per_epoch_corrected": float(f"{hours * tier['usd_per_hour']:.3g}"),
            }
        )
    error = (predicted - measured["measured_peak_gb"]) / measured["measured_peak_gb"] if measured["measured_peak_gb"] > 0 else None  # fmt: skip
    return {
        "measured": measured,
        "predicted_peak_gb": predicted,
        "predicted_vs_measured": None if error is None else round(error, 3),
        "predicted_tokens_per_second": rate and round(rate, 1),
        "speed_ratio": ratio and round(ratio, 3),
        "data": est["data"],
        "tiers": tiers,
    }


def _tier_tflops(name: str) -> float:
    return next((t["tflops"] for t in estimate.tiers() if t["name"] == name), 0.0)


def probe(config_path: str, overrides: list[str] | None = None, steps: int = DEFAULT_STEPS, keep=None) -> dict:
    """Measure, compare, clean up: the run folder is temporary (removed) unless `keep` names where to keep it."""
    overrides = list(overrides or [])
    if keep:
        run_dir = Path(keep)
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        from core.paths import studio_home

        parent = studio_home() / "tmp"
        parent.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="probe-", dir=parent))
    try:
        measured = measure(config_path, overrides, steps, run_dir)
        return report(config_path, overrides, measured)
    finally:
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)


def cpu_peak_above_baseline_mb(summary: dict) -> float:
    """A run's CPU peak in MB above its baseline, from its summary.json: the training phase's own peak above the RSS
    when the model started loading (the engine resets the kernel's peak mark there), else (no /proc) the process's
    peak above its peak before the model.  The probe and bench/probe_vs_full.py both measure with this."""
    if summary.get("rss_before_model_mb") is not None and summary.get("peak_rss_since_model_mb") is not None:
        return max(0.0, summary["peak_rss_since_model_mb"] - summary["rss_before_model_mb"])
    return max(0.0, summary["peak_rss_mb"] - summary["baseline_rss_mb"])


def _gb(x: float) -> str:
    return f"{x:.2f} GB"


def render(result: dict) -> str:
    """Markdown: measured beside predicted, then the tiers with the estimate and the corrected time and cost."""
    m = result["measured"]
    where = "GPU (reserved; allocated " + _gb(m["peak_gpu_allocated_gb"]) + ")" if m["device"] == "cuda" else (
        "CPU RAM above the process baseline of " + _gb(m["baseline_rss_mb"] / 1024)
    )  # fmt: skip
    if m["device"] != "cuda" and m["measured_peak_gb"] < 0.005:
        where += ": training needed no more than loading the data did"
    error, predicted = result["predicted_vs_measured"], result["predicted_peak_gb"]
    estimated = (
        f"estimate {_gb(predicted)}" if predicted is not None else f"no estimate ({result.get('estimate_error')})"
    )
    if predicted is not None and m["device"] == "cuda":
        estimated += " incl. ~0.8 GB CUDA context that torch does not count"
    lines = [
        f"**Measured on this machine** ({m['steps']} optimizer steps"
        + (", stopped once the peak was flat" if m["stopped_early"] else "")
        + f"; attention: {(m.get('attention') or {}).get('implementation') or 'default'})  ",
        f"**Peak memory:** measured {_gb(m['measured_peak_gb'])} ({where}); {estimated}"
        + ("" if error is None else f" ({error:+.0%} vs measured)")
        + "  ",
    ]
    tps, pred = m.get("tokens_per_second"), result.get("predicted_tokens_per_second")
    lines.append(f"**Tokens/s:** measured {tps:,.0f}" if tps else "**Tokens/s:** too few steps to measure")
    if tps and pred:
        lines[-1] += f"; estimate {pred:,.0f} (x{result['speed_ratio']:.2f} applied to the tiers marked *)"
    if not result["tiers"]:
        return "\n".join(lines)
    lines += [
        "",
        "| tier | memory GB | fits (estimate) | time/epoch estimate | time/epoch corrected | $/epoch corrected |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for t in result["tiers"]:
        mark = " *" if t["corrected"] else ""
        lines.append(
            f"| {t['name']} | {t['vram_gb']} | {t['fits']} | {estimate.hours_text(t['hours_per_epoch'])} | "
            f"{estimate.hours_text(t['hours_per_epoch_corrected'])}{mark} | "
            f"{estimate.dollars_text(t['usd_per_epoch_corrected'])}{mark} |"
        )
    if result["tiers"] and not any(t["corrected"] for t in result["tiers"]):
        lines.append("\nNo tier corrected: this machine's speed is not comparable with any tier's.")
    return "\n".join(lines)
