"""Playground: the base model and the adapter answer the same message side by side, streamed."""

from __future__ import annotations

import threading

import gradio as gr

from core.errors import StudioError
from core.runfolder import RunFolder, read_json
from jobs import access
from jobs.api import JobError
from trainers.models import refuse_scorer, resolve_model_path
from ui import api_names
from ui.context import AppContext
from ui.handlers import handler


def resolve_adapter(ctx: AppContext, choice: str, owner: str | None) -> tuple[str, str]:
    """(base model, adapter path or Hub id) from a run id of mine or a Hub adapter id."""
    owner = access.require_owner(owner)
    choice = (choice or "").strip()
    if not choice:
        raise StudioError("Pick a finished run or enter a Hub adapter id.")
    try:
        run = ctx.queue.get(choice, owner)
    except JobError:
        run = None
    if run is not None:
        adapter = RunFolder(run.run_dir).adapter()
        if adapter is None or not (adapter / "adapter_config.json").is_file():
            raise StudioError(f"Run {choice} has no adapter yet: it appears when the run succeeds.")
        adapter_config = read_json(adapter / "adapter_config.json")
        refuse_scorer(adapter_config, f"Run {choice}")
        base = adapter_config.get("base_model_name_or_path")
        if not base:
            raise StudioError(f"Run {choice}'s adapter does not name its base model (adapter_config.json).")
    else:
        access.check_path(choice, owner, ctx.home, ctx.queue.store)  # shared Space: only your own folders
        from peft import PeftConfig

        try:
            peft_config = PeftConfig.from_pretrained(choice)
        except Exception as exc:  # noqa: BLE001
            raise StudioError(f"{choice!r} is neither one of your runs nor a loadable adapter on the Hub.") from exc
        refuse_scorer({"task_type": peft_config.task_type}, repr(choice))
        base, adapter = peft_config.base_model_name_or_path, choice
    access.check_path(base, owner, ctx.home, ctx.queue.store)  # an adapter may name any local base
    return base, str(adapter)


def stream_reply(model, tokenizer, message: str, temperature: float, max_new_tokens: int):
    from transformers import TextIteratorStreamer

    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": message}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    kwargs = dict(
        **inputs,
        max_new_tokens=int(max_new_tokens),
        streamer=streamer,
        do_sample=temperature > 0,
        **({"temperature": float(temperature)} if temperature > 0 else {}),
    )
    threading.Thread(target=model.generate, kwargs=kwargs, daemon=True).start()
    text = ""
    for piece in streamer:
        text += piece
        yield text


def compare(ctx: AppContext, choice: str, message: str, temperature: float, max_new_tokens: int, owner: str | None):
    """Yields (base reply, adapter reply) as both stream, same sampling settings for both."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_id, adapter = resolve_adapter(ctx, choice, owner)
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(base_id))
    tuned = PeftModel.from_pretrained(model, adapter)
    base_text = ""
    with tuned.disable_adapter():
        for base_text in stream_reply(tuned, tokenizer, message, temperature, max_new_tokens):
            yield base_text, ""
    for tuned_text in stream_reply(tuned, tokenizer, message, temperature, max_new_tokens):
        yield base_text, tuned_text


def build(ctx: AppContext, selected_run):
    with gr.Tab("Playground"):
        with gr.Row():
            choice = gr.Textbox(label="Run id (of yours) or Hub adapter id", scale=3)
            temperature = gr.Slider(0, 1.5, value=0.0, step=0.05, label="Temperature (0 = greedy)")
            max_new = gr.Slider(8, 1024, value=64, step=8, label="Max new tokens")
        message = gr.Textbox(label="Message", value="What is the opposite of hot?")
        go = gr.Button("Ask both", variant="primary")
        with gr.Row():
            base_out = gr.Textbox(label="Base model", lines=6)
            tuned_out = gr.Textbox(label="With the adapter", lines=6)

        @handler(None)  # the run picked on the Runs tab (this page's own state)
        def run_picked(user, run_id):
            return run_id

        selected_run.change(run_picked, selected_run, choice, api_name=False)

        @handler("use the Playground")
        def ask(user, choice, message, temperature, max_new):
            yield from compare(ctx, choice, message, temperature, max_new, user.owner)

        go.click(
            ask, [choice, message, temperature, max_new], [base_out, tuned_out], api_name=api_names.PLAYGROUND_REPLY
        )
    return {"choice": choice, "go": go}
