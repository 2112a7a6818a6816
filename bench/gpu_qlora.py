"""GPU check (not a test): QLoRA SFT through our engine on real-size model shapes, bf16, peak VRAM.

    python bench/gpu_qlora.py OUT_DIR

No Hub access on the device machine, so each model is the real architecture's config with random
weights (same shapes, same memory) plus the demo tokenizer; data is the shipped demo SFT set, packed.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from trainers.demo_model import build_tokenizer  # noqa: E402

SHAPES = {
    "qwen2.5-1.5b": (
        Qwen2Config,
        Qwen2ForCausalLM,
        dict(
            vocab_size=151936,
            hidden_size=1536,
            intermediate_size=8960,
            num_hidden_layers=28,
            num_attention_heads=12,
            num_key_value_heads=2,
            tie_word_embeddings=True,
        ),
    ),
    "llama3.1-8b": (
        LlamaConfig,
        LlamaForCausalLM,
        dict(
            vocab_size=128256,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            rope_theta=500000.0,
        ),
    ),
}
RUNS = [  # (name, shape, quantization)
    ("qwen2.5-1.5b-lora-bf16", "qwen2.5-1.5b", "none"),
    ("qwen2.5-1.5b-qlora", "qwen2.5-1.5b", "4bit"),
    ("llama3.1-8b-qlora", "llama3.1-8b", "4bit"),
]


def make_model(shape: str, folder: Path, tokenizer) -> None:
    cfg_cls, model_cls, kwargs = SHAPES[shape]
    config = cfg_cls(
        max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **kwargs
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = model_cls(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    results = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    built = {}
    for name, shape, quant in RUNS:
        if shape not in built:
            t = time.time()
            built[shape] = Path("/tmp/models") / shape
            make_model(shape, built[shape], tokenizer)
            results[f"{shape}_build_s"] = round(time.time() - t, 1)
        cfg = {
            "method": "sft",
            "model": {"name_or_path": str(built[shape]), "quantization": quant},
            "peft": {"type": "lora", "r": 16, "lora_alpha": 32, "target_modules": "all-linear"},
            "data": {"source": str(ROOT / "data/demo/sft_train.jsonl"), "eval_size": 0},
            "training": {
                "max_steps": 30,
                "per_device_train_batch_size": 4,
                "max_length": 1024,
                "gradient_checkpointing": True,
                "logging_steps": 5,
                "save_steps": 1000,
            },
        }
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        run_dir = Path("/tmp/runs") / name
        t = time.time()
        rc = subprocess.run(
            [sys.executable, "-m", "trainers", "train", str(path), "--output-dir", str(run_dir)], cwd=ROOT, check=False
        ).returncode
        summary = json.loads((run_dir / "summary.json").read_text())
        rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        tps = [r["tokens_per_second"] for r in rows if r.get("tokens_per_second")]
        results[name] = {
            "rc": rc,
            "status": summary.get("status"),
            "error": summary.get("error"),
            "peak_gpu_mb": summary.get("peak_gpu_mb"),
            "wall_time_s": round(time.time() - t, 1),
            "trainable_params": summary.get("trainable_params"),
            "total_params": summary.get("total_params"),
            "tokens_per_second_last": tps[-1] if tps else None,
            "global_step": summary.get("global_step"),
            "bf16": summary.get("hardware", {}).get("bf16"),
            "losses": [round(r["loss"], 3) for r in rows if "loss" in r],
        }
        print(json.dumps({name: results[name]}), flush=True)
        (out / "gpu_results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
