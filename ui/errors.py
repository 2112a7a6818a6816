"""Every handler's failure reaches the page (or gradio_client) as one sentence, never a traceback."""

from __future__ import annotations

import gradio as gr

from core.errors import StudioError, user_message


def as_gr_error(exc: BaseException) -> gr.Error:
    return gr.Error(str(exc) if isinstance(exc, StudioError) else user_message(exc))
