"""Build TRL's KTOTrainer: unpaired feedback (a prompt, one reply, a true/false label); with an adapter the
reference is the frozen starting policy, as for DPO."""

from __future__ import annotations

from data import tokens


def token_plan(tokenizer, training: dict, keep: str | None) -> tokens.Plan:
    """KTO tokenizes prompt + completion and keeps the first max_length tokens (the collator truncates); a row whose
    prompt fills them trains nothing, so the doctor shortens such prompts from their start or drops the row."""
    return tokens.Plan(max_length=training.get("max_length"), keep=keep)


def build(model, tokenizer, training: dict, train_ds, eval_ds, fmt: str, peft_config, callbacks, **_):
    from trainers import methods

    trainer = methods.get("kto").make_trainer(model, tokenizer, training, train_ds, eval_ds, peft_config, callbacks)
    return trainer, {"loss_mask": "completion_only"}
