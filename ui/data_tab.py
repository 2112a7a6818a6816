"""Data tab: pick a Hub dataset or upload a file, see what the model will learn from each row, read the doctor, and
hand the checked data to the Train tab.

The work is done below the UI: data/splits.load_for_run (the doctor, with the method's own token plan),
data/doctor.converted_row + measured_row (one row as it trains) and data/tokens.token_spans (its trained, masked
and cut tokens).  This file draws them and keeps the last check in a per-session gr.State.
"""

from __future__ import annotations

import re

import gradio as gr
import pandas as pd

from core.errors import StudioError, user_message
from data import doctor, formats, sources, tokens
from data.splits import load_for_run
from jobs import access
from trainers import methods
from trainers.config import TRAINING_DEFAULTS, DataSection, ModelSection
from trainers.models import resolve_and_load_tokenizer
from ui import api_names
from ui.context import DEMO_SFT, AppContext
from ui.handlers import handler

EXAMPLES = 4  # example row numbers per finding in the findings table
FIRST_ROWS = 3  # rows in the plain-text preview
COLORS = {tokens.TRAINED: "#16a34a", tokens.CUT: "#dc2626"}  # masked tokens stay plain text
FINDING_HEADERS = ["level", "finding", "rows", *(f"row {i + 1}" for i in range(EXAMPLES)), "what the doctor says"]
HIST_COLORS = {"kept": "#2563eb", "cut past max length": "#dc2626"}


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


_DICT = re.compile(r"\{([^{}]*:[^{}]*)\}")
_FIELDS = (  # the CLI / YAML names in the data layer's sentences -> this tab's fields
    ("training.max_length", "Max length"),
    ("data.columns", "Column mapping"),
    ("data.subset", "Subset"),
    ("data.split", "Split"),
    ("data.source", "the dataset field"),
)


def ui_words(text: str) -> str:
    """A data-layer sentence in this tab's words: `{prompt: question}` becomes `prompt=question`, and YAML keys
    become the names of the fields above ("map yours with data.columns" -> "map yours with Column mapping")."""

    def pairs(found: re.Match) -> str:
        return ", ".join(p.strip().replace(": ", "=").replace(":", "=") for p in found.group(1).split(","))

    text = _DICT.sub(pairs, text)
    for key, field in _FIELDS:
        text = text.replace(key, field)
    return text


def token_plan(method: methods.Method, tokenizer, max_length: int | None) -> tokens.Plan:
    """How `method`'s trainer tokenizes, masks and truncates at its default settings and `max_length`."""
    training = {**TRAINING_DEFAULTS["common"], **TRAINING_DEFAULTS[method.name]}
    if max_length:
        training["max_length"] = int(max_length)
    return method.build_module().token_plan(tokenizer, training, method.truncation_side(training))


def _tokenizer(model: str):
    tokenizer, _ = resolve_and_load_tokenizer(ModelSection(name_or_path=model or "demo-tiny"))
    return tokenizer


def _section(state: dict) -> DataSection:
    return DataSection(
        source=state["source"], subset=state["subset"], split=state["split"], eval_size=0, columns=state["columns"]
    )


def _row_of(finding_row) -> int | None:
    if isinstance(finding_row, dict):
        finding_row = finding_row.get("row", finding_row.get("train_row"))
    return int(finding_row) if isinstance(finding_row, int) else None


def findings_table(reports: list[doctor.Report]) -> list[list]:
    """One line per finding: level, code, how many rows, up to EXAMPLES example row numbers, the message."""
    lines = []
    for report in reports[:1]:
        for f in report.findings:
            rows = [r for r in (_row_of(x) for x in f.rows) if r is not None][:EXAMPLES]
            examples = [*rows, *[""] * (EXAMPLES - len(rows))]
            lines.append([f.level, f.code.replace("_", " "), f.count or "", *examples, ui_words(f.message)])
    return lines


def histogram_frame(hist: dict | None) -> pd.DataFrame:
    """The doctor's token histogram as bars: one per bin, coloured by whether truncation cuts its rows."""
    frame = {"tokens": [], "rows": [], "where": []}
    if hist:
        edges, cut = hist["edges"], hist["max_length"]
        for lo, hi, count in zip(edges, edges[1:], hist["counts"], strict=False):
            frame["tokens"].append(f"{lo}–{hi - 1}")
            frame["rows"].append(count)
            frame["where"].append("cut past max length" if cut and lo > cut else "kept")
        if cut and "cut past max length" not in frame["where"]:  # nothing is cut: still mark where the cut is
            frame["tokens"].append(f"> {cut}")
            frame["rows"].append(0)
            frame["where"].append("cut past max length")
    return pd.DataFrame(frame)


