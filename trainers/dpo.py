"""Build TRL's DPOTrainer; with an adapter the reference is the frozen starting policy."""

from __future__ import annotations

from data import tokens


def token_plan(tokenizer, training: dict, keep: str | None) -> tokens.Plan:
    """How DPOTrainer tokenizes and truncates pairs: per sequence to max_length, dropping pairs whose prompt alone
    fills it (keep_start); the doctor shortens such prompts from their start first."""
    return tokens.Plan(max_length=training.get("max_length"), keep=keep)


def build(model, tokenizer, training: dict, train_ds, eval_ds, fmt: str, peft_config, callbacks, **_):
    from trl import DPOConfig, DPOTrainer

    trainer = DPOTrainer(
        model=model,
        ref_model=None,  # PEFT: a frozen copy of the starting adapter (or the base with adapters off)
        args=DPOConfig(**training),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    return trainer, {"loss_mask": "completion_only"}
