"""Runs tab: my runs, the selected run's live curves (gr.Timer), status with ETA and the next held-out point, a
finished run's summary, a readable log tail, two-step delete, and an overlay + config diff of several runs.

The functions above `build` take (ctx, ..., owner) and return plain values or frames: the tests call them."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from core.errors import StudioError
from core.runfolder import RunFolder
from jobs import monitor, status
from trainers import methods
from ui import fmt, publish_panel
from ui.boxes import show
from ui.context import AppContext
from ui.handlers import handler

COLUMNS = ("run", "name", "status", "step", "loss", "started", "note")
EMPTY = "No runs yet: start one on the **Train** tab (pick a method, a model and data, then **Start**)."
SIGNED_OUT = "Sign in with Hugging Face (button at the top) to see your runs."
METHOD_PLOTS = max(len(methods.get(name).charts) for _, name in methods.choices())  # one plot per charted metric
X_AXES = (("steps", "step"), ("tokens seen", "tokens_seen"))  # (what the radio says, metrics.jsonl key)
LOG_BYTES = 6000
HELD_OUT = ("Held-out loss: this run holds no data out", "Held-out loss")  # by "evaluates"; always shown: see build


def _note(run) -> str:
    return (run.error or "").split("\n")[0]


def list_runs(ctx: AppContext, owner: str | None) -> pd.DataFrame:
    """The owner's runs, newest first, numbers formatted for reading."""
    rows = []
    for run in reversed(ctx.queue.list(owner)) if owner else []:
        metrics = RunFolder(run.run_dir).metrics() if run.run_dir else []
        last = next((m for m in reversed(metrics) if "loss" in m), {})
        note = _note(run)
        if run.status == "queued":
            position = status.queue_position(ctx.queue, run.id, owner)
            note = f"{fmt.ordinal(position)} in line" if position else note
        step = last.get("step", 0)
        rows.append([run.id, run.name, run.status, step, fmt.number(last.get("loss")), fmt.when(run.started_at), note])
    return pd.DataFrame(rows, columns=list(COLUMNS))


def adapter_zip(ctx: AppContext, run_id: str, owner: str | None) -> str:
    """The run's adapter as a zip (jobs.api.JobQueue.adapter_zip: owner required, regular files only)."""
    return str(ctx.queue.adapter_zip((run_id or "").strip(), owner))


def status_line(state: dict, position: int | None = None, next_eval: str | None = None) -> str:
    """'**running** — step 12 of 60 [###...] 20 %, about 22 min left · next held-out loss at step 40'."""
    if state["status"] == "queued" and position:
        return f"**queued** — {fmt.ordinal(position)} in line"
    text = f"**{state['status']}** — step {state['step']}" + (f" of {state['max_steps']}" if state["max_steps"] else "")
    if state["progress"] is not None:
        filled = int(state["progress"] * 30)
        text += f"  `[{'#' * filled}{'.' * (30 - filled)}]` {100 * state['progress']:.0f} %"
        if state["eta_s"]:
            text += f", about {fmt.duration(state['eta_s'])} left"
    if next_eval:
        text += f" · {next_eval}"
    if state["error"]:
        text += f"  \n{state['error'].splitlines()[0]}"
    return text


def summary_text(summary: dict) -> str:
    """A finished run's numbers in one line ('' before it ends)."""
    if not summary:
        return ""
    parts = []
    before, after = summary.get("eval_loss_before"), summary.get("eval_loss_after")
    if before is not None and after is not None:
        parts.append(f"held-out loss {fmt.number(before)} → {fmt.number(after)}")
    elif after is not None:
        parts.append(f"held-out loss {fmt.number(after)}")
    if summary.get("train_loss") is not None:
        parts.append(f"train loss {fmt.number(summary['train_loss'])}")
    if summary.get("global_step"):
        parts.append(f"{summary['global_step']:,} steps")
    if summary.get("tokens_seen"):
        parts.append(f"{fmt.count(summary['tokens_seen'])} tokens")
    if summary.get("wall_time_s") is not None:
        parts.append(f"wall time {fmt.duration(summary['wall_time_s'])}")
    if summary.get("peak_memory_mb"):
        parts.append(f"peak memory {fmt.size_mb(summary['peak_memory_mb'])} ({summary['peak_memory_kind']})")
    return f"**Summary ({summary['status']})** — " + " · ".join(parts) if parts else ""