def _histogram_title(hist: dict | None) -> str:
    if not hist:
        return "Tokens per row"
    if not hist["max_length"]:
        return "Tokens per row (this method cuts no row)"
    return f"Tokens per row: {hist['over']} longer than max length {hist['max_length']} (red: cut)"


def inspect_data(
    source: str,
    upload: str | None,
    subset: str,
    split: str,
    method: str,
    model: str,
    mapping: str,
    max_length: float | None = 1024,
    *,
    ctx: AppContext | None = None,
    owner: str | None = "local",
    progress=None,
) -> dict:
    """Check the data as `method` will train it.  Returns the tab's state: what was checked (source, subset, split,
    columns, method, model, max_length), the doctor's verdict, format and form, text report, findings table,
    histogram, the plain preview of the first rows and `carry` (what Train uses; None unless trainable).  An upload
    is first copied into the owner's uploads folder; on a shared Space every path (source, model) follows
    jobs.access."""
    step = progress or (lambda *a, **k: None)
    saved = None
    if access.enforced() and ctx is None:
        raise StudioError(access.NO_OWNER)
    if upload and ctx is not None:
        saved = access.keep_upload(ctx.home, owner, upload)
    source = str(saved or upload or (source or "").strip())
    if not source:
        raise StudioError("Enter a Hub dataset id or a local path, or upload a file, first.")
    if ctx is not None:
        access.check_path(source, owner, ctx.home, ctx.queue.store)
        access.check_path(model, owner, ctx.home, ctx.queue.store)
    chosen = methods.get(method)
    state = {
        "source": source,
        "saved": str(saved) if saved else None,
        "subset": (subset or "").strip() or None,
        "split": (split or "").strip() or "train",
        "columns": parse_mapping(mapping),
        "method": chosen.name,
        "model": model or "demo-tiny",
        "max_length": int(max_length) if max_length else None,
    }
    online = ctx.online if ctx is not None else None
    try:
        step(0.05, desc="Loading the model's tokenizer")
        tokenizer = _tokenizer(state["model"])
        plan = token_plan(chosen, tokenizer, state["max_length"])
        step(0.2, desc="Reading and checking every row")
        train, _, form, info, reports = load_for_run(_section(state), chosen.task, tokenizer, plan=plan, online=online)
    except StudioError as exc:
        raise StudioError(ui_words(str(exc))) from exc
    except Exception as exc:  # noqa: BLE001 - Hub and file errors become one sentence
        raise StudioError(ui_words(user_message(exc))) from exc
    report = reports[0]
    trainable = train is not None
    fmt = formats.BY_NAME.get(report.format or "")
    state.update(
        trainable=trainable,
        format=report.format,
        report=ui_words(doctor.render_text(reports)),
        findings=findings_table(reports),
        histogram=report.histogram,
        error=ui_words(report.errors[0].message) if report.errors else None,
        rows=report.rows,
        kept=report.rows_kept,
    )
    head = f"{info['format']} — {info['evidence']}" if info.get("format") else "format not recognised"
    kept = f"  \nSaved to your uploads as `{saved}` (use this path as the data source)." if saved else ""
    state["summary"] = head + kept
    state["carry"] = (
        {
            "source": source,
            "subset": state["subset"],
            "split": state["split"],
            "columns": state["columns"],
            "kind": fmt.kind,
            "method": chosen.name,
        }
        if trainable
        else None
    )
    step(0.9, desc="Marking the trained tokens")
    state["preview"] = (
        "\n\n".join(
            f"--- row {i}: the trained tokens are between ⟦ ⟧\n"
            + tokens.show_spans(tokens.loss_spans(tokenizer, train[i], form, plan))
            for i in range(min(FIRST_ROWS, len(train)))
        )
        if trainable
        else ""
    )
    return state


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
    """(detected format, the first rows with their trained tokens between ⟦ ⟧, doctor report)."""
    state = inspect_data(source, upload, subset, split, method, model, mapping, max_length, ctx=ctx, owner=owner)
    if not state["trainable"]:
        return "not trainable", "", state["report"]
    return state["summary"], state["preview"], state["report"]


def _converted(state: dict, method: methods.Method, row: int, online: bool | None = None):
    raw = sources.load(state["source"], state["split"], state["subset"], online=online)
    section = _section(state)
    return doctor.converted_row(raw, row, state["format"], method.task, section)


def _what_trains(method: methods.Method, form: str, plan: tokens.Plan) -> str:
    if form == "prompts":
        return (
            f"{method.label} trains on the replies the model generates for this prompt while training (scored by "
            "the rewards); the prompt below is never trained on."
        )
    if method.output == "reward_model":
        return (
            "The reward model reads each whole sequence and learns to score the chosen reply above the rejected "
            "one; highlighted: the reply tokens that differ between them."
        )
    if form == "preference":
        return f"{method.label} learns from the chosen and the rejected reply (highlighted); the prompt is context."
    mode = plan.loss(form)
    if mode == tokens.FULL_SEQUENCE:
        return f"{method.label} trains on every token (highlighted)."
    if mode == tokens.ASSISTANT_ONLY:
        return f"{method.label} trains on the assistant replies only (highlighted); the other turns are context."
    return f"{method.label} trains on the reply after the prompt (highlighted); the prompt is context."


