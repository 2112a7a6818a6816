"""Fine-Tune Studio — the Gradio app (Hugging Face Space `app_file`).

    python app.py            # http://127.0.0.1:7860

Builds the page from ui/* and starts the run worker in a background thread; training itself always
runs in child processes (`python -m trainers train`), never inside a request.  Scripts can drive it
with gradio_client; every endpoint name is in ui/api_names.py (/submit_run, /run_status, /playground_reply, ...).
"""

from __future__ import annotations

import argparse
import inspect
import threading
import warnings

import gradio as gr

from core import settings, threads
from hub.space import idle_hook
from jobs import status
from jobs.runner import Worker
from trainers import methods
from ui import api_names, compare_tab, data_tab, playground_tab, runs_tab, train_tab
from ui.context import AppContext
from ui.handlers import handler

CSS = """
/* Code editors: CodeMirror sizes each line number to the line height it measured before gradio's editor styles
   and font arrived (14 px against 16.8 px lines), so the numbers stopped short of the text (1-21 beside 24 lines).
   A line number takes its line's own height instead (the hidden width spacer keeps its 0 height). */
.cm-lineNumbers .cm-gutterElement:not([style*="hidden"]) { height: auto !important; }
/* Markdown tables (reports, estimates): words and numbers never break inside (gradio sets word-break: break-word
   on them, which gave '18649.3 / 8' and 'succee / ded'); a table wider than the page scrolls sideways. */
.prose table { display: block; width: fit-content; max-width: 100%; overflow-x: auto; }
.prose table, .prose th, .prose td { word-break: normal !important; overflow-wrap: normal !important; hyphens: none; }
"""


def _only_tabs_in(tabs: gr.Tabs, root: gr.Blocks) -> None:
    """A tab's gr.api endpoint (or State) made after its Tab closed lands in the Tabs, where the page draws it as a
    tab of its own: it belongs to the page's root (it has no place on the page)."""
    for child in [c for c in tabs.children if not isinstance(c, gr.Tab)]:
        tabs.children.remove(child)
        root.children.append(child)
        child.parent = root


def _api(ctx: AppContext):
    @handler("start runs", launch=True)
    def submit_run(user, config_yaml: str) -> str:
        """Queue the RunConfig YAML (one or more documents); returns the run id(s), comma-separated."""
        return ", ".join(train_tab.submit_run(ctx, config_yaml, user.owner, user.token, user.profile))

    @handler("see your runs")
    def run_status(user, run_id: str) -> dict:
        """Status, progress, ETA and the latest metrics of one of your runs."""
        return status.run_status(ctx.queue, run_id.strip(), user.owner)

    @handler("cancel runs")
    def cancel_run(user, run_id: str) -> str:
        """Cancel one of your runs (it saves a checkpoint first); returns the new state."""
        return ctx.queue.cancel(run_id.strip(), user.owner)

    gr.api(submit_run, api_name=api_names.SUBMIT_RUN)
    gr.api(run_status, api_name=api_names.RUN_STATUS)
    gr.api(cancel_run, api_name=api_names.CANCEL_RUN)


def build(ctx: AppContext | None = None) -> gr.Blocks:
    ctx = ctx or AppContext()
    demo_default = not ctx.online
    with warnings.catch_warnings():  # gradio 6 takes css in launch(); the Blocks carries it for every launcher
        warnings.simplefilter("ignore", UserWarning)
        blocks = gr.Blocks(title="Fine-Tune Studio", css=CSS)
    with blocks as demo:
        with gr.Row():
            *others, last = methods.arms().values()
            gr.Markdown(
                f"# Fine-Tune Studio\n{', '.join(others)} and {last} with LoRA, QLoRA, DoRA or full fine-tuning."
            )
            if settings.on_space_with_oauth():
                gr.LoginButton()
        if demo_default:
            gr.Markdown(
                "> The Hugging Face Hub cannot be reached from here, so the offline demo model (`demo-tiny`) and "
                "the shipped demo datasets are preselected. A demo SFT finishes in about a minute on a CPU."
            )
        selected_run = gr.State(None)
        checked_data = gr.State(None)  # the Data tab's checked dataset: {source, subset, split, columns, kind, method}
        with gr.Tabs() as tabs:
            if "checked_data" in inspect.signature(data_tab.build).parameters:
                data_tab.build(ctx, demo_default, checked_data=checked_data)
            else:
                data_tab.build(ctx, demo_default)
            train_tab.build(ctx, selected_run, demo_default, checked_data, tabs)
            runs_tab.build(ctx, selected_run)
            playground_tab.build(ctx, selected_run)
            compare_tab.build(ctx, demo_default, checked_data)
            _only_tabs_in(tabs, demo)
        demo.load(None, js=train_tab.REMEASURE)  # code editors number their lines once the fonts are in
        _api(ctx)
    return demo


def start_worker(ctx: AppContext) -> threading.Thread:
    thread = threading.Thread(target=ctx.worker.run, name="run-worker", daemon=True)
    thread.start()
    return thread


def make_context() -> AppContext:
    on_idle, idle_after_s = idle_hook()
    # the app keeps a share of the cores for its own inference (Playground, evaluation); runs get the rest
    worker = Worker(on_idle=on_idle, idle_after_s=idle_after_s, cpu_reserve=threads.app_share())
    return AppContext(home=worker.home, worker=worker)


def main(argv: list[str] | None = None) -> None:
    """Start the worker thread and serve the app (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, default 127.0.0.1:7860)."""
    argparse.ArgumentParser(prog="studio app", description=main.__doc__).parse_args(argv)

    threads.configure(threads.app_share())  # the app's own torch threads: its share, waiting passively
    context = make_context()
    start_worker(context)
    build(context).queue(default_concurrency_limit=8).launch(
        server_name=settings.server()[0],
        server_port=settings.server()[1],
    )


if __name__ == "__main__":
    main()
