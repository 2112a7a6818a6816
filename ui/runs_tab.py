"""Runs tab: my runs, the selected run's live curves (gr.Timer), progress with ETA, log, actions."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import pandas as pd

from core.errors import StudioError
from jobs import monitor
from ui import publish_panel
from ui.context import AppContext
from ui.handlers import handler

COLUMNS = ["run", "name", "status", "step", "loss", "started", "note"]


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else ""


def list_runs(ctx: AppContext, owner: str | None) -> pd.DataFrame:
    rows = []
    for run in reversed(ctx.queue.list(owner)) if owner else []:
        metrics = monitor.metrics_since(Path(run.run_dir))[0] if run.run_dir else []
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


def run_status(ctx: AppContext, run_id: str, owner: str | None) -> dict:
    """Status plus the latest metrics: what a script polling /run_status needs."""
    run = ctx.queue.get(run_id, owner)  # refuses a missing owner
    metrics = monitor.metrics_since(Path(run.run_dir))[0]
    train = [m for m in metrics if "loss" in m]
    summary = monitor.read_summary(Path(run.run_dir))
    latest = {k: v for k, v in (train[-1] if train else {}).items() if k != "time"}
    max_steps = _max_steps(run.run_dir)
    step = max(latest.get("step", 0), summary.get("global_step") or 0)
    progress = eta = None
    if max_steps:
        progress = 1.0 if run.status == "succeeded" else round(min(1.0, step / max_steps), 4)
        if train and step and run.status == "running":
            elapsed = train[-1]["time"] - (run.started_at or train[-1]["time"])
            eta = round(elapsed / step * (max_steps - step), 1)
    return {
        "run_id": run.id,
        "status": run.status,
        "error": run.error,
        "exit_reason": run.exit_reason,
        "step": step,
        "max_steps": max_steps,
        "progress": progress,
        "eta_s": eta,
        "latest": latest,
        "final_metrics": summary.get("final_metrics"),
    }


def _max_steps(run_dir: str) -> int | None:
    import yaml

    try:
        cfg = yaml.safe_load((Path(run_dir) / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    steps = (cfg.get("training") or {}).get("max_steps")
    return int(steps) if steps and int(steps) > 0 else None


def curves(ctx: AppContext, run_id: str, owner: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Long-form frames for gr.LinePlot: loss (train + held-out), learning rate, DPO rewards."""
    metrics = monitor.metrics_since(Path(ctx.queue.get(run_id, owner).run_dir))[0]
    loss = [(m["step"], m["loss"], "train") for m in metrics if m.get("loss") is not None]
    loss += [(m["step"], m["eval_loss"], "held-out") for m in metrics if m.get("eval_loss") is not None]
    lr = [(m["step"], m["learning_rate"], "learning rate") for m in metrics if "learning_rate" in m]
    rewards = [
        (m["step"], m[k], k.split("/")[1]) for m in metrics for k in ("rewards/accuracies", "rewards/margins") if k in m
    ]
    frame = lambda rows: pd.DataFrame(rows, columns=["step", "value", "series"])  # noqa: E731
    return frame(loss), frame(lr), frame(rewards)


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
        status = gr.Markdown()
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
                _seed("accuracies", "margins"), x="step", y="value", color="series", title="DPO rewards", height=260
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
                state = run_status(ctx, run_id, owner)
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

        outputs = [table, run_box, status, loss_plot, lr_plot, reward_plot, log]
        timer.tick(refresh, [run_box], outputs, api_name=False, show_progress="hidden")
        selected_run.change(lambda r: r, selected_run, run_box, api_name=False)

        def pick(evt: gr.SelectData):  # client-side state only: the row the user clicked
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
            button.click(act(action), [run_box], status, api_name=False)

        @handler("download adapters")
        def download_zip(user, run_id):
            return adapter_zip(ctx, run_id, user.owner)

        download.click(download_zip, [run_box], file_out, api_name=False)
        publish_panel.build(ctx, run_box)
    return {"table": table, "run_box": run_box, "loss_plot": loss_plot, "status": status}