def _frame(rows, series: str | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["step", "value"]).astype("float64")
    if series is not None:
        frame["series"] = series
    return frame


def _seed(series: str | None = None) -> pd.DataFrame:
    """A typed, point-free frame: the chart fixes its axis types from its first data (numeric here)."""
    return _frame([(None, None)], series)


def run_view(ctx: AppContext, run_id: str, owner: str) -> dict:
    """Everything the tab shows of one run: status line, summary, frames, the method's charted keys, log."""
    run = ctx.queue.get(run_id, owner)
    state = status.run_status(ctx.queue, run_id, owner)
    series = status.curves(ctx.queue, run_id, owner)
    position = status.queue_position(ctx.queue, run_id, owner)
    upcoming = status.next_eval(run.run_dir, state["step"], run.status, bool(series["held_out"]))
    return {
        "status": status_line(state, position, upcoming),
        "summary": summary_text(status.run_summary(ctx.queue, run_id, owner)),
        "max_steps": state["max_steps"],
        "train": _frame(series["train"], "train"),
        "held_out": _frame(series["held_out"], "held-out"),
        "evaluates": bool(series["held_out"] or upcoming),
        "learning_rate": _frame(series["learning_rate"], "learning rate"),
        "method_keys": series["method_keys"],
        "per_metric": {k: _frame(rows) for k, rows in series["per_metric"].items()},
        "log": monitor.readable_tail(Path(run.run_dir), LOG_BYTES),
    }


def ask_delete(ctx: AppContext, run_id: str, owner: str | None) -> str:
    """The question Delete asks first (the run must be the owner's)."""
    run = ctx.queue.get((run_id or "").strip(), owner)
    return f"Delete run **{run.id}** ({run.name}) and its files? This cannot be undone."


def confirm_delete(ctx: AppContext, run_id: str, owner: str | None) -> str:
    """Delete the run the question named (jobs.api refuses another owner's run or a running one)."""
    run_id = (run_id or "").strip()
    if not run_id:
        raise StudioError("Choose a run, then press Delete and confirm.")
    ctx.queue.delete(run_id, owner)
    return f"Deleted run {run_id} and its files."


def compare(ctx: AppContext, run_ids: list[str], owner: str | None, axis: str = "steps"):
    """(overlay frame [x, loss, run], config diff frame [setting, one column per run]) of two or more runs."""
    run_ids = list(dict.fromkeys(run_ids or []))
    if len(run_ids) < 2:
        raise StudioError("Select two or more runs to compare.")
    rows = status.overlay(ctx.queue, run_ids, owner, dict(X_AXES).get(axis, "step"))
    overlay = pd.DataFrame(rows, columns=["x", "loss", "run"]).astype({"x": "float64", "loss": "float64"})
    labels, diff_rows = status.config_diff(ctx.queue, run_ids, owner)
    shown = [[key, *("—" if v is None else str(v) for v in values)] for key, *values in diff_rows]
    return overlay, pd.DataFrame(shown, columns=["setting", *labels])


def held_out_limits(frame: pd.DataFrame, max_steps: int | None) -> dict:
    """Axis limits of the held-out plot: the whole run's steps (a lone point at step 0 no longer sets the axis)
    and its values, each with a little room so a point at an edge is drawn whole. Only this plot gets limits:
    a limit that changes makes gradio redraw a chart, so the line charts keep their data's own axes."""
    limits = {"x_lim": [-max_steps / 30, max_steps * (1 + 1 / 30)] if max_steps else None, "y_lim": None}
    values = frame["value"].dropna()
    if len(values):
        low, high = float(values.min()), float(values.max())
        pad = max((high - low) / 10, abs(high) / 20, 1e-3)
        limits["y_lim"] = [low - pad, high + pad]
    return limits


