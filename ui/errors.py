"""Every handler's failure reaches the page (or gradio_client) as one sentence, never a traceback.

A StudioError is an expected refusal (bad input, a rule of the shared Space, ...): the console gets one line at
info level, not gradio's traceback.  Anything else is unexpected: the page still gets one sentence, and the console
keeps the traceback for whoever debugs it."""

from __future__ import annotations

import logging

import gradio as gr

from core.errors import StudioError, user_message

log = logging.getLogger("ui")


def as_gr_error(exc: BaseException) -> gr.Error:
    if isinstance(exc, StudioError):
        log.info("refused: %s", exc)
        return gr.Error(str(exc), print_exception=False)
    return gr.Error(user_message(exc))
