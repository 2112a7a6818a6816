"""Build TRL's SFTTrainer with completion-only loss through the tokenizer's chat template."""

from __future__ import annotations

import logging

from data.convert import last_turn_as_completion
from trainers.demo_model import CHAT_TEMPLATE

log = logging.getLogger("trainers")


def supports_assistant_mask(tokenizer) -> bool:
    """True if the chat template has {% generation %} markers, or TRL knows a training variant of it."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if not tokenizer.chat_template:
        return False
    if has_generation_markers(tokenizer.chat_template):
        return True
    try:
        get_training_chat_template(tokenizer)
    except ValueError:
        return False
    return True


def loss_mask_plan(tokenizer, fmt: str, training: dict) -> str:
    """How the loss is masked: assistant_only, completion_only (last turn) or full_sequence."""
    if fmt == "text":
        return "full_sequence"
    if fmt == "prompt_completion":
        return "full_sequence" if training.get("completion_only_loss") is False else "completion_only"
    if training.get("assistant_only_loss") is False:
        return "full_sequence"
    return "assistant_only" if supports_assistant_mask(tokenizer) else "completion_only"


def build(model, tokenizer, training: dict, train_ds, eval_ds, fmt: str, peft_config, callbacks):
    from trl import SFTConfig, SFTTrainer

    if fmt in ("messages", "prompt_completion") and not tokenizer.chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE.read_text(encoding="utf-8")
        log.warning("The tokenizer has no chat template; using ChatML (templates/chat/chatml_generation.jinja).")
    plan = loss_mask_plan(tokenizer, fmt, training)
    args = dict(training)
    if fmt == "messages" and plan == "assistant_only":
        args["assistant_only_loss"] = True
    elif fmt == "messages" and plan == "completion_only":
        log.warning(
            "The chat template has no {% generation %} markers and TRL has no training variant of it: "
            "training on the last assistant turn of each conversation (prompt masked)."
        )
        train_ds = train_ds.map(last_turn_as_completion, remove_columns=["messages"])
        if eval_ds is not None:
            eval_ds = eval_ds.map(last_turn_as_completion, remove_columns=["messages"])
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(**args),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    return trainer, {"loss_mask": plan}
