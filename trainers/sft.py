"""Build TRL's SFTTrainer with completion-only loss through the tokenizer's chat template."""

from __future__ import annotations

import logging

from data import tokens
from trainers.models import fallback_chat_template, use_fallback_chat_template

log = logging.getLogger("trainers")


def _markers(template: str | None) -> bool:
    from trl.chat_template_utils import has_generation_markers

    return bool(template) and has_generation_markers(template)


def _training_template(tokenizer) -> str | None:
    """TRL's training variant of the tokenizer's template (with {% generation %} markers), if it knows one."""
    from trl.chat_template_utils import get_training_chat_template

    try:
        return get_training_chat_template(tokenizer)
    except ValueError:
        return None


def supports_assistant_mask(tokenizer) -> bool:
    """True if the chat template has {% generation %} markers, or TRL knows a training variant of it."""
    if not tokenizer.chat_template:
        return False
    return _markers(tokenizer.chat_template) or _training_template(tokenizer) is not None


def token_plan(tokenizer, training: dict, keep: str | None) -> tokens.Plan:
    """How SFTTrainer will tokenize, mask and truncate rows (the data doctor measures with the same plan):
    the template it renders with (ours when the tokenizer has none; TRL's training variant when the tokenizer's
    has no generation markers), whether replies can be masked, and the user's loss switches."""
    template = fallback_chat_template(tokenizer)
    masks = _markers(template or tokenizer.chat_template)
    if not masks and template is None and training.get("assistant_only_loss") is not False:
        template = _training_template(tokenizer)
        masks = template is not None
    return tokens.Plan(
        max_length=training.get("max_length"),
        keep=keep,
        chat_template=template,
        assistant_masks=masks,
        assistant_only_loss=training.get("assistant_only_loss"),
        completion_only_loss=training.get("completion_only_loss"),
    )


def loss_mask_plan(tokenizer, fmt: str, training: dict) -> str:
    """How the loss is masked: assistant_only, completion_only (last turn) or full_sequence."""
    return token_plan(tokenizer, training, "start").loss(fmt)


def _last_turn(example: dict) -> dict:
    prompt, completion = tokens.last_turn(example["messages"])
    return {"prompt": prompt, "completion": completion}


def _as_prompt_completion(ds):
    """messages -> prompt/completion (the last assistant turn), kept as JSON so each row keeps its own keys."""
    from datasets import Json

    features = ds.features.copy()
    del features["messages"]
    features["prompt"], features["completion"] = Json(), Json()
    return ds.map(_last_turn, remove_columns=["messages"], features=features)


def build(model, tokenizer, training: dict, train_ds, eval_ds, fmt: str, peft_config, callbacks, **_):
    from trainers import methods

    if fmt in ("messages", "prompt_completion"):
        use_fallback_chat_template(tokenizer)
    plan = loss_mask_plan(tokenizer, fmt, training)
    args = dict(training)
    if fmt == "messages" and plan == "assistant_only":
        args["assistant_only_loss"] = True
    elif fmt == "messages" and plan == "completion_only":
        log.warning(
            "The chat template has no {% generation %} markers and TRL has no training variant of it: "
            "training on the last assistant turn of each conversation (prompt masked)."
        )
        train_ds = _as_prompt_completion(train_ds)
        if eval_ds is not None:
            eval_ds = _as_prompt_completion(eval_ds)
    trainer = methods.get("sft").make_trainer(model, tokenizer, args, train_ds, eval_ds, peft_config, callbacks)
    return trainer, {"loss_mask": plan}
