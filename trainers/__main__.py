"""Fine-Tune Studio training engine.

    python -m trainers train CONFIG.yaml [--output-dir DIR] [--set key.path=value ...]
    python -m trainers estimate CONFIG.yaml [--json] [--set key.path=value ...] [--rows N] [--tokens-per-row N]
    python -m trainers jobs-command CONFIG.yaml --flavor a10g-large --push-to NAME/REPO [--submit]
    python -m trainers probe CONFIG.yaml [--steps N] [--json] [--keep DIR] [--set key.path=value ...]
    python -m trainers fit CONFIG.yaml (--target TIER|this | --memory-gb X [--cpu|--gpu]) [-o OUT.yaml]
    python -m trainers continue RUN_FOLDER (--steps N | --epochs N) [--output-dir DIR]
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
    probe = sub.add_parser("probe", help="train a few steps here: measured peak memory and tokens/s vs the estimate")
    probe.add_argument("config", help="RunConfig YAML")
    probe.add_argument("--steps", type=int, default=10, help="optimizer steps at most (stops once the peak is flat)")
    probe.add_argument("--json", action="store_true", help="print the report as JSON")
    probe.add_argument("--keep", metavar="DIR", help="keep the probe's run folder here (default: removed)")
    probe.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    fit = sub.add_parser("fit", help="change batch / accumulation / checkpointing so the run fits a memory target")
    fit.add_argument("config", help="RunConfig YAML")
    goal = fit.add_mutually_exclusive_group(required=True)
    goal.add_argument("--target", help="a Spaces tier / HF Jobs flavour (e.g. t4-small), or 'this' (this machine)")
    goal.add_argument("--memory-gb", type=float, help="a memory budget in GB")
    kind = fit.add_mutually_exclusive_group()
    kind.add_argument("--gpu", dest="gpu", action="store_true", default=None, help="--memory-gb is GPU memory")
    kind.add_argument("--cpu", dest="gpu", action="store_false", help="--memory-gb is CPU RAM")
    fit.add_argument("-o", "--output", help="write the fitted config here (default: print it)")
    fit.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    more = sub.add_parser("continue", help="train a finished run N more steps or epochs, as a new run")
    more.add_argument("run", help="the finished run's folder (or its id under STUDIO_HOME/runs)")
    amount = more.add_mutually_exclusive_group(required=True)
    amount.add_argument("--steps", type=int, help="more optimizer steps")
    amount.add_argument("--epochs", type=float, help="more epochs")
    more.add_argument("--output-dir", help="the new run's folder (default: STUDIO_HOME/runs/<run>-more-<time>)")
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
    if args.command == "probe":
        return probe_main(args)
    if args.command == "fit":
        return fit_main(args)
    if args.command == "continue":
        return continue_main(args)
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


def probe_main(args) -> int:
    import json

    from core.errors import user_message

    if args.steps < 1:
        print(f"error: --steps must be 1 or more; got {args.steps}.", file=sys.stderr)
        return 2
    refusal = config_refusal(args.config, args.overrides)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    import contextlib

    os.environ["STUDIO_QUIET"] = "1"  # the training's own lines stay off the report (they go to stderr)
    try:
        from trainers import probe

        with contextlib.redirect_stdout(sys.stderr):
            result = probe.probe(args.config, args.overrides, args.steps, args.keep)
    except Exception as exc:  # noqa: BLE001 - every failure is one line
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else probe.render(result))
    return 0


def fit_main(args) -> int:
    from core.errors import user_message
    from trainers import autofit
    from trainers import config as config_mod

    try:
        cfg = config_mod.load(args.config, args.overrides)
        target = autofit.target(args.target, args.memory_gb, args.gpu)
        result = autofit.plan(cfg, target)
        new, _ = autofit.fit(cfg, target)
    except Exception as exc:  # noqa: BLE001 - every failure is one line
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 2
    header = f"# Auto-fit for {target.name} (python -m trainers fit): see the autofit notes at the end.\n"
    for line in result["changes"]:
        print(f"- {line}", file=sys.stderr)
    if args.output:
        config_mod.dump(new, args.output, header)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        import yaml

        print(header + yaml.safe_dump(new.to_dict(), sort_keys=False, allow_unicode=True), end="")
    return 0 if result["fits"] else 1


def continue_main(args) -> int:
    from datetime import datetime
    from pathlib import Path

    from core.errors import user_message
    from trainers import config as config_mod
    from trainers import continuation, models

    parent = Path(args.run).expanduser()
    if not parent.is_dir() and (models.studio_home() / "runs" / args.run).is_dir():  # a run id
        parent = models.studio_home() / "runs" / args.run
    if not (parent / "config.yaml").is_file():
        print(f"error: {args.run!r} is not a run folder (it has no config.yaml): name a finished run's folder.", file=sys.stderr)  # fmt: skip
        return 2
    parent = parent.resolve()
    try:
        raw = continuation.continuation_config(parent, parent.name, args.steps, args.epochs)
        cfg = config_mod.from_dict(raw)
    except Exception as exc:  # noqa: BLE001 - every failure is one line
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 2
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.output_dir) if args.output_dir else models.studio_home() / "runs" / f"{parent.name}-more-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    config_mod.dump(cfg, out / "config.yaml", f"# Continues run {parent.name}\n")
    from trainers import run

    return run.main(str(out / "config.yaml"), str(out), [])


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
