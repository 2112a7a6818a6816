"""Build the reference-free preference trainers (ORPO, CPO and SimPO = CPO with loss_type simpo): one stage from
preference pairs, no frozen reference model.  TRL ships them under trl.experimental: this is the one place they
are imported (through the method table's class paths), and the run logs that they are experimental upstream."""

from __future__ import annotations

import logging
import os

from data import tokens

log = logging.getLogger("trainers")


def token_plan(tokenizer, training: dict, keep: str | None) -> tokens.Plan:
    """The prompt is kept whole and each reply cut to what max_length leaves (an empty reply when the prompt fills
    it): the doctor shortens such prompts from their start, or drops the pair."""
    return tokens.Plan(max_length=training.get("max_length"), keep="start")


def build(model, tokenizer, training: dict, train_ds, eval_ds, fmt: str, peft_config, callbacks, method: str, **_):
    from trainers import methods

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # said once, in our words, below
    entry = methods.get(method)
    log.warning(
        "%s runs TRL's %s, which TRL ships as experimental (trl.experimental).", entry.label, entry.trainer_name
    )
    trainer = entry.make_trainer(model, tokenizer, training, train_ds, eval_ds, peft_config, callbacks)
    return trainer, {"loss_mask": "completion_only"}
