"""Every handler's failure reaches the page (or gradio_client) as one sentence, never a traceback.

A StudioError is an expected refusal (bad input, a rule of the shared Space, ...): the console gets one line at
info level, not gradio's traceback.  Anything else is unexpected: the page still gets one sentence, and the console
keeps the traceback for whoever debugs it.

The engine's sentences name CLI flags and config keys (`--push-to`, `training.max_length`); `in_ui_words` turns
the ones the page shows as fields into the fields' names, so a sentence on the page says which field to change.
The CLI keeps its own wording."""

from __future__ import annotations

import logging
import re

import gradio as gr

from core.errors import StudioError, user_message
from trainers import methods

log = logging.getLogger("ui")


def _method_label(name: str) -> str:
    return next((label for label, n in methods.choices() if n == name), name)


# (pattern, the page's words): CLI flags and config keys of the fields the Train and Compare tabs show
UI_WORDS = (
    (r"--push-to\b", "'Push the adapter to'"),
    (r"--code-repo\b", "'Code repo the Job clones'"),
    (r"--flavor\b", "'Flavor'"),
    (r"\b(?:use|train it with) method: (\w+)", lambda m: f"pick {_method_label(m[1])} as 'Method'"),
    (r"\bmethod: (\w+)", lambda m: f"{_method_label(m[1])} as 'Method'"),
    (r"'?\bmodel\.name_or_path\b'?", "'Base model'"),
    (r"'?\bmodel\.quantization\b'?", "'Adapter' (QLoRA)"),
    (r"'?\bpeft\.type\b'?", "'Adapter'"),
    (r"'?\bpeft\.r\b'?", "'LoRA rank'"),
    (r"'?\btraining\.max_length\b'?", "'Max length'"),
    (r"'?\btraining\.learning_rate\b'?", "'Learning rate'"),
    (r"'?\btraining\.per_device_train_batch_size\b'?", "'Batch size per device'"),
    (r"'?\btraining\.num_train_epochs\b'?", "'Epochs'"),
    (r"'?\btraining\.max_steps\b'?", "'Max steps'"),
)
_COMPILED = tuple((re.compile(p), w) for p, w in UI_WORDS)


def in_ui_words(message: str) -> str:
    """An engine sentence with the CLI flags and config keys of the page's fields named as the page names them."""
    for pattern, words in _COMPILED:
        message = pattern.sub(words, message)
    return message


def ui_error(exc: BaseException) -> StudioError:
    """A StudioError whose sentence names the page's fields (for handlers of the Train and Compare tabs)."""
    return StudioError(in_ui_words(str(exc) if isinstance(exc, StudioError) else user_message(exc)))


def as_gr_error(exc: BaseException) -> gr.Error:
    if isinstance(exc, StudioError):
        log.info("refused: %s", exc)
        return gr.Error(str(exc), print_exception=False)
    return gr.Error(user_message(exc))
