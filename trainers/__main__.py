"""Fine-Tune Studio training engine.

    python -m trainers train CONFIG.yaml [--output-dir DIR] [--set key.path=value ...]
    python -m trainers estimate CONFIG.yaml [--json] [--set key.path=value ...] [--rows N] [--tokens-per-row N]
    python -m trainers jobs-command CONFIG.yaml --flavor a10g-large --push-to NAME/REPO [--submit]
    python -m trainers demo-model DIR
    python -m trainers doctor SOURCE [--method METHOD] [--model PATH_OR_ID] ...   (= python -m data doctor)

`train` runs SFT or DPO (TRL) with LoRA / QLoRA / DoRA / full fine-tuning from one YAML config and
writes a run folder; re-running on the same folder resumes from its last checkpoint.  Runs the same
from a terminal, the app's job queue, `accelerate launch` and HF Jobs.  Heavy imports happen inside
the commands so `--help` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys

from core import settings


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainers", description=__doc__.split("\n\n")[2])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train from a RunConfig YAML")
    train.add_argument("config", help="RunConfig YAML (e.g. templates/recipes/demo-sft.yaml)")
    train.add_argument("--output-dir", help="run folder (default: STUDIO_HOME/runs/<name>-<time>)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value, e.g. --set training.max_steps=20 (repeatable)",
    )
    est = sub.add_parser("estimate", help="parameters, peak memory, time and cost per Spaces tier (no weights)")
    est.add_argument("config", help="RunConfig YAML")
    est.add_argument("--json", action="store_true", help="print the estimate as JSON")
    est.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    est.add_argument("--rows", type=int, help="training rows (default: counted by the data doctor for local data)")
    est.add_argument("--tokens-per-row", type=float, help="mean tokens per row (default: measured for local data)")
    jobs = sub.add_parser("jobs-command", help="the HF Jobs command that trains this config off the Space")
    jobs.add_argument("config", help="RunConfig YAML")
    jobs.add_argument("--flavor", required=True, help="Jobs hardware, e.g. a10g-large (templates/hardware/)")
    jobs.add_argument("--push-to", required=True, help="NAMESPACE/NAME the Job pushes the adapter to")
    jobs.add_argument("--code-repo", help="git URL of this app the Job clones (default: this Space)")
    jobs.add_argument("--timeout", default="2h", help="Job time limit (default 2h)")
    jobs.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    jobs.add_argument("--submit", action="store_true", help="submit it now with HF_TOKEN (Jobs API)")
    sub.add_parser("doctor", help="check a dataset before training on it (python -m trainers doctor --help)")
    demo = sub.add_parser("demo-model", help="build the tiny offline demo model and tokenizer")
    demo.add_argument("dir", help="output folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["doctor"]:  # the data doctor has its own parser (trainers/doctor_cli.py)
        from trainers import doctor_cli

        return doctor_cli.main(argv)
    args = make_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from core import threads

    threads.configure()  # before torch loads libgomp: the wait policy is read once, at load
    if args.command == "demo-model":
        from trainers import demo_model

        print(demo_model.build(args.dir))
        return 0
    from core.errors import quiet_hub_retries

    quiet_hub_retries()
    if args.command == "estimate":
        return estimate_main(args)
    if args.command == "jobs-command":
        return jobs_main(args)
    if args.output_dir and os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        print(
            f"error: --output-dir {args.output_dir!r} is a file: name a run folder (new or existing).", file=sys.stderr
        )
        return 2
    if not args.output_dir:  # a config refused before any work leaves no empty run folder behind
        refusal = config_refusal(args.config, args.overrides)
        if refusal:
            print(f"error: {refusal}", file=sys.stderr)
            return 2
    from trainers import run

    return run.main(args.config, args.output_dir, args.overrides)


def config_refusal(path: str, overrides: list[str]) -> str | None:
    """The one sentence a bad config (file, syntax, keys, values, secrets) is refused with, or None."""
    from core.errors import ConfigError
    from trainers import config as config_mod

    try:
        config_mod.load(path, overrides)
    except ConfigError as exc:
        return str(exc)
    return None


def count_refusal(args) -> str | None:
    """--rows / --tokens-per-row: counts, never negative or zero."""
    if args.rows is not None and args.rows < 1:
        return f"--rows must be the number of training rows, 1 or more; got {args.rows}."
    tokens = args.tokens_per_row
    if tokens is not None and not (tokens > 0 and tokens != float("inf")):
        return f"--tokens-per-row must be the mean tokens per row, greater than 0; got {tokens:g}."
    return None


def estimate_main(args) -> int:
    import json

    from core.errors import user_message
    from trainers import config as config_mod

    refusal = count_refusal(args)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    try:
        from trainers.estimate import estimate, render

        result = estimate(config_mod.load(args.config, args.overrides), args.rows, args.tokens_per_row)
    except Exception as exc:  # noqa: BLE001 - every failure is one line
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


def jobs_main(args) -> int:
    from core.errors import user_message
    from trainers import hf_jobs

    try:
        spec = hf_jobs.job_spec(args.config, args.flavor, args.push_to, args.code_repo, args.overrides)
        print(hf_jobs.cli_command(spec, args.timeout))
        if args.submit:
            token = settings.local_token()
            if not token:
                raise ValueError("--submit needs HF_TOKEN set to a token allowed to run Jobs.")
            job = hf_jobs.submit(spec, token, args.timeout)
            print(f"submitted: {getattr(job, 'url', None) or getattr(job, 'id', job)}", file=sys.stderr)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - every failure is one line
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
