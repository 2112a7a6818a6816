"""Publish panel (Runs tab): push the selected finished run to the Hub with its model card."""

from __future__ import annotations

import gradio as gr

from core.errors import StudioError
from hub.push import push_run
from jobs import access
from ui import api_names
from ui.boxes import show
from ui.context import AppContext
from ui.handlers import handler


def publish(
    ctx: AppContext,
    run_id: str,
    owner: str | None,
    token: str | None,
    repo_id: str,
    private: bool,
    merged: bool,
    overwrite: bool,
) -> str:
    """Push the run; returns Markdown with the repo link(s). Raises StudioError with one sentence."""
    owner = access.require_owner(owner)
    if not (repo_id or "").strip():
        raise StudioError("Enter a repo id (NAME or NAMESPACE/NAME) to publish to.")
    if not token:
        raise StudioError("Publishing needs a Hugging Face token with write access: sign in, or set HF_TOKEN.")
    run = ctx.queue.get((run_id or "").strip(), owner)
    result = push_run(run.run_dir, repo_id.strip(), private=private, token=token, merged=merged, overwrite=overwrite)
    lines = [f"Pushed {len(result.files)} files to [{result.repo_id}]({result.url})."]
    if result.merged_url:
        lines.append(f"Merged model: [{result.merged_repo_id}]({result.merged_url}).")
    return "  \n".join(lines)


def build(ctx: AppContext, run_box):
    with gr.Accordion("Publish the selected run to the Hub", open=False):
        with gr.Row():
            repo = gr.Textbox(label="Repo id (NAME or NAMESPACE/NAME)", scale=3)
            private = gr.Checkbox(True, label="Private")
            merged = gr.Checkbox(False, label="Also push a merged model (not for QLoRA runs)")
            overwrite = gr.Checkbox(False, label="Allow a repo not made by this app")
        push = gr.Button("Publish", variant="primary")
        result = gr.Markdown(visible=False)  # shown once there is a result to show

        @handler("publish runs")
        def publish_clicked(user, run_id, repo_id, is_private, is_merged, may_overwrite):
            return publish(ctx, run_id, user.owner, user.token, repo_id, is_private, is_merged, may_overwrite)

        pushed = push.click(
            publish_clicked, [run_box, repo, private, merged, overwrite], result, api_name=api_names.PUBLISH_RUN
        )
        pushed.success(show, None, result, api_name=False)  # the API returns the text; then the box appears
    return {"repo": repo, "push": push, "result": result}
