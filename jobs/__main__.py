"""Operate the run queue from a terminal or script.

python -m jobs submit CONFIG.yaml [--owner NAME] [--set key.path=value ...]   # prints the run id
python -m jobs worker [--until-empty] [--concurrency N] [--no-auto-resume]
python -m jobs list [--owner NAME] [--json]
python -m jobs status RUN_ID [--owner NAME] [--json]
python -m jobs cancel RUN_ID [--owner NAME]
python -m jobs resume RUN_ID [--owner NAME]
python -m jobs continue RUN_ID (--steps N | --epochs N) [--owner NAME]   # train a finished run further; new id
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys

from core.errors import StudioError, disk_full
from jobs import monitor
from jobs.api import JobQueue
from jobs.runner import Worker


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs", description="Fine-Tune Studio run queue.")
    sub = parser.add_subparsers(dest="command", required=True)
    submit = sub.add_parser("submit", help="queue a run; prints its id")
    submit.add_argument("config")
    submit.add_argument("--owner", default="local")
    submit.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    worker = sub.add_parser("worker", help="run queued jobs")
    worker.add_argument("--until-empty", action="store_true", help="exit when nothing is queued or running")
    worker.add_argument("--concurrency", type=int, default=1)
    worker.add_argument("--no-auto-resume", action="store_true", help="leave interrupted runs interrupted")
    worker.add_argument("--grace", type=float, default=60.0, help="seconds between SIGTERM and SIGKILL on cancel")
    lst = sub.add_parser("list", help="list runs")
    lst.add_argument("--owner", default="local")
    lst.add_argument("--json", action="store_true")
    for name in ("status", "cancel", "resume"):
        cmd = sub.add_parser(name, help=f"{name} a run")
        cmd.add_argument("run_id")
        cmd.add_argument("--owner", default="local")
        if name == "status":
            cmd.add_argument("--json", action="store_true")
    more = sub.add_parser("continue", help="queue a finished run's continuation for N more steps or epochs")
    more.add_argument("run_id")
    more.add_argument("--owner", default="local")
    amount = more.add_mutually_exclusive_group(required=True)
    amount.add_argument("--steps", type=int)
    amount.add_argument("--epochs", type=float)
    return parser


def _row(run) -> str:
    return f"{run.id}  {run.status:<11} {run.name}" + (f"  — {run.error}" if run.error else "")


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        queue = JobQueue()
        if args.command == "submit":
            print(queue.submit(args.config, owner=args.owner, overrides=args.overrides))
        elif args.command == "worker":
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
            Worker(concurrency=args.concurrency, auto_resume=not args.no_auto_resume, grace_s=args.grace).run(
                until_empty=args.until_empty
            )
        elif args.command == "list":
            runs = queue.list(args.owner)
            print(json.dumps([r.to_dict() for r in runs], indent=2) if args.json else "\n".join(map(_row, runs)))
        elif args.command == "status":
            run = queue.get(args.run_id, args.owner)
            data = {**run.to_dict(), "summary": queue.summary(args.run_id, args.owner)}
            print(json.dumps(data, indent=2, default=str) if args.json else _row(run))
        elif args.command == "cancel":
            print(queue.cancel(args.run_id, args.owner))
        elif args.command == "resume":
            print(queue.resume(args.run_id, args.owner))
        elif args.command == "continue":
            print(queue.continue_run(args.run_id, args.owner, steps=args.steps, epochs=args.epochs))
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (sqlite3.Error, OSError) as exc:  # the store or a run folder on a full or broken disk
        print(f"error: {store_error(exc)}", file=sys.stderr)
        return 2
    return 0


def store_error(exc: BaseException) -> str:
    """A store or file error as one sentence (a full disk names the way out)."""
    if disk_full(exc) or "disk i/o" in str(exc).lower():
        return monitor.DISK_FULL
    return f"The run store under STUDIO_HOME could not be read or written ({exc})."


if __name__ == "__main__":
    sys.exit(main())
