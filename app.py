"""Fine-Tune Studio — Gradio entry point (Hugging Face Space `app_file`).

    python app.py

A minimal page until the UI issue lands: it lists the shipped recipes and the command that runs
each.  Training never runs inside a request; runs are child processes (`python -m trainers train`).
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

RECIPES = Path(__file__).parent / "templates" / "recipes"


def recipe_rows() -> list[list[str]]:
    rows = []
    for path in sorted(RECIPES.glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
        rows.append([path.stem, first, f"python -m trainers train templates/recipes/{path.name}"])
    return rows


def build() -> gr.Blocks:
    with gr.Blocks(title="Fine-Tune Studio") as demo:
        gr.Markdown(
            "# Fine-Tune Studio\nSFT and DPO with LoRA, QLoRA, DoRA or full fine-tuning (TRL + PEFT). "
            "The training engine is ready from the command line; the browser workflow is coming."
        )
        gr.Dataframe(value=recipe_rows(), headers=["recipe", "what it does", "command"], interactive=False, wrap=True)
    return demo


if __name__ == "__main__":
    build().launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
