"""Playground latency: the first message (load base + adapter, then both replies) vs the second (cached model).

    python bench/playground_latency.py                  # demo-tiny, a 30-step demo adapter, 5 repetitions
    python bench/playground_latency.py --reps 9 --max-new-tokens 64 --steps 60 --demo-only

What it does: trains a demo SFT adapter with the CLI (`python -m trainers train templates/recipes/demo-sft.yaml
--set training.max_steps=STEPS`) into a temporary STUDIO_HOME, imports the libraries once, then per repetition
starts an empty evaluation.chat.ModelCache and sends two messages as the Playground does (base side, then adapter
side, same greedy decoding): the first loads the model, the second (with the first turn as history) finds it in
the cache.  Reported: the median of each, the ratio first/second, and the load alone; the same again for a
random model of SmolLM2-135M's shape with an untrained LoRA adapter (what a real small model costs to load),
unless --demo-only.  Results also go to
bench/out/playground_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTION = "What is the opposite of hot?"
FOLLOW_UP = "And the opposite of up?"


def train_adapter(home: Path, steps: int) -> Path:
    out = home / "runs" / "bench-demo-sft"
    cmd = [
        sys.executable, "-m", "trainers", "train", "templates/recipes/demo-sft.yaml", "--output-dir", str(out),
        "--set", f"training.max_steps={steps}", "--set", "training.save_steps=100000",
    ]  # fmt: skip
    env = {**os.environ, "STUDIO_HOME": str(home), "HF_HUB_OFFLINE": "1", "STUDIO_QUIET": "1"}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, timeout=1800)
    return out / "adapter"


def smollm_shaped(home: Path, demo_base: str) -> tuple[str, str]:
    """A random model of SmolLM2-135M's shape (30 layers, hidden 576; the demo tokenizer) and an untrained LoRA
    adapter on it: what loading a real small model costs, offline."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    base, adapter = home / "models" / "smollm2-135m-shape", home / "adapters" / "smollm2-135m-shape-lora"
    tokenizer = AutoTokenizer.from_pretrained(demo_base)
    config = LlamaConfig(
        hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
        vocab_size=max(len(tokenizer), 49152), tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")).save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    return str(base), str(adapter)


def one_repetition(base: str, adapter: str, sampling) -> dict:
    from evaluation import chat

    cache = chat.ModelCache()
    t0 = time.perf_counter()
    entry = cache.get(base, adapter)
    loaded = time.perf_counter()
    *_, (base_reply, tuned_reply) = chat.both_replies(
        entry, chat.conversation([], QUESTION), chat.conversation([], QUESTION), sampling
    )
    first = time.perf_counter()
    base_history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": base_reply}]
    tuned_history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": tuned_reply}]
    entry = cache.get(base, adapter)
    list(
        chat.both_replies(
            entry, chat.conversation(base_history, FOLLOW_UP), chat.conversation(tuned_history, FOLLOW_UP), sampling
        )
    )
    second = time.perf_counter()
    assert cache.loads == 1, "the second message must find the model in the cache"
    return {"load_s": loaded - t0, "first_s": first - t0, "second_s": second - first, "tuned_reply": tuned_reply}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30, help="training steps of the demo adapter")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--home", help="STUDIO_HOME to use (default: a temporary folder)")
    parser.add_argument("--demo-only", action="store_true", help="skip the SmolLM2-135M-shaped model")
    args = parser.parse_args(argv)

    home = Path(args.home or tempfile.mkdtemp(prefix="playground-bench-"))
    os.environ["STUDIO_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t = time.perf_counter()
    adapter = train_adapter(home, args.steps)
    train_s = time.perf_counter() - t

    t = time.perf_counter()
    import peft  # noqa: F401 - the libraries are imported once, before any timing (their import is reported)
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from evaluation import chat
    from trainers.models import hardware, resolve_model_path

    import_s = time.perf_counter() - t
    demo = resolve_model_path("demo-tiny")
    models = {f"demo-tiny + {args.steps}-step demo SFT adapter": (demo, str(adapter))}
    if not args.demo_only:
        models["SmolLM2-135M-shaped (random) + LoRA r16"] = smollm_shaped(home, demo)
    sampling = chat.Sampling(temperature=0.0, max_new_tokens=args.max_new_tokens)
    command = "python bench/playground_latency.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"\n{command.strip()}")
    print(f"{hardware()['device']}; {args.reps} repetitions, greedy, max_new_tokens {args.max_new_tokens}, both sides")
    print(f"per message; demo adapter trained in {train_s:.0f} s; torch + transformers + peft import {import_s:.1f} s")
    print("(paid once per process, before the timings)\n")
    print("| model | first message (load + replies) | of which load | second message (cached) | first / second |")
    print("| --- | --- | --- | --- | --- |")
    results = {}
    for label, (base, adapter_path) in models.items():
        rows = [one_repetition(base, adapter_path, sampling) for _ in range(args.reps)]
        med = {k: statistics.median(r[k] for r in rows) for k in ("load_s", "first_s", "second_s")}
        ratio = med["first_s"] / med["second_s"] if med["second_s"] else float("inf")
        cells = [f"{med[k]:.2f} s ({min(r[k] for r in rows):.2f}–{max(r[k] for r in rows):.2f})" for k in med]
        print(f"| {label} | {cells[1]} | {cells[0]} | {cells[2]} | {ratio:.1f}x |")
        results[label] = {"reps": rows, "median": med, "ratio": ratio}
    print("\nmedian (min–max) seconds")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    result = {"command": command.strip(), "models": results, "train_s": train_s, "import_s": import_s}
    (out / "playground_latency.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
