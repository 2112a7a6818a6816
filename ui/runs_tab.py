"""Runs tab: my runs, the selected run's live curves (gr.Timer), progress with ETA, log, actions."""

from __future__ import annotations

import time

import gradio as gr
import pandas as pd

from core.errors import StudioError
from core.runfolder import RunFolder
from jobs import status
from trainers import methods
from ui import publish_panel
from ui.context import AppContext
from ui.handlers import handler

COLUMNS = ["run", "name", "status", "step", "loss", "started", "note"]


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else ""


def list_runs(ctx: AppContext, owner: str | None) -> pd.DataFrame:
    rows = []
    for run in reversed(ctx.queue.list(owner)) if owner else []:
        metrics = RunFolder(run.run_dir).metrics() if run.run_dir else []
        last = next((m for m in reversed(metrics) if "loss" in m), {})
        rows.append(
            [
                run.id,
                run.name,
                run.status,
                last.get("step", 0),
                last.get("loss"),
                _when(run.started_at),
                run.error or "",
            ]
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def curves(ctx: AppContext, run_id: str, owner: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Long-form frames for gr.LinePlot: loss (train + held-out), learning rate, the method's charted metrics."""
    series = status.curves(ctx.queue, run_id, owner)
    frame = lambda rows: pd.DataFrame(rows, columns=["step", "value", "series"])  # noqa: E731
    return frame(series["loss"]), frame(series["learning_rate"]), frame(series["method"])


def charted_title() -> str:
    """The third chart's title: the methods whose metrics it shows (trainers.methods `charted`)."""
    labels = [label for label, name in methods.choices() if methods.get(name).charts]
    return " / ".join(labels) + " metrics" if labels else "Method metrics"


def adapter_zip(ctx: AppContext, run_id: str, owner: str | None) -> str:
    """The run's adapter as a zip (jobs.api.JobQueue.adapter_zip: owner required, regular files only)."""
    return str(ctx.queue.adapter_zip((run_id or "").strip(), owner))


def _seed(*series: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": pd.Series([None] * len(series), dtype="float64"),
            "value": pd.Series([None] * len(series), dtype="float64"),
            "series": list(series),
        }
    )


def build(ctx: AppContext, selected_run):
    with gr.Tab("Runs"):
        table = gr.Dataframe(headers=COLUMNS, interactive=False, label="My runs (newest first)")
        with gr.Row():
            run_box = gr.Textbox(label="Selected run id", scale=3)
            cancel = gr.Button("Cancel")
            resume = gr.Button("Resume")
            delete = gr.Button("Delete")
            download = gr.Button("Download adapter (.zip)")
        state_md = gr.Markdown()
        with gr.Row():
            # The chart fixes its axis types and colour domain from its first data, so it starts with a typed,
            # point-free frame naming every series it may ever show (held-out loss appears later).
            loss_plot = gr.LinePlot(
                _seed("train", "held-out"), x="step", y="value", color="series", title="Loss", height=260
            )
            lr_plot = gr.LinePlot(
                _seed("learning rate"), x="step", y="value", color="series", title="Learning rate", height=260
            )
            reward_plot = gr.LinePlot(
                _seed(*dict.fromkeys(status.charted_keys().values())),
                x="step",
                y="value",
                color="series",
                title=charted_title(),
                height=260,
            )
        log = gr.Code(label="train.log (tail)", language=None, lines=12)
        file_out = gr.File(label="Adapter")
        timer = gr.Timer(2.0)

        @handler(None)
        def refresh(user, run_id):
            owner = user.owner
            if owner:
                ctx.queue.provide_token(owner, user.token)  # runs waiting for a sign-in after a restart go on
            runs = list_runs(ctx, owner)
            if not run_id and len(runs):
                run_id = runs.iloc[0]["run"]
            if not run_id or not owner:
                return runs, run_id, "No run selected.", gr.skip(), gr.skip(), gr.skip(), ""
            try:
                state = status.run_status(ctx.queue, run_id, owner)
                loss, lr, rewards = curves(ctx, run_id, owner)
                text = ctx.queue.log_tail(run_id, owner, 6000)
            except StudioError as exc:
                return runs, run_id, str(exc), gr.skip(), gr.skip(), gr.skip(), ""
            bar = ""
            if state["progress"] is not None:
                filled = int(state["progress"] * 30)
                bar = f"`[{'#' * filled}{'.' * (30 - filled)}]` {100 * state['progress']:.0f} %"
                if state["eta_s"]:
                    bar += f", about {state['eta_s']:.0f} s left"
            md = (
                f"**{state['status']}** — step {state['step']}"
                + (f" of {state['max_steps']}" if state["max_steps"] else "")
                + f"  {bar}"
                + (f"  \n{state['error']}" if state["error"] else "")
            )
            # An empty frame has no numeric columns and would fix the chart's axes as categories: skip it.
            plots = [frame if len(frame) else gr.skip() for frame in (loss, lr, rewards)]
            return runs, run_id, md, *plots, text

        outputs = [table, run_box, state_md, loss_plot, lr_plot, reward_plot, log]
        timer.tick(refresh, [run_box], outputs, api_name=False, show_progress="hidden")

        @handler(None)  # the run started on the Train tab (this page's own state)
        def run_started(user, run_id):
            return run_id

        selected_run.change(run_started, selected_run, run_box, api_name=False)

        @handler(None)  # the row the user clicked
        def pick(user, evt: gr.SelectData):
            return evt.row_value[0] if evt.row_value else None

        table.select(pick, None, run_box, api_name=False)

        def act(action):
            @handler(f"{action} runs")
            def acted(user, run_id):
                run_id = (run_id or "").strip()
                if action == "resume":  # the user's own token, which a restarted app no longer holds
                    result = ctx.queue.resume(run_id, user.owner, user.token)
                else:
                    result = getattr(ctx.queue, action)(run_id, user.owner)
                return f"{action}: {result or 'done'}"

            return acted

        for button, action in ((cancel, "cancel"), (resume, "resume"), (delete, "delete")):
            button.click(act(action), [run_box], state_md, api_name=False)

        @handler("download adapters")
        def download_zip(user, run_id):
            return adapter_zip(ctx, run_id, user.owner)

        download.click(download_zip, [run_box], file_out, api_name=False)
        publish_panel.build(ctx, run_box)
    return {"table": table, "run_box": run_box, "loss_plot": loss_plot, "status": state_md}
