"""Data tab: pick a Hub dataset or upload a file, see rows as the model will see them, read the doctor."""

from __future__ import annotations

import gradio as gr

from core.errors import StudioError, user_message
from data import doctor
from data.splits import load_for_run
from jobs import access
from trainers import methods
from trainers.config import DataSection, ModelSection
from trainers.models import resolve_and_load_tokenizer
from ui import api_names
from ui.context import DEMO_SFT, AppContext
from ui.handlers import handler


def parse_mapping(text: str) -> dict[str, str]:
    """'prompt=question, completion=answer' -> {prompt: question, completion: answer}."""
    mapping = {}
    for part in (text or "").replace("\n", ",").split(","):
        if part.strip():
            if "=" not in part:
                raise StudioError(f"Column mapping {part.strip()!r} should look like prompt=question.")
            std, col = (x.strip() for x in part.split("=", 1))
            mapping[std] = col
    return mapping


def check_data(
    source: str,
    upload: str | None,
    subset: str,
    split: str,
    method: str,
    model: str,
    mapping: str,
    max_length: float = 1024,
    *,
    ctx: AppContext | None = None,
    owner: str | None = "local",
) -> tuple[str, str, str]:
    """(detected format, preview of the first rows under the chat template, doctor report).  An upload is first
    copied into the owner's uploads folder; on a shared Space every path (source, model) follows jobs.access."""
    saved = None
    if access.enforced() and ctx is None:
        raise StudioError(access.NO_OWNER)
    if upload and ctx is not None:
        saved = access.keep_upload(ctx.home, owner, upload)
    source = str(saved or upload or (source or "").strip())
    if not source:
        raise StudioError("Enter a Hub dataset id or upload a file first.")
    if ctx is not None:
        access.check_path(source, owner, ctx.home, ctx.queue.store)
        access.check_path(model, owner, ctx.home, ctx.queue.store)
    section = DataSection(
        source=source, subset=subset or None, split=split or "train", eval_size=0, columns=parse_mapping(mapping)
    )
    try:
        tokenizer, _ = resolve_and_load_tokenizer(ModelSection(name_or_path=model or "demo-tiny"))
        train, _, _, info, reports = load_for_run(section, methods.get(method).task, tokenizer, int(max_length))
    except StudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - Hub and file errors become one sentence
        raise StudioError(user_message(exc)) from exc
    report = doctor.render_text(reports)
    if train is None:
        return "not trainable", "", report
    preview = "\n\n".join(
        f"--- row {i} ---\n{doctor.render_row(tokenizer, train[i])}" for i in range(min(3, len(train)))
    )
    kept = f"  \nSaved to your uploads as `{saved}` (use this path as the data source)." if saved else ""
    return f"{info['format']} — {info['evidence']}{kept}", preview, report


def build(ctx: AppContext, demo_default: bool):
    with gr.Tab("Data"):
        with gr.Row():
            source = gr.Textbox(
                str(DEMO_SFT) if demo_default else "trl-lib/Capybara", label="Hub dataset id or local path", scale=3
            )
            subset = gr.Textbox(label="Subset (config)", scale=1)
            split = gr.Textbox("train", label="Split", scale=1)
        with gr.Row():
            upload = gr.File(label="…or upload a file (json, jsonl, csv, parquet, txt)", type="filepath")
            method = gr.Radio(methods.choices(), value=methods.names()[0], label="Method")
            model = gr.Textbox(ctx.default_model, label="Model whose chat template applies")
        mapping = gr.Textbox(label="Column mapping when detection is unsure (e.g. prompt=question, completion=answer)")
        check = gr.Button("Check data", variant="primary")
        fmt = gr.Markdown()
        preview = gr.Code(label="First rows as the model sees them", language=None, lines=12)
        report = gr.Code(label="Data doctor", language=None, lines=12)

        @handler("check data")
        def run_check(user, source, upload, subset, split, method, model, mapping):
            return check_data(source, upload, subset, split, method, model, mapping, ctx=ctx, owner=user.owner)

        check.click(
            run_check,
            [source, upload, subset, split, method, model, mapping],
            [fmt, preview, report],
            api_name=api_names.CHECK_DATA,
        )
    return {"source": source, "check": check, "report": report}