def row_view(state: dict, row: float, *, ctx: AppContext | None = None, owner: str | None = "local"):
    """(a sentence on what row `row` trains on, its (text, trained / cut / None) spans for gr.HighlightedText)."""
    if not state or not state.get("format"):
        raise StudioError("Check data first: the row view shows a dataset the doctor could read.")
    if ctx is not None:
        access.check_path(state["source"], owner, ctx.home, ctx.queue.store)
    index = int(row or 0)
    method = methods.get(state["method"])
    tokenizer = _tokenizer(state["model"])
    plan = token_plan(method, tokenizer, state["max_length"])
    converted, error = _converted(state, method, index, ctx.online if ctx is not None else None)
    if error:
        return f"**Row {index} is invalid** and cannot train: it {ui_words(error)}.", []
    form = doctor.standard_form(list(converted))
    converted, measure = doctor.measured_row(tokenizer, converted, form, plan)
    lines = [f"**Row {index}.** " + _what_trains(method, form, plan)]
    if measure.loss == 0 and form != "prompts":
        lines.append(
            f"**This row trains on nothing: 0 of its {measure.tokens} tokens are trained**, so the doctor drops it "
            "(its prompt fills Max length, or it has no reply)."
        )
    elif form == "preference":
        lines.append(f"{measure.loss} trained tokens in the shorter reply; the longer sequence has {measure.tokens}.")
    elif measure.loss > 0 and form != "prompts":
        lines.append(f"{measure.loss} trained tokens of {measure.tokens}.")
    if plan.max_length and measure.tokens > plan.max_length and plan.keep:
        lines.append(
            f"Truncation keeps the {'first' if plan.keep == 'start' else 'last'} {plan.max_length} tokens "
            f"(Max length): the {measure.tokens - plan.max_length} tokens in red are cut."
        )
    if measure.shortened:
        lines.append("Its prompt was shortened from the start (marked …) so that the reply fits.")
    if form == "preference":
        spans = [("chosen:\n", None), *tokens.token_spans(tokenizer, converted, form, plan, "chosen")]
        spans += [("\n\nrejected:\n", None), *tokens.token_spans(tokenizer, converted, form, plan, "rejected")]
    else:
        spans = tokens.token_spans(tokenizer, converted, form, plan)
    return "  \n".join(lines), [(text, None if label == tokens.MASKED else label) for text, label in spans]


def carry(state: dict | None) -> dict:
    """What the Train tab uses: the checked data, only when the doctor called it trainable."""
    if not state or not state.get("carry"):
        raise StudioError("Check data the doctor calls trainable first; then use it for training.")
    return dict(state["carry"])


def _example_row(state: dict, evt: gr.SelectData) -> int | None:
    """The row number a click on the findings table names: the clicked example, else the finding's first one."""
    row, column = (evt.index or [None, None])[:2]
    first = FINDING_HEADERS.index("row 1")
    if column is not None and first <= column < first + EXAMPLES and str(evt.value).strip().isdigit():
        return int(evt.value)
    lines = state.get("findings") or []
    if row is None or not 0 <= row < len(lines):
        return None
    found = [x for x in lines[row][first : first + EXAMPLES] if str(x).strip().isdigit()]
    return int(found[0]) if found else None


def build(ctx: AppContext, demo_default: bool, checked_data: gr.State | None = None):
    checked_data = checked_data if checked_data is not None else gr.State(None)
    with gr.Tab("Data"):
        last = gr.State(None)
        with gr.Row():
            source = gr.Textbox(
                str(DEMO_SFT) if demo_default else "trl-lib/Capybara", label="Hub dataset id or local path", scale=3
            )
            subset = gr.Textbox(label="Subset (config)", scale=1)
            split = gr.Textbox("train", label="Split", scale=1)
        with gr.Row():
            upload = gr.File(
                label="…or upload a file (json, jsonl, csv, parquet, txt)", type="filepath", elem_id="data-upload"
            )
            with gr.Column():
                method = gr.Radio(methods.choices(), value=methods.names()[0], label="Method")
                with gr.Row():
                    model = gr.Textbox(ctx.default_model, label="Model whose chat template applies", scale=2)
                    max_length = gr.Number(1024, label="Max length", precision=0, minimum=1, scale=1)
        mapping = gr.Textbox(label="Column mapping when detection is unsure (e.g. prompt=question, completion=answer)")
        check = gr.Button("Check data", variant="primary")
        fmt = gr.Markdown()
        with gr.Column(visible=False) as results:
            verdict = gr.Markdown()
            with gr.Row():
                use = gr.Button(
                    "Use this data for training",
                    variant="primary",
                    visible=False,
                    scale=0,
                    min_width=260,
                    elem_id="data-use",
                )
                used = gr.Markdown()
            gr.Markdown("### What the model learns from each row")
            with gr.Row():
                row = gr.Number(0, label="Row", precision=0, minimum=0, scale=0, min_width=120)
                show = gr.Button("Show row", scale=0)
            what = gr.Markdown()
            mask = gr.HighlightedText(
                label="Trained tokens (green), context (plain), cut by truncation (red)",
                color_map=COLORS,
                show_legend=True,
                show_inline_category=False,
                combine_adjacent=True,
                elem_id="data-mask",
            )
            hist = gr.BarPlot(
                x="tokens",
                y="rows",
                color="where",
                color_map=HIST_COLORS,
                label="Tokens per row",
                x_label_angle=-45,
                elem_id="data-hist",
            )
            findings = gr.Dataframe(
                headers=FINDING_HEADERS,
                label="Findings (click a row number to see that row)",
                interactive=False,
                wrap=True,
                max_height=360,
                column_widths=["8%", "13%", "6%", *["6%"] * EXAMPLES, "49%"],
                elem_id="data-findings",
            )
            with gr.Accordion("Full doctor report", open=False):
                report = gr.Textbox(show_label=False, lines=6, max_lines=40, interactive=False)
            with gr.Accordion("First rows as plain text", open=False):
                preview = gr.Textbox(show_label=False, lines=6, max_lines=40, interactive=False)

        @handler(None)
        def clear(user):
            return gr.update(visible=False), "", "", None

        @handler("check data")
        def run_check(user, source, upload, subset, split, method, model, mapping, max_length, progress=gr.Progress()):  # noqa: B008 - gradio injects it
            state = inspect_data(
                source,
                upload,
                subset,
                split,
                method,
                model,
                mapping,
                max_length,
                ctx=ctx,
                owner=user.owner,
                progress=progress,
            )
            return state["summary"], state["preview"], state["report"], state

        @handler("check data")
        def show_results(user, state):
            text, spans = row_view(state, 0, ctx=ctx, owner=user.owner) if state["format"] else ("", [])
            frame = histogram_frame(state["histogram"])
            hist_update = gr.BarPlot(
                frame,
                sort=frame["tokens"].tolist(),
                title=_histogram_title(state["histogram"]),
                visible=bool(state["histogram"]),
            )
            verdict = (
                f"**Trainable by {methods.get(state['method']).label}:** {state['kept']} of {state['rows']} rows train."
                if state["trainable"]
                else f"**Not trainable by {methods.get(state['method']).label}:** {state['error']}"
            )
            return (
                gr.update(visible=True),
                verdict,
                gr.update(visible=bool(state["carry"])),
                0,
                text,
                spans,
                hist_update,
                gr.update(value=state["findings"] or None, visible=bool(state["findings"])),
            )

        @handler("check data")
        def pick_row(user, state, row):
            return row_view(state, row, ctx=ctx, owner=user.owner)

        @handler("check data")
        def pick_finding(user, state, evt: gr.SelectData):
            index = _example_row(state or {}, evt)
            if index is None:
                return gr.update(), gr.update(), gr.update()
            return (index, *row_view(state, index, ctx=ctx, owner=user.owner))

        @handler("train on this data")
        def use_data(user, state):
            value = carry(state)
            return value, f"The Train tab now uses `{value['source']}` ({value['split']})."

        @handler("check data")
        def check_api(user, source, upload, subset, split, method, model, mapping):
            return check_data(source, upload, subset, split, method, model, mapping, ctx=ctx, owner=user.owner)

        inputs = [source, upload, subset, split, method, model, mapping]
        check.click(clear, None, [results, used, fmt, last], show_progress="hidden", api_name=False).then(
            run_check, [*inputs, max_length], [fmt, preview, report, last], api_name=False
        ).success(show_results, [last], [results, verdict, use, row, what, mask, hist, findings], api_name=False)
        # The API keeps its contract (7 inputs; Max length 1024): a button the page never shows.
        gr.Button(visible=False).click(check_api, inputs, [fmt, preview, report], api_name=api_names.CHECK_DATA)
        for trigger in (show.click, row.submit):
            trigger(pick_row, [last, row], [what, mask], api_name=False)
        findings.select(pick_finding, [last], [row, what, mask], api_name=False)
        use.click(use_data, [last], [checked_data, used], api_name=False)
    return {"source": source, "check": check, "report": report, "use": use, "checked_data": checked_data}
