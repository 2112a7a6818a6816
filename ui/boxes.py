"""Output boxes that appear only once they have content, and the config-problem line under a YAML editor.

start.click(hide, None, info).then(started, ..., info)   # the box goes away while the request runs
return shown(text)                                       # ... and comes back with its new content
pushed.success(show, None, result)                       # an API-shaped handler's box appears after it
"""

from __future__ import annotations

import gradio as gr

from ui.handlers import handler


def shown(value) -> dict:
    """An output box shown with its content."""
    return gr.update(visible=True, value=value)


def problem_update(sentence: str) -> dict:
    """The line under a YAML editor: the config's problem in one sentence, hidden when there is none."""
    return gr.update(visible=bool(sentence), value=f"**Config problem:** {sentence}" if sentence else "")


@handler(None)
def hide(user):
    """Empty and hide an output box (chained before the event that fills it)."""
    return gr.update(visible=False, value=None)


@handler(None)
def show(user):
    """Make an output appear once it has content (chained with .success after the event that fills it)."""
    return gr.update(visible=True)
