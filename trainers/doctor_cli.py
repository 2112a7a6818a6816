"""The data doctor from the command line (`python -m data doctor`, `python -m trainers doctor`).

    python -m data doctor SOURCE [--method METHOD] [--model PATH_OR_ID] [--split S] [--subset NAME]
                          [--eval-source SRC] [--eval-split S] [--max-length N] [--map std=column ...] [--json]

Prints a report: rows, detected format and its evidence, invalid rows with their index and reason,
duplicates, token-length percentiles under the model's chat template, rows over max_length, and
train/held-out leakage.  Exit code 0 when the data is trainable, 1 when it is not.

It lives in trainers/ because it needs what lives there: the method table (which kinds of data a method trains
on; --method choices) and the model's tokenizer; data/ itself knows data kinds, not methods.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from core.errors import ConfigError, StudioError, quiet_hub_retries, user_message
from data import doctor
from data.splits import load_for_run
from trainers import methods
from trainers.config import DataSection, ModelSection, check_model_path
from trainers.models import resolve_and_load_tokenizer


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data", description="Fine-Tune Studio data tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    doc = sub.add_parser("doctor", help="check a dataset before training on it")
    doc.add_argument("source", help="Hub dataset id or local file (json, jsonl, csv, parquet, txt)")
    doc.add_argument("--method", choices=methods.names(), default=methods.names()[0])
    doc.add_argument("--model", help="model id or path whose chat template measures token lengths")
    doc.add_argument("--split", default="train")
    doc.add_argument("--subset", help="Hub dataset config / subset")
    doc.add_argument("--revision")
    doc.add_argument("--eval-source", help="held-out file or Hub id, checked for leakage")
    doc.add_argument("--eval-split")
    doc.add_argument("--max-length", type=int, default=1024)
    doc.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="STD=COLUMN",
        help="column mapping, e.g. --map prompt=question --map completion=answer",
    )
    doc.add_argument("--format", default="auto", help="force a format instead of detecting it")
    doc.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _fail(args, message: str) -> int:
    if args.json:
        print(json.dumps({"trainable": False, "error": message}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return 1


def argument_refusal(args) -> str | None:
    """One sentence for a bad argument: source, --max-length, --map, split names."""
    if not args.source.strip():
        return "The data source is empty: give a Hub dataset id or a file path."
    if args.max_length < 1:
        return f"--max-length must be a positive number of tokens, e.g. 1024; got {args.max_length}."
    for item in args.map:
        std, _, column = item.partition("=")
        if not std.strip() or not column.strip():
            return f"--map takes STD=COLUMN, e.g. --map prompt=question; got {item!r}."
    if not args.split.strip() or (args.eval_split is not None and not args.eval_split.strip()):
        return "--split and --eval-split must name a split, e.g. train or test."
    return None


def doctor_main(args) -> int:
    refusal = argument_refusal(args)
    if refusal:
        return _fail(args, refusal)
    columns = dict(item.split("=", 1) for item in args.map)
    section = DataSection(
        source=args.source,
        split=args.split,
        subset=args.subset,
        revision=args.revision,
        eval_source=args.eval_source,
        eval_split=args.eval_split,
        eval_size=0,
        columns=columns,
        format=args.format,
    )
    try:
        tokenizer = None
        if args.model:
            try:
                check_model_path(args.model)
            except ConfigError as exc:
                raise ConfigError(str(exc).replace("'model.name_or_path'", "--model")) from None

            tokenizer, _ = resolve_and_load_tokenizer(ModelSection(name_or_path=args.model))
        *_, reports = load_for_run(section, methods.get(args.method).task, tokenizer, args.max_length)
    except (StudioError, OSError, ValueError) as exc:
        return _fail(args, user_message(exc))
    except Exception as exc:  # noqa: BLE001 - every failure is one line, never a traceback
        return _fail(args, user_message(exc))
    trainable = not any(r.errors for r in reports)
    if args.json:
        print(json.dumps({"trainable": trainable, "reports": [r.to_dict() for r in reports]}, indent=2))
    else:
        print(doctor.render_text(reports))
    return 0 if trainable else 1


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")  # no forking here: let the tokenizer use every core
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # our one-line error replaces its log lines
    quiet_hub_retries()
    return doctor_main(args)


if __name__ == "__main__":
    sys.exit(main())
