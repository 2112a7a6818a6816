"""`python -m evaluation compare CONFIG.yaml [--output-dir DIR]` and `python -m evaluation eval TARGET --data ...`."""

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
    args = parser.parse_args(argv)
    threads.configure()  # before torch loads: this process's thread share, passive OpenMP waits

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    quiet_hub_retries()
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


if __name__ == "__main__":
    sys.exit(main())
