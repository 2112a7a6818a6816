"""Fine-Tune Studio — the Gradio app (Hugging Face Space `app_file`).

    python app.py            # http://127.0.0.1:7860

Builds the page from ui/* and starts the run worker in a background thread; training itself always
runs in child processes (`python -m trainers train`), never inside a request.  Scripts can drive it
with gradio_client: /submit_run, /run_status, /cancel_run, /check_data, /build_config, /estimate, /compare,
/start_comparison, /comparison_status.
"""

from __future__ import annotations

import os
import threading

import gradio as gr

from trainers.errors import StudioError
from ui import auth, compare_tab, data_tab, playground_tab, runs_tab, train_tab
from ui.context import AppContext
from ui.errors import as_gr_error


def _api(ctx: AppContext):
    def submit_run(config_yaml: str, profile: gr.OAuthProfile | None = None, oauth: gr.OAuthToken | None = None) -> str:
        """Queue the RunConfig YAML (one or more documents); returns the run id(s), comma-separated."""
        owner, token = auth.identity(profile, oauth)
        try:
            return ", ".join(train_tab.submit_run(ctx, config_yaml, owner, token, profile))
        except Exception as exc:  # noqa: BLE001 - every failure reaches the caller as one sentence
            raise as_gr_error(exc) from exc

    def run_status(run_id: str, profile: gr.OAuthProfile | None = None) -> dict:
        """Status, progress, ETA and the latest metrics of one of your runs."""
        owner, _ = auth.identity(profile)
        try:
            return runs_tab.run_status(ctx, run_id.strip(), owner)
        except StudioError as exc:
            raise as_gr_error(exc) from exc

    def cancel_run(run_id: str, profile: gr.OAuthProfile | None = None) -> str:
        """Cancel one of your runs (it saves a checkpoint first); returns the new state."""
        owner, _ = auth.identity(profile)
        try:
            if not owner:
                raise StudioError("Sign in to manage your runs.")
            return ctx.queue.cancel(run_id.strip(), owner)
        except StudioError as exc:
            raise as_gr_error(exc) from exc

    gr.api(submit_run, api_name="submit_run")
    gr.api(run_status, api_name="run_status")
    gr.api(cancel_run, api_name="cancel_run")


def build(ctx: AppContext | None = None) -> gr.Blocks:
    ctx = ctx or AppContext()
    demo_default = not ctx.online
    with gr.Blocks(title="Fine-Tune Studio") as demo:
        with gr.Row():
            gr.Markdown("# Fine-Tune Studio\nSFT, DPO and SFT→DPO with LoRA, QLoRA, DoRA or full fine-tuning.")
            if auth.on_space_with_oauth():
                gr.LoginButton()
        if demo_default:
            gr.Markdown(
                "> The Hugging Face Hub cannot be reached from here, so the offline demo model (`demo-tiny`) and "
                "the shipped demo datasets are preselected. A demo SFT finishes in about a minute on a CPU."
            )
        selected_run = gr.State(None)
        data_tab.build(ctx, demo_default)
        train_tab.build(ctx, selected_run, demo_default)
        runs_tab.build(ctx, selected_run)
        playground_tab.build(ctx, selected_run)
        compare_tab.build(ctx, demo_default)
        _api(ctx)
    return demo


def start_worker(ctx: AppContext) -> threading.Thread:
    thread = threading.Thread(target=ctx.worker.run, name="run-worker", daemon=True)
    thread.start()
    return thread


def make_context() -> AppContext:
    from core import threads
    from hub.space import idle_hook
    from jobs.runner import Worker

    on_idle, idle_after_s = idle_hook()
    # the app keeps a share of the cores for its own inference (Playground, evaluation); runs get the rest
    worker = Worker(on_idle=on_idle, idle_after_s=idle_after_s, cpu_reserve=threads.app_share())
    return AppContext(home=worker.home, worker=worker)


if __name__ == "__main__":
    from core import threads

    threads.configure(threads.app_share())  # the app's own torch threads: its share, waiting passively
    context = make_context()
    start_worker(context)
    build(context).queue(default_concurrency_limit=8).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )
