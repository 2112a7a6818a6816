"""`studio`: one command for everything the `python -m ...` mains do (they keep working, unchanged).

    studio app                       start the app (app.py)
    studio train CONFIG.yaml         python -m trainers train CONFIG.yaml
    studio doctor SOURCE --method M  python -m trainers doctor ...
    studio jobs list                 python -m jobs list

Everything after the command goes to that main as it is, so `studio train --help` is the trainer's own help.
Installed as a console script by `pip install -e .` (pyproject.toml); `./studio train ...` runs it too.
"""

from __future__ import annotations

import importlib
import sys

# command: (module with main(argv), argv prefix, help); a None prefix passes the arguments as they are
COMMANDS: dict[str, tuple[str, tuple[str, ...] | None, str]] = {
    "app": ("app", None, "start the app on http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT)"),
    "train": ("trainers.__main__", ("train",), "train from a RunConfig YAML (python -m trainers train)"),
    "estimate": ("trainers.__main__", ("estimate",), "memory, time and cost of a config (python -m trainers estimate)"),
    "hf-jobs": (
        "trainers.__main__",
        ("jobs-command",),
        "the HF Jobs command for a config (python -m trainers jobs-command)",
    ),
    "demo-model": (
        "trainers.__main__",
        ("demo-model",),
        "build the tiny offline demo model (python -m trainers demo-model)",
    ),
    "doctor": ("trainers.__main__", ("doctor",), "check a dataset before training on it (python -m trainers doctor)"),
    "compare": ("evaluation.__main__", ("compare",), "compare methods on one base (python -m evaluation compare)"),
    "report": ("evaluation.__main__", ("report",), "rebuild a comparison's report (python -m evaluation report)"),
    "eval": ("evaluation.__main__", ("eval",), "evaluate one run or model (python -m evaluation eval)"),
    "push": ("hub.__main__", ("push",), "push a finished run to the Hub (python -m hub push)"),
    "jobs": ("jobs.__main__", None, "the run queue: submit, worker, list, status, cancel, resume (python -m jobs)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: studio COMMAND [ARGUMENTS...]   (studio COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"studio: unknown command {command!r}; choose one of {', '.join(COMMANDS)}.", file=sys.stderr)
        return 2
    module, prefix, _ = COMMANDS[command]
    result = importlib.import_module(module).main([*(prefix or ()), *rest])
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
