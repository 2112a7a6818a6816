"""Playground: chat with the base model and with the adapter side by side, same turns, same decoding, streamed.

The adapter is one of your finished runs (picked in a dropdown, preselected from the Runs tab) or a Hub adapter id.
Every request is authorized (resolve_adapter, with the caller as owner) before the model cache
(evaluation.chat.ModelCache, one per app in AppContext.chat_cache) is asked, so a model another user loaded is
never served to someone who may not name it.
"""

from __future__ import annotations

from collections import deque

import gradio as gr

from core.errors import StudioError
from core.runfolder import RunFolder, read_json
from evaluation import chat
from jobs import access
from jobs.api import JobError
from trainers.models import is_scorer, refuse_scorer, resolve_model_path
from ui import api_names, fmt
from ui.context import DEMO_QUESTION, AppContext
from ui.handlers import handler, sign_in_sentence

NO_ADAPTERS = (
    "You have no finished run with an adapter yet: train one on the Train tab (the demo SFT takes about a minute), "
    "or type a Hub adapter id."
)


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


def loaded(ctx: AppContext, choice: str, owner: str | None) -> chat.Entry:
    """The cached model for `choice`, authorized first: the cache is only asked for what `owner` may name."""
    base, adapter = resolve_adapter(ctx, choice, owner)
    return ctx.chat_cache.get(resolve_model_path(base), adapter)


def adapter_choices(ctx: AppContext, owner: str | None) -> list[tuple[str, str]]:
    """(label, run id) of the owner's succeeded runs that left a chat adapter, newest first; reward models
    (scorers) are left out.  Label: name · method · date."""
    found = []
    for run in reversed(ctx.queue.list(owner)) if owner else []:
        if run.status != "succeeded" or not run.run_dir:
            continue
        folder = RunFolder(run.run_dir)
        adapter = folder.adapter()
        if adapter is None or not (adapter / "adapter_config.json").is_file():
            continue
        if is_scorer(read_json(adapter / "adapter_config.json")):
            continue
        when = fmt.when(run.finished_at or run.created_at)
        found.append((" · ".join(x for x in (run.name, folder.summary().method or "", when) if x), run.id))
    return found


def _history_of(history, side: int) -> list[dict]:
    """Messages from the API's history: earlier turns as [message, base reply, adapter reply]."""
    messages = []
    for turn in history or []:
        if isinstance(turn, list | tuple) and len(turn) == 3:
            messages += [{"role": "user", "content": str(turn[0])}, {"role": "assistant", "content": str(turn[side])}]
    return messages


def compare(
    ctx: AppContext,
    choice: str,
    message: str,
    temperature: float,
    max_new_tokens: int,
    owner: str | None,
    base_history=None,
    tuned_history=None,
    system: str = "",
    top_p: float = 1.0,
    seed: int = 0,
):
    """Yields (base reply, adapter reply) as both stream: each side continues its own history of the same user
    turns, with the same decoding.  Authorization, then the cache, then generation."""
    message = (message or "").strip()
    if not message:
        raise StudioError("Type a message to send.")
    entry = loaded(ctx, choice, owner)
    sampling = chat.Sampling(float(temperature), float(top_p), int(max_new_tokens), int(seed or 0))
    yield from chat.both_replies(
        entry,
        chat.conversation(base_history, message, system),
        chat.conversation(tuned_history, message, system),
        sampling,
    )


def build(ctx: AppContext, selected_run):
    with gr.Tab("Playground") as tab:
        with gr.Row(equal_height=True):
            choice = gr.Dropdown(
                choices=[],
                value=None,
                allow_custom_value=True,
                label="Adapter: one of your finished runs, or a Hub adapter id",
                scale=4,
            )
            system = gr.Textbox(label="System prompt (optional)", scale=4)
        hint = gr.Markdown()
        with gr.Row():
            temperature = gr.Slider(0, 1.5, value=0.0, step=0.05, label="Temperature (0 = greedy)")
            top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p")
            max_new = gr.Slider(8, 1024, value=64, step=8, label="Max new tokens")
            seed = gr.Number(value=0, precision=0, minimum=0, label="Seed (same for both)")
        with gr.Row(equal_height=True):
            base_chat = gr.Chatbot(label="Base model", height=380, elem_id="playground-base")
            tuned_chat = gr.Chatbot(label="With the adapter", height=380, elem_id="playground-tuned")
        with gr.Row(equal_height=True):
            message = gr.Textbox(value=DEMO_QUESTION, label="Message", scale=6, elem_id="playground-message")
            send = gr.Button("Send to both", variant="primary", scale=1, min_width=120)
            clear = gr.ClearButton([base_chat, tuned_chat], value="Clear", scale=1, min_width=90)

        @handler(None)  # anyone may look; the list is the caller's own runs
        def refresh(user, current):
            if not user.owner:
                return gr.Dropdown(choices=[], value=current), sign_in_sentence("use the Playground")
            found = adapter_choices(ctx, user.owner)
            value = current or (found[0][1] if found else None)
            return gr.Dropdown(choices=found, value=value), "" if found else NO_ADAPTERS

        tab.select(refresh, choice, [choice, hint], api_name=False, show_progress="hidden")

        @handler(None)  # the run picked on the Runs tab (this page's own state)
        def run_picked(user, run_id):
            found = adapter_choices(ctx, user.owner) if user.owner else []
            return gr.Dropdown(choices=found, value=run_id or None)

        selected_run.change(run_picked, selected_run, choice, api_name=False)

        @handler("use the Playground")
        def ask(user, choice, message, system, base_history, tuned_history, temperature, top_p, max_new, seed):
            base_history, tuned_history = list(base_history or []), list(tuned_history or [])
            turn = {"role": "user", "content": (message or "").strip()}
            replies = compare(
                ctx, choice, message, temperature, max_new, user.owner, base_history, tuned_history,
                system, top_p, seed,
            )  # fmt: skip
            for base, tuned in replies:
                yield (
                    [*base_history, turn, {"role": "assistant", "content": base}],
                    [*tuned_history, turn] + ([{"role": "assistant", "content": tuned}] if tuned else []),
                    "",
                )

        inputs = [choice, message, system, base_chat, tuned_chat, temperature, top_p, max_new, seed]
        for event in (send.click, message.submit):
            event(ask, inputs, [base_chat, tuned_chat, message], api_name=False)
        _api(ctx)  # inside the tab: an endpoint between two tabs would split the tab bar in two

    return {"choice": choice, "send": send, "clear": clear, "base_chat": base_chat, "tuned_chat": tuned_chat}


def _api(ctx: AppContext):
    @handler("use the Playground")
    def playground_reply(
        user,
        choice: str,
        message: str,
        temperature: float = 0.0,
        max_new_tokens: int = 64,
        history: list | None = None,
        system: str = "",
        top_p: float = 1.0,
        seed: int = 0,
    ) -> tuple[str, str]:
        """Both replies to `message` (run id or Hub adapter id first); `history` holds the earlier turns as
        [message, base reply, adapter reply]; the same decoding for both sides."""
        replies = compare(
            ctx, choice, message, temperature, max_new_tokens, user.owner,
            _history_of(history, 1), _history_of(history, 2), system, top_p, seed,
        )  # fmt: skip
        return deque(replies, maxlen=1)[0]  # the finished replies

    gr.api(playground_reply, api_name=api_names.PLAYGROUND_REPLY)
