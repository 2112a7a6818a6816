"""Build TRL's DPOTrainer; with an adapter the reference is the frozen starting policy."""

from __future__ import annotations

from data import tokens


def token_plan(tokenizer, training: dict, keep: str | None) -> tokens.Plan:
    """How DPOTrainer tokenizes and truncates pairs: per sequence to max_length, dropping pairs whose prompt alone
    fills it (keep_start); the doctor shortens such prompts from their start first."""
    return tokens.Plan(max_length=training.get("max_length"), keep=keep)


def build(model, tokenizer, training: dict, train_ds, eval_ds, fmt: str, peft_config, callbacks, **_):
    from trainers import methods

    # no ref_model: with PEFT the reference is a frozen copy of the starting adapter (or the base, adapters off)
    trainer = methods.get("dpo").make_trainer(model, tokenizer, training, train_ds, eval_ds, peft_config, callbacks)
    return trainer, {"loss_mask": "completion_only"}
