"""`python -m data doctor SOURCE ...`: the data doctor from the command line (see trainers/doctor_cli.py).

The command needs the method table and the model's tokenizer, which live above data/ in trainers/, so its code
lives there; this module only keeps `python -m data doctor` working (the one import from data/ upward).
"""

from __future__ import annotations

import sys

from trainers.doctor_cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
