"""GPU check (issue 19), one command on a machine with one CUDA GPU, within ~8 minutes, one JSON with every figure.

    python bench/gpu_check.py OUT_DIR            # on the GPU (bench/gpu_run.sh calls this)
    python bench/gpu_check.py OUT_DIR --dry      # print the plan (configs, commands) and check every config; no run
    python bench/gpu_check.py OUT_DIR --cpu      # the same orchestration on CPU with tiny shapes (a smoke run)

1. probe vs estimate: `python -m trainers probe` on random-init Qwen2.5-1.5B and Llama-3.1-8B shapes, LoRA bf16
   and QLoRA 4-bit, batch / accumulation / max_length as the shipped recipes: measured peak (allocated, reserved)
   and tokens/s beside the estimate.
2. padding-free with FlashAttention (the engine's choice, bfd packing at the recipe batch) vs TRL's defaults
   (no packing, padded batches): effective (non-padding) tokens/s, through the engine.
3. the engine vs a plain TRL script (bench/plain_trl_sft.py --mode same): wall time and train_runtime.
No Hub access: models are the real configs with random weights and the demo tokenizer; data is bench/out/data.jsonl
(bench/make_data.py).  Nothing is installed here; gpu_run.sh installs only the wheels it carries.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "bench" / "out" / "data.jsonl"
BUDGET_S = 450  # stop starting new parts after this (the whole check must end within 8 minutes)
SHAPES = {
    "qwen2.5-1.5b": (
        "Qwen2",
        dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
             num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True),
    ),
    "llama3.1-8b": (
        "Llama",
        dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
             num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0),
    ),
    "tiny": ("Llama", dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2)),
}  # fmt: skip
# Recipe batch shapes (templates/recipes/qwen2.5-1.5b-qlora-sft.yaml, llama3.1-8b-qlora-sft.yaml)
RECIPE = {
    "qwen2.5-1.5b": {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 2, "max_length": 2048},
    "llama3.1-8b": {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 8, "max_length": 2048},
    "tiny": {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "max_length": 256},
}
PROBES = [  # (name, shape, quantization)
    ("qwen2.5-1.5b lora bf16", "qwen2.5-1.5b", "none"),
    ("qwen2.5-1.5b qlora 4bit", "qwen2.5-1.5b", "4bit"),
    ("llama3.1-8b qlora 4bit", "llama3.1-8b", "4bit"),
    ("llama3.1-8b lora bf16", "llama3.1-8b", "none"),
]


def config(model: str, shape: str, quant: str, **training) -> dict:
    return {
        "method": "sft",
        "model": {"name_or_path": model, "quantization": quant},
        "peft": {"type": "lora", "r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear"},
        "data": {"source": str(DATA), "eval_size": 0},
        "training": {**RECIPE[shape], "learning_rate": 1e-4, "logging_steps": 1, "save_strategy": "no", **training},
    }


def make_model(shape: str, folder: Path, device: str) -> None:
    if (folder / "config.json").exists():
        return
    import torch
    import transformers

    from trainers.demo_model import build_tokenizer

    tokenizer = build_tokenizer()
    family, kwargs = SHAPES[shape]
    cfg = getattr(transformers, f"{family}Config")(
        max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **kwargs
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = getattr(transformers, f"{family}ForCausalLM")(cfg).to(
            torch.bfloat16 if device == "cuda" else torch.float32
        )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()


class Check:
    def __init__(self, out: Path, dry: bool, started: float, slack: float = 1.0):
        self.out, self.dry, self.started, self.slack = out, dry, started, slack  # slack: CPU smoke runs are slower
        self.results: dict = {"parts": {}, "skipped": []}

    def left(self) -> float:
        return BUDGET_S * self.slack - (time.time() - self.started)

    def write(self) -> None:
        (self.out / "gpu_check.json").write_text(json.dumps(self.results, indent=2))

    def command(self, name: str, cmd: list[str], limit_s: float) -> dict:
        """Run one part (a child process) within the time left; its exit code, wall time and stderr tail."""
        if self.dry:
            print(f"[dry] {name}: {' '.join(cmd)}")
            return {"rc": None, "dry": True}
        if self.left() < 20:
            self.results["skipped"].append(name)
            return {"rc": None, "skipped": "out of time"}
        t = time.time()
        env = {**os.environ, "STUDIO_QUIET": "1", "TOKENIZERS_PARALLELISM": "false"}
        try:
            proc = subprocess.run(
                cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=min(limit_s * self.slack, self.left())
            )
        except subprocess.TimeoutExpired:
            self.results["skipped"].append(f"{name} (timed out)")
            return {"rc": None, "timed_out": True, "wall_s": round(time.time() - t, 1)}
        out = {"rc": proc.returncode, "wall_s": round(time.time() - t, 1), "stdout": proc.stdout}
        if proc.returncode != 0:
            out["stderr"] = proc.stderr[-1500:]  # the failure's last lines; a success keeps only its figures
        return out

    def yaml_file(self, name: str, doc: dict) -> Path:
        import yaml

        from trainers import config as config_mod

        checked = json.loads(json.dumps(doc))
        if self.dry:  # the random models are not built in --dry: check the rest of the config on the demo model
            checked["model"]["name_or_path"] = "demo-tiny"
        config_mod.from_dict(checked)  # every config is valid, also in --dry
        path = self.out / f"{name.replace(' ', '-')}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path


def probes(check: Check, models: dict, steps: int, runs: list) -> None:
    for name, shape, quant in runs:
        if shape not in models:
            continue
        path = check.yaml_file(name, config(str(models[shape]), shape, quant))
        res = check.command(
            name, [sys.executable, "-m", "trainers", "probe", str(path), "--json", "--steps", str(steps)], 240
        )
        if res.get("rc") == 0:
            report = json.loads(res.pop("stdout"))
            m = report["measured"]
            res.update(
                attention=m.get("attention"), steps=m["steps"], tokens_per_s=m["tokens_per_second"],
                peak_allocated_gb=m.get("peak_gpu_allocated_gb"), peak_reserved_gb=m.get("peak_gpu_reserved_gb"),
                measured_peak_gb=m["measured_peak_gb"], estimate_gb=report["predicted_peak_gb"],
                estimate_vs_measured=report["predicted_vs_measured"], estimate_tokens_per_s=report["predicted_tokens_per_second"],
                runtime_training=m.get("runtime_training"),
            )  # fmt: skip
        res.pop("stdout", None)
        check.results["parts"][f"probe: {name}"] = res
        check.write()


def engine_run(check: Check, name: str, doc: dict, limit_s: float) -> dict:
    path = check.yaml_file(name, doc)
    run_dir = check.out / "runs" / path.stem
    res = check.command(
        name, [sys.executable, "-m", "trainers", "train", str(path), "--output-dir", str(run_dir)], limit_s
    )
    res.pop("stdout", None)
    summary_path = run_dir / "summary.json"
    if res.get("rc") == 0 and summary_path.exists():
        s = json.loads(summary_path.read_text())
        runtime = s["final_metrics"].get("train_runtime") or 0
        res.update(
            attention=s.get("attention"), steps=s.get("global_step"), tokens_seen=s.get("tokens_seen"),
            train_runtime_s=runtime, effective_tokens_per_s=round(s["tokens_seen"] / runtime, 1) if runtime else None,
            peak_gpu_mb=s.get("peak_gpu_mb"), runtime_training=s.get("runtime_training"),
        )  # fmt: skip
    return res


def padding_free(check: Check, model: Path, shape: str, steps: int) -> None:
    base = config(str(model), shape, "none", max_steps=steps, per_device_train_batch_size=8, gradient_accumulation_steps=1, max_length=1024)  # fmt: skip
    packed = json.loads(json.dumps(base))
    packed["training"].update(packing=True, packing_strategy="bfd")  # padding-free; kept at batch 8 with flash
    trl = json.loads(json.dumps(base))
    trl["training"].update(packing=False, padding_free=False)  # TRL's defaults: padded batches
    for name, doc in (("padding-free (engine choice)", packed), ("TRL defaults (padded)", trl)):
        check.results["parts"][name] = engine_run(check, name, doc, 150)
        check.write()


def plain_constants(*names: str) -> tuple:
    """The plain script's own constants, read without importing it (it imports TRL at the top), as bench/run.py."""
    import ast

    tree = ast.parse((ROOT / "bench" / "plain_trl_sft.py").read_text(encoding="utf-8"))
    found = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id in names
    }
    return tuple(found[name] for name in names)


