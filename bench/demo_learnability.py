"""Does the demo visibly learn?  The held-out rate of taught answers before and after the default demo SFT.

    python bench/demo_learnability.py [--setup recipe|train-tab|both] [--steps N] [--out DIR]

Trains demo-tiny with (a) templates/recipes/demo-sft.yaml as shipped and/or (b) the Train tab's offline form
defaults (ui.train_form.TrainForm: SFT, LoRA rank 64, 200 steps, batch 8, max_length 128, lr 25x the engine's),
then asks every held-out question of data/demo/sft_eval.jsonl (greedy, the evaluation's generations) of the
base model and of each adapter.  A reply is the taught answer when it equals the reference after the verifiable
judge's `normalised` comparison, with or without the demo's sign-off (" Happy to help!", a style, not an
answer).  Also prints the reply to the Playground's default question (data.demo.build.DEFAULT_QUESTION).
A measurement, not a test: tests/test_demo_task.py checks the same thing on the Train tab's budget.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def taught(reply: str, reference: str) -> bool:
    from data.demo.build import SIGN_OFF
    from evaluation.judges.verifiable import check

    return bool(check(reply, reference) or check(reply, reference + SIGN_OFF))


def held_out() -> list[tuple[list[dict], str]]:
    rows = [json.loads(line) for line in (ROOT / "data/demo/sft_eval.jsonl").read_text().splitlines()]
    return [(r["messages"][:-1], r["messages"][-1]["content"]) for r in rows]


def measure(model, tok) -> dict:
    from data.demo.build import DEFAULT_QUESTION
    from evaluation.generate import reply

    rows = held_out()
    replies = [reply(model, tok, prompt) for prompt, _ in rows]
    hits = [taught(r, ref) for r, (_, ref) in zip(replies, rows, strict=True)]
    default = reply(model, tok, [{"role": "user", "content": DEFAULT_QUESTION}])
    return {"taught": sum(hits), "of": len(hits), "rate": sum(hits) / len(hits), "default_reply": default}


def train_tab_yaml(steps: int) -> str:
    from ui.context import DEMO_SFT
    from ui.train_form import TrainForm, form_lr

    form = TrainForm(
        method="sft",
        model="demo-tiny",
        peft_kind="LoRA",
        data_source=str(DEMO_SFT),
        pref_source="",
        lr=form_lr("sft", True),
        epochs=1,
        max_steps=steps,
        batch=8,
        max_length=128,
        r=64,
    )
    return form.to_yaml()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", choices=("recipe", "train-tab", "both"), default="both")
    parser.add_argument("--steps", type=int, default=200, help="the Train tab's max steps (its default: 200)")
    parser.add_argument("--out", help="where the runs go (default: a temporary folder)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="demo-learnability-"))
    os.environ.setdefault("STUDIO_HOME", str(out / "home"))  # a demo model built from the current data
    os.environ.setdefault("STUDIO_QUIET", "1")
    from evaluation.generate import load
    from trainers.__main__ import main as trainers_main
    from trainers.models import resolve_model_path

    base_dir = resolve_model_path("demo-tiny")
    results = {"base": measure(*load(base_dir))}
    setups = {"recipe": str(ROOT / "templates/recipes/demo-sft.yaml")}
    if args.setup in ("train-tab", "both"):
        config = out / "train-tab.yaml"
        config.write_text(train_tab_yaml(args.steps))
        setups["train-tab"] = str(config)
    if args.setup == "train-tab":
        del setups["recipe"]
    for name, config in setups.items():
        started = time.perf_counter()
        assert trainers_main(["train", config, "--output-dir", str(out / name)]) == 0, name
        results[name] = measure(*load(base_dir, str(out / name / "adapter")))
        results[name]["train_s"] = round(time.perf_counter() - started, 1)
    for name, r in results.items():
        print(f"{name:10} taught {r['taught']}/{r['of']} ({r['rate']:.0%})  default question -> {r['default_reply']!r}")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"written {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
