"""Predicted vs measured peak training memory on CPU (the estimate's memory model, checked).

    python bench/estimate_memory.py            # measure (~4 min on 2 cores) and print the table
    python bench/estimate_memory.py --predict  # reuse bench/out/estimate_memory.json, re-predict only

Each configuration trains 5 steps with `python -m trainers train` in its own process; its summary.json
records the process's peak RSS. From it we subtract the baseline: the peak RSS of a process that does
the same imports and loads the same tokenizer and data, but builds no model (`--baseline`). What is left
is what training added: weights, adapter, gradients, optimizer state, activations, allocator slack. The
estimate's CPU profile (`estimate(cfg)["local_cpu"]`) predicts exactly that quantity.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "estimate"
DATA = ROOT / "bench" / "out" / "data.jsonl"
STEPS = 2  # the peak comes in step 1 (optimizer state is created there); 2 steps keep it short
# (name, model, peft type, r, batch, max_length)
CONFIGS = [
    ("demo lora r64 b8 L128", "demo-tiny", "lora", 64, 8, 128),
    ("demo full b8 L512", "demo-tiny", "none", 8, 8, 512),
    ("mid lora r8 b1 L256", "mid", "lora", 8, 1, 256),
    ("mid lora r8 b4 L256", "mid", "lora", 8, 4, 256),
    ("mid lora r8 b4 L512", "mid", "lora", 8, 4, 512),
    ("mid lora r64 b4 L512", "mid", "lora", 64, 4, 512),
    ("mid dora r16 b2 L256", "mid", "dora", 16, 2, 256),
    ("mid full b2 L256", "mid", "none", 8, 2, 256),
    ("mid full b4 L512", "mid", "none", 8, 4, 512),
]


def mid_model() -> Path:
    """A mid-size random Llama (hidden 512, 8 layers, ~27 M parameters) with the demo tokenizer."""
    path = OUT / "mid-llama"
    if (path / "model.safetensors").exists():
        return path
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from trainers.models import resolve_model_path

    demo = resolve_model_path("demo-tiny")
    tok = AutoTokenizer.from_pretrained(demo)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        hidden_size=512,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=4,
        intermediate_size=1408,
        vocab_size=len(tok),
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def config_doc(model: str, peft: str, r: int, batch: int, max_length: int) -> dict:
    return {
        "method": "sft",
        "model": {"name_or_path": model},
        "peft": {"type": peft, "r": r, "lora_alpha": r, "lora_dropout": 0.0, "target_modules": "all-linear"},
        "data": {"source": str(DATA), "eval_size": 0},
        "training": {
            "max_steps": STEPS,
            "per_device_train_batch_size": batch,
            "max_length": max_length,
            "packing": True,
            "packing_strategy": "wrapped",  # full max_length rows at batch B (bfd would go batch 1 x accumulation)
            "save_strategy": "no",
            "logging_steps": 1,
            "learning_rate": 1e-4,
        },
    }


def baseline(model: str) -> None:
    """Imports, tokenizer and data as the engine does them, no model: print this process's peak RSS in MB."""
    import datasets  # noqa: F401
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401

    from data.splits import load_for_run
    from trainers import config as config_mod
    from trainers import models, sft  # noqa: F401

    cfg = config_mod.from_dict(config_doc(model, "lora", 8, 1, 512))
    tok, _ = models.resolve_and_load_tokenizer(cfg.model)
    load_for_run(cfg.data, "sft", tok, 512)
    print(json.dumps({"baseline_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(models: dict) -> list[dict]:
    import yaml

    rows = []
    for model in ("demo-tiny", "mid"):
        cmd = [sys.executable, __file__, "--baseline", models[model]]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        rows.append({"name": f"baseline {model}", **json.loads(out)})
        print(rows[-1], flush=True)
    for name, model, peft, r, batch, max_length in CONFIGS:
        doc = config_doc(models[model], peft, r, batch, max_length)
        run_dir = OUT / "runs" / name.replace(" ", "-")
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        (run_dir.parent / f"{run_dir.name}.yaml").write_text(yaml.safe_dump(doc))
        started = time.time()
        cmd = [sys.executable, "-m", "trainers", "train", str(run_dir.parent / f"{run_dir.name}.yaml")]
        subprocess.run(cmd + ["--output-dir", str(run_dir)], cwd=ROOT, capture_output=True, check=True)
        summary = json.loads((run_dir / "summary.json").read_text())
        rows.append(
            {
                "name": name,
                "model": model,
                "doc": doc,
                "peak_rss_mb": summary["peak_rss_mb"],
                "train_runtime_s": summary["final_metrics"].get("train_runtime"),
                "tokens_seen": summary.get("tokens_seen"),
                "trainable_params": summary["trainable_params"],
                "wall_s": round(time.time() - started, 1),
            }
        )
        print(rows[-1]["name"], rows[-1]["peak_rss_mb"], rows[-1]["train_runtime_s"], flush=True)
    return rows


def predict(rows: list[dict]) -> None:
    from trainers import config as config_mod
    from trainers.estimate import estimate

    base = {r["name"].split()[-1]: r["baseline_mb"] for r in rows if r["name"].startswith("baseline")}
    print("| configuration | trainable | measured peak RSS | baseline | measured − baseline | predicted | error |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if "doc" not in row:
            continue
        est = estimate(config_mod.from_dict(row["doc"]), rows=400, tokens_per_row=162)
        measured = (row["peak_rss_mb"] - base[row["model"]]) / 1024
        predicted = est["local_cpu"]["peak_memory_gb"]
        err = 100 * (predicted - measured) / measured
        print(
            f"| {row['name']} | {est['trainable_params']:,} | {row['peak_rss_mb'] / 1024:.2f} GB | "
            f"{base[row['model']] / 1024:.2f} GB | {measured:.3f} GB | {predicted:.3f} GB | {err:+.0f} % |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--predict", action="store_true", help="re-predict from the saved measurements")
    parser.add_argument("--baseline", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("STUDIO_QUIET", "1")
    if args.baseline:
        return baseline(args.baseline)
    OUT.mkdir(parents=True, exist_ok=True)
    results = OUT.parent / "estimate_memory.json"
    if not args.predict:
        if not DATA.exists():
            subprocess.run([sys.executable, str(ROOT / "bench" / "make_data.py")], check=True)
        models = {"demo-tiny": "demo-tiny", "mid": str(mid_model())}
        results.write_text(json.dumps(measure(models), indent=1))
    predict(json.loads(results.read_text()))


if __name__ == "__main__":
    main()
