"""The training engine: `python -m trainers train CONFIG.yaml` (see __main__.py)."""

import logging

# Harmless import-time noise (STACK_NOTES): bitsandbytes' optional CPU kernel download.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