def overhead(check: Check, model: Path, shape: str, steps: int) -> None:
    """The engine vs bench/plain_trl_sft.py --mode same (its LoRA r64, lr 5e-3, batch 1 x 8, max_length 512)."""
    LORA, MODES, TRAINING = plain_constants("LORA", "MODES", "TRAINING")  # noqa: N806

    doc = config(str(model), shape, "none", max_steps=steps, learning_rate=TRAINING["learning_rate"],
                 max_length=TRAINING["max_length"], **MODES["same"], assistant_only_loss=True)  # fmt: skip
    doc["peft"] = {"type": "lora", **LORA}
    doc["model"]["attn_implementation"] = "sdpa"  # the plain script's model loads with transformers' default
    check.results["parts"]["engine (overhead)"] = engine_run(check, "engine overhead", doc, 150)
    out = check.out / "plain.json"
    cmd = [sys.executable, str(ROOT / "bench" / "plain_trl_sft.py"), "--mode", "same", "--data", str(DATA),
           "--model", str(model), "--out", str(out), "--output-dir", str(check.out / "plain"), "--max-steps", str(steps)]  # fmt: skip
    res = check.command("plain TRL (overhead)", cmd, 150)
    res.pop("stdout", None)
    if res.get("rc") == 0 and out.exists():
        plain = json.loads(out.read_text())
        res.update(steps=plain["steps"], train_runtime_s=plain["train_runtime"], tokens_seen=plain["tokens_seen"])
    check.results["parts"]["plain TRL (overhead)"] = res
    check.write()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry", action="store_true", help="print the plan and check the configs; run nothing")
    mode.add_argument("--cpu", action="store_true", help="tiny shapes on CPU: the orchestration, end to end")
    args = parser.parse_args()
    started = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, args.dry, started, slack=4.0 if args.cpu else 1.0)
    if not DATA.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_data.py")], check=True)
    import torch

    gpu = torch.cuda.is_available() and not args.cpu
    if not gpu and not (args.dry or args.cpu):
        print("error: no CUDA GPU here: run with --cpu (tiny shapes) or --dry (the plan only).", file=sys.stderr)
        return 2
    check.results.update(
        mode="dry" if args.dry else "gpu" if gpu else "cpu",
        device=torch.cuda.get_device_name(0) if gpu else "cpu",
        torch=torch.__version__,
    )
    shapes = ["qwen2.5-1.5b", "llama3.1-8b"] if gpu or args.dry else ["tiny"]
    models = {}
    for shape in shapes:
        models[shape] = Path("/tmp/gpu_check_models") / shape if gpu else args.out / "models" / shape
        if not args.dry:
            t = time.time()
            make_model(shape, models[shape], "cuda" if gpu else "cpu")
            check.results[f"build {shape} s"] = round(time.time() - t, 1)
    runs = [("tiny lora", "tiny", "none")] if args.cpu else PROBES  # tiny: LoRA only (4-bit needs CUDA kernels)
    small = shapes[0]
    steps = 6 if gpu else 2
    probes(check, models, steps, runs)
    padding_free(check, models[small], small, 2 * steps)
    overhead(check, models[small], small, 2 * steps)
    check.results["wall_s"] = round(time.time() - started, 1)
    check.write()
    print(json.dumps(check.results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
