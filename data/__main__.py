"""`python -m data doctor SOURCE ...`: kept working for scripts and habits; the command itself is
`python -m trainers doctor` (trainers/doctor_cli.py), because it needs the method table and the model's
tokenizer, which live above data/.  This module imports nothing from above: it hands the process over.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.execv(sys.executable, [sys.executable, "-m", "trainers", *argv])  # replaces this process
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main())
