"""`python -m evaluation compare CONFIG.yaml [--output-dir DIR]`, `python -m evaluation eval TARGET --data ...` and
`python -m evaluation score RUN --data FILE [--json]` (a reward model's pair accuracy and scores)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from core import threads
from core.errors import quiet_hub_retries, user_message
from evaluation.compare import compare, report_folder
from evaluation.single import evaluate_target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation", description="Evaluate and compare fine-tunes.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="train SFT / DPO / SFT→DPO on one base and write a fair report")
    cmp.add_argument("config", help="comparison YAML (see templates/recipes/demo-compare.yaml)")
    cmp.add_argument("--output-dir", help="where runs/, report.json and report.md go (default: runs/compare-NAME)")
    rep = sub.add_parser("report", help="(re)evaluate the arms of a comparison folder and rewrite its report")
    rep.add_argument("folder", help="a comparison folder holding comparison.yaml and arms.json or runs/")
    ev = sub.add_parser("eval", help="evaluate one run folder, adapter folder or model on held-out data")
    ev.add_argument("target", help="run folder, adapter folder, local model folder or Hub id")
    ev.add_argument("--data", help="instruction data (file or Hub id), every row scored (default: the run's held-out)")
    ev.add_argument("--pref-data", help="preference pairs (file or Hub id), every pair scored")
    ev.add_argument("--generations", type=int, default=4, help="greedy generations on the first N prompts")
    ev.add_argument("--max-new-tokens", type=int, default=48)
    ev.add_argument("--beta", type=float, default=0.1, help="beta of the implicit reward against the base")
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sc = sub.add_parser("score", help="score preference pairs (or prompt + reply rows) with a reward model")
    sc.add_argument("target", help="a reward run's folder, its adapter folder, or a reward model's Hub id")
    sc.add_argument("--data", required=True, help="preference pairs or prompt + reply rows (file or Hub id)")
    sc.add_argument("--json", action="store_true", help="print JSON with every row's scores")
    args = parser.parse_args(argv)
    threads.configure()  # before torch loads: this process's thread share, passive OpenMP waits

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    quiet_hub_retries()
    if args.command == "score":
        return _score(args)
    try:
        if args.command == "compare":
            out = Path(args.output_dir or Path("runs") / f"compare-{Path(args.config).stem}")
            data = compare(args.config, out)
            print((out / "report.md").read_text(encoding="utf-8"))
            print(f"Report: {out / 'report.md'} and {out / 'report.json'}", file=sys.stderr)
            failed = [a for a, e in data["arms"].items() if e["status"] != "succeeded"]
            return 1 if failed and len(failed) == len(data["arms"]) else 0
        if args.command == "report":
            report_folder(Path(args.folder))
            print((Path(args.folder) / "report.md").read_text(encoding="utf-8"))
            return 0
        result = evaluate_target(
            args.target, args.data, args.pref_data, args.generations, args.max_new_tokens, args.beta
        )
    except Exception as exc:  # noqa: BLE001 - one sentence, never a traceback
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for model in ("base", "model"):
            print(f"{model}: " + ", ".join(f"{k}={v:.4g}" for k, v in result[model]["metrics"].items()))
        for prompt, base, tuned in zip(
            result["prompts"], result["base"]["generations"], result["model"]["generations"], strict=False
        ):
            print(f"\nprompt: {prompt}\n  base:  {base}\n  model: {tuned}")
    return 0


def _score(args) -> int:
    """Bad input (not a reward model, a missing file, data with nothing to score) is one sentence and exit 1."""
    import warnings

    import datasets
    import transformers

    from evaluation.score import render_text, score

    datasets.disable_progress_bars()  # stderr keeps the one sentence that matters
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        result = score(args.target, args.data)
    except Exception as exc:  # noqa: BLE001 - one sentence, never a traceback
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else render_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