def _plot_update(frame: pd.DataFrame, seed: pd.DataFrame, **props):
    return gr.update(value=frame if len(frame) else seed, **props)


def staged(sent: dict, name: str, frame: pd.DataFrame, seed: pd.DataFrame, **props):
    """A chart update that never changes its settings (title, limits, visibility) and its data at once: gradio
    6 redraws a chart whose settings change, and data arriving during that redraw is lost. New settings go
    alone (and are remembered in `sent`, this page's state); the data follows on the next tick."""
    if sent.get(name) != props:
        sent[name] = props
        return gr.update(**props)
    return _plot_update(frame, seed)


def train_more_steps(ctx: AppContext, run_id: str, steps, owner: str | None, token: str | None) -> str:
    """Queue N more steps of a finished run of the owner's (jobs.api.JobQueue.continue_run); the new run's id."""
    run_id = (run_id or "").strip()
    if not run_id:
        raise StudioError("Pick a finished run in the table first.")
    if steps is None or int(steps) < 1:
        raise StudioError("'Train N more steps' must be a whole number of steps, 1 or more.")
    return ctx.queue.continue_run(run_id, owner, token, steps=int(steps))


def build(ctx: AppContext, selected_run):
    with gr.Tab("Runs"):
        state_md = gr.Markdown(elem_id="runs-status")
        table = gr.Dataframe(
            headers=list(COLUMNS),
            interactive=False,
            label="My runs (newest first)",
            visible=False,
            elem_id="runs-table",
        )
        with gr.Row(equal_height=True):
            run_box = gr.Textbox(label="Selected run id", scale=3, min_width=220)
            cancel = gr.Button("Cancel", min_width=90)
            resume = gr.Button("Resume", min_width=90)
            delete = gr.Button("Delete", min_width=90)
            download = gr.Button("Download adapter (.zip)", min_width=160)
        # what the user's last action did: its own line, which the 2-second refresh never overwrites
        action_md = gr.Markdown(elem_id="runs-action")
        with gr.Row(visible=False) as confirm_row:
            confirm_md = gr.Markdown()
            confirm = gr.Button("Confirm delete", variant="stop", min_width=120, scale=0)
            keep = gr.Button("Keep", min_width=90, scale=0)
        pending = gr.State(None)  # the run id the question named: Confirm deletes exactly that one
        file_out = gr.File(label="Adapter", visible=False)
        with gr.Row(elem_id="train-more-slot", equal_height=True) as train_more_row:  # continue a finished run
            more_steps = gr.Number(50, label="Train N more steps", precision=0, minimum=1, min_width=160, scale=0)
            more = gr.Button("Train N more", min_width=120, scale=0)
        summary_md = gr.Markdown(visible=False, elem_id="runs-summary")
        with gr.Row():
            # Each chart starts with a typed, point-free frame naming its series (numeric axes from the start).
            # These three stay visible: hiding one resizes the others, and vega-lite then draws them clipped.
            loss_plot = gr.LinePlot(
                _seed("train"), x="step", y="value", color="series", title="Loss", y_title="loss", height=260
            )
            heldout_plot = gr.ScatterPlot(
                _seed("held-out"),
                x="step",
                y="value",
                color="series",
                title="Held-out loss",
                y_title="held-out loss",
                height=260,
            )
            lr_plot = gr.LinePlot(
                _seed("learning rate"),
                x="step",
                y="value",
                color="series",
                title="Learning rate",
                y_title="learning rate",
                height=260,
            )
        with gr.Row():
            method_plots = [
                gr.LinePlot(_seed(), x="step", y="value", height=220, visible=False, min_width=240)
                for _ in range(METHOD_PLOTS)
            ]
        log = gr.Code(  # a log needs no line numbers; long lines wrap instead of scrolling sideways
            label="train.log (tail, without third-party warnings)",
            language=None,
            lines=12,
            max_lines=24,
            show_line_numbers=False,
            wrap_lines=True,
        )
        timer = gr.Timer(2.0)

        drawn = gr.State({})  # per page: the chart settings last sent (see staged)

        @handler(None)
        def refresh(user, run_id, sent, shown):
            owner = user.owner
            choices = compare_choices(ctx, owner, shown)
            if owner:
                ctx.queue.provide_token(owner, user.token)  # runs waiting for a sign-in after a restart go on
            runs = list_runs(ctx, owner)
            hidden = gr.update(visible=False)
            idle = [gr.skip()] * (3 + METHOD_PLOTS)
            if not owner or not len(runs):
                line = SIGNED_OUT if not owner else EMPTY
                return gr.update(value=runs, visible=False), gr.skip(), line, hidden, *idle, "", gr.skip(), *choices
            chosen = (run_id or "").strip()
            run_id = chosen or status.default_run(ctx.queue, owner)
            # the box is written only when it was empty: a tick computed before the user chose or deleted a run must
            # not put the old id back when it lands after that choice
            box = gr.skip() if chosen else run_id
            try:
                view = run_view(ctx, run_id, owner)
            except StudioError as exc:
                return gr.update(value=runs, visible=True), box, str(exc), hidden, *idle, "", gr.skip(), *choices
            sent = dict(sent or {})
            limits = held_out_limits(view["held_out"], view["max_steps"])
            plots = [
                _plot_update(view["train"], _seed("train")),
                staged(
                    sent,
                    "held-out",
                    view["held_out"],
                    _seed("held-out"),
                    title=HELD_OUT[bool(view["evaluates"])],
                    **limits,
                ),
                _plot_update(view["learning_rate"], _seed("learning rate")),
            ]
            keys = view["method_keys"]
            for i in range(METHOD_PLOTS):
                key = keys[i] if i < len(keys) else None
                frame = view["per_metric"][key] if key else _seed()
                props = {"title": key, "y_title": key, "visible": True} if key else {"visible": False}
                plots.append(staged(sent, f"method-{i}", frame, _seed(), **props))
            summary = gr.update(value=view["summary"], visible=bool(view["summary"]))
            table_update = gr.update(value=runs, visible=True)
            return table_update, box, view["status"], summary, *plots, view["log"], sent, *choices

        @handler(None)  # the run started on the Train tab (this page's own state)
        def run_started(user, run_id):
            return run_id

        selected_run.change(run_started, selected_run, run_box, api_name=False)

        @handler(None)  # the row the user clicked: it is also the run the Playground preselects
        def pick(user, evt: gr.SelectData):
            run_id = evt.row_value[0] if evt.row_value else None
            return run_id, run_id

        table.select(pick, None, [run_box, selected_run], api_name=False)

        @handler(None)  # a run id typed in: the page's chosen run too
        def typed(user, run_id):
            return (run_id or "").strip() or None

        run_box.input(typed, run_box, selected_run, api_name=False, trigger_mode="always_last")

        @handler(None)  # another run chosen: the previous run's adapter file and delete question go away
        def forget(user):
            return gr.update(value=None, visible=False), gr.update(visible=False), None

        run_box.change(forget, None, [file_out, confirm_row, pending], api_name=False)

        def act(action):
            @handler(f"{action} runs")
            def acted(user, run_id):
                run_id = (run_id or "").strip()
                if action == "resume":  # the user's own token, which a restarted app no longer holds
                    result = ctx.queue.resume(run_id, user.owner, user.token)
                else:
                    result = getattr(ctx.queue, action)(run_id, user.owner)
                return f"Run {run_id}: {result or 'done'}."

            return acted

        for button, action in ((cancel, "cancel"), (resume, "resume")):
            button.click(act(action), [run_box], action_md, api_name=False)

        @handler("start runs", launch=True)  # a new queued run from the finished one's last state
        def train_more(user, run_id, steps):
            new_id = train_more_steps(ctx, run_id, steps, user.owner, user.token)
            return f"Queued {new_id}: {int(steps)} more steps of {run_id.strip()}, continuing its curves.", new_id

        more.click(train_more, [run_box, more_steps], [action_md, run_box], api_name=False)

        @handler("delete runs")
        def delete_asked(user, run_id):
            question = ask_delete(ctx, run_id, user.owner)
            return gr.update(visible=True), question, (run_id or "").strip()

        delete.click(delete_asked, [run_box], [confirm_row, confirm_md, pending], api_name=False)

        @handler("delete runs")
        def delete_confirmed(user, run_id):
            done = confirm_delete(ctx, run_id, user.owner)
            return gr.update(visible=False), done, None, ""

        confirm.click(delete_confirmed, [pending], [confirm_row, action_md, pending, run_box], api_name=False)

        @handler(None)
        def kept(user):
            return gr.update(visible=False), None

        keep.click(kept, None, [confirm_row, pending], api_name=False)

        @handler("download adapters")
        def download_zip(user, run_id):
            return adapter_zip(ctx, run_id, user.owner)

        zipped = download.click(download_zip, [run_box], file_out, api_name=False)  # the file, as the API returns it
        zipped.success(show, None, file_out, api_name=False)  # then its box appears
        compare_parts = _build_compare(ctx)
        picked, known = compare_parts["compare_runs"], compare_parts.pop("known")
        # one request per tick: the selected run's view and the compare picker's choices
        outputs = [table, run_box, state_md, summary_md, loss_plot, heldout_plot, lr_plot, *method_plots, log, drawn]
        outputs += [picked, known]
        timer.tick(refresh, [run_box, drawn, known], outputs, api_name=False, show_progress="hidden")
        publish_panel.build(ctx, run_box)
    return {
        "table": table,
        "run_box": run_box,
        "loss_plot": loss_plot,
        "status": state_md,
        "action": action_md,
        "summary": summary_md,
        "train_more_row": train_more_row,
        **compare_parts,
    }


