"""The data doctor from the command line (`python -m data doctor`, `python -m trainers doctor`).

    python -m data doctor SOURCE [SOURCE ...] [--method METHOD] [--model PATH_OR_ID] [--split S] [--subset NAME]
                          [--eval-source SRC] [--eval-split S] [--max-length N] [--map std=column ...] [--json]

For each file: the methods that can train it and exactly how many rows each keeps (with --model, rows are
tokenized, masked and truncated as that method's trainer will, at --max-length), then the full report for
--method (or the first method that trains it): rows, detected format and its evidence, invalid rows with their
index and reason, duplicates, token-length percentiles under the model's chat template, rows over max_length,
prompts shortened, rows dropped for keeping no reply token, and train/held-out leakage.  Exit code 0 when every
file is trainable (by --method, or by some method), 1 when one is not.

It lives in trainers/ because it needs what lives there: the method table (which kinds of data a method trains
on; --method choices) and the model's tokenizer; data/ itself knows data kinds, not methods.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from core.errors import ConfigError, StudioError, quiet_hub_retries, user_message
from data import doctor, formats, tokens
from data.splits import load_for_run
from trainers import methods
from trainers.config import TRAINING_DEFAULTS, DataSection, ModelSection, check_model_path
from trainers.models import resolve_and_load_tokenizer


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data", description="Fine-Tune Studio data tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    doc = sub.add_parser("doctor", help="check a dataset before training on it")
    doc.add_argument("source", nargs="+", help="Hub dataset ids or local files (json, jsonl, csv, parquet, txt)")
    doc.add_argument("--method", choices=methods.names(), help="the method to report on (default: every method)")
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
    doc.add_argument(
        "--show", type=int, default=0, metavar="N", help="with --model: print N rows with the trained tokens marked"
    )
    return parser


def _fail(args, message: str) -> int:
    if args.json:
        print(json.dumps({"trainable": False, "error": message}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return 1


def argument_refusal(args) -> str | None:
    """One sentence for a bad argument: source, --max-length, --map, split names."""
    if not all(source.strip() for source in args.source):
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


def _plan(method, tokenizer, max_length: int):
    """The token plan of `method`'s trainer at its default settings and --max-length."""
    training = {**TRAINING_DEFAULTS["common"], **TRAINING_DEFAULTS[method.name], "max_length": max_length}
    return method.build_module().token_plan(tokenizer, training, method.truncation_side(training))


def _ways(method) -> list[tuple[str, str | None]]:
    """(label, data.keep) ways a method can train data: as it is, and SFT-like methods on chosen replies."""
    ways = [(method.label, None)]
    if formats.INSTRUCTION in method.data_kinds:
        ways.append((f"{method.label} with data.keep: chosen", formats.KEEP_CHOSEN))
    return ways


def _keep_label(label: str, reports) -> str:
    """Feedback data's good replies are 'desirable' (KTO's word), a pair's are 'chosen'."""
    fmt = formats.BY_NAME.get(reports[0].format or "")
    return label.replace("keep: chosen", "keep: desirable") if fmt and fmt.kind == formats.UNPAIRED else label


def examine_file(args, source: str, tokenizer) -> dict:
    """Every way every method can train `source`: {label: (method, keep, reports, error)} in table order."""
    columns = dict(item.split("=", 1) for item in args.map)
    out = {}
    for method in methods.METHODS.values():
        for label, keep in _ways(method):
            section = DataSection(
                source=source,
                split=args.split,
                subset=args.subset,
                revision=args.revision,
                eval_source=args.eval_source,
                eval_split=args.eval_split,
                eval_size=0,
                columns=columns,
                format=args.format,
                keep=keep,
            )
            plan = _plan(method, tokenizer, args.max_length) if tokenizer is not None else None
            train, _, form, _, reports = load_for_run(section, method.task, tokenizer, args.max_length, plan=plan)
            if keep and reports[0].format and formats.BY_NAME[reports[0].format].kind == formats.INSTRUCTION:
                continue  # instruction data needs no data.keep
            out[_keep_label(label, reports)] = (method, keep, reports, (train, form, plan))
    return out


def _summary(label: str, reports) -> str:
    first = reports[0]
    if any(r.errors for r in reports):
        return f"{label}: no — {next(r.errors[0].message for r in reports if r.errors)}"
    return f"{label} trains {first.rows_kept} of {first.rows} rows"


def _chosen(args, ways: dict):
    """The way whose full report is shown: --method's, else the first that trains the file, else the first."""
    candidates = [w for w in ways.items() if not args.method or w[1][0].name == args.method]
    good = [w for w in candidates if not any(r.errors for r in w[1][2])]
    return sorted(good, key=lambda w: w[1][1] is not None)[0] if good else candidates[0]


def doctor_main(args) -> int:
    refusal = argument_refusal(args)
    if refusal:
        return _fail(args, refusal)
    try:
        tokenizer = None
        if args.model:
            try:
                check_model_path(args.model)
            except ConfigError as exc:
                raise ConfigError(str(exc).replace("'model.name_or_path'", "--model")) from None

            tokenizer, _ = resolve_and_load_tokenizer(ModelSection(name_or_path=args.model))
        files = [(source, examine_file(args, source, tokenizer)) for source in args.source]
    except (StudioError, OSError, ValueError) as exc:
        return _fail(args, user_message(exc))
    except Exception as exc:  # noqa: BLE001 - every failure is one line, never a traceback
        return _fail(args, user_message(exc))
    results, texts = [], []
    for source, ways in files:
        label, (method, keep, reports, (train, form, plan)) = _chosen(args, ways)
        trainable = not any(r.errors for r in reports)
        results.append(
            {
                "source": source,
                "trainable": trainable,
                "method": method.name,
                "keep": keep,
                "methods": {
                    name: {
                        "method": m.name,
                        "keep": k,
                        "trainable": not any(r.errors for r in reps),
                        "rows": reps[0].rows,
                        "rows_kept": reps[0].rows_kept,
                        "held_out_rows_kept": reps[1].rows_kept if len(reps) > 1 else None,
                        "error": next((r.errors[0].message for r in reps if r.errors), None),
                    }
                    for name, (m, k, reps, _) in ways.items()
                },
                "reports": [r.to_dict() for r in reports],
            }
        )
        errors = {m["error"] for m in results[-1]["methods"].values()}
        if len(errors) == 1 and None not in errors:  # the file itself is wrong, whatever the method: say it once
            lines = [f"#### {source}", f"methods: none — {errors.pop()}"]
        else:
            lines = [f"#### {source}", "methods:", *(f"  {_summary(n, w[2])}" for n, w in ways.items())]
        lines.append(
            f"report for {label}" + ("" if tokenizer else " (no --model: token counts and truncation unchecked)")
        )
        if args.show and tokenizer is not None and train is not None:
            lines_shown = [
                f"--- row {i}: {label} trains the text between ⟦ ⟧ (after truncation to {plan.max_length} tokens)\n"
                + tokens.show_spans(tokens.loss_spans(tokenizer, train[i], form, plan))
                for i in range(min(args.show, len(train)))
            ]
            results[-1]["shown"] = lines_shown
            lines += lines_shown
        texts.append(
            "\n".join(lines)
            + "\n"
            + doctor.render_text(reports).replace("verdict: trainable", f"verdict: trainable ({label})")
        )
    trainable = all(r["trainable"] for r in results)
    if args.json:
        print(json.dumps({"trainable": trainable, "files": results, "reports": results[0]["reports"]}, indent=2))
    else:
        print("\n\n".join(texts))
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