def compare_choices(ctx: AppContext, owner: str | None, shown: list | None) -> tuple:
    """(dropdown update, choices now) for the compare picker: the owner's runs, newest first; gr.skip() when the
    page already shows them."""
    runs = reversed(ctx.queue.list(owner)) if owner else []
    now = [[status.run_label(run), run.id] for run in runs]
    return (gr.update(choices=[tuple(c) for c in now]), now) if now != shown else (gr.skip(), gr.skip())


def _build_compare(ctx: AppContext):
    with gr.Accordion("Compare runs: overlay their loss and diff their configs", open=False):
        with gr.Row():
            picked = gr.Dropdown(choices=[], multiselect=True, label="Runs to compare (two or more of yours)", scale=3)
            axis = gr.Radio([label for label, _ in X_AXES], value="steps", label="x axis", min_width=200)
        compare_md = gr.Markdown()
        overlay_plot = gr.LinePlot(
            pd.DataFrame({"x": [None], "loss": [None], "run": [""]}).astype({"x": "float64", "loss": "float64"}),
            x="x",
            y="loss",
            color="run",
            title="Train loss of the selected runs",
            x_title="step",
            y_title="loss",
            height=300,
            visible=False,
        )
        diff = gr.Dataframe(label="Settings that differ (config.yaml)", interactive=False, visible=False)
        known = gr.State([])  # this page's current choices, so the timer only sends a change

        @handler(None)
        def compared(user, run_ids, x_axis):
            hidden = gr.update(visible=False)
            if len(run_ids or []) < 2:
                return "Select two or more runs to overlay their loss and see the settings that differ.", hidden, hidden
            frame, table = compare(ctx, run_ids, user.owner, x_axis)
            # a colour per run: a new set of runs redraws the legend
            colours = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(table.columns[1:])}
            plot = gr.update(value=frame, visible=True, x_title=x_axis.removesuffix("s"), color_map=colours)
            note = "" if len(table) else "Their configs are the same."
            return note, plot, gr.update(value=table, visible=bool(len(table)))

        for event in (picked.change, axis.change):
            event(compared, [picked, axis], [compare_md, overlay_plot, diff], api_name=False)
    return {"compare_runs": picked, "overlay_plot": overlay_plot, "config_diff": diff, "known": known}


PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777")
