"""Build TRL's GRPOTrainer: the policy answers each prompt num_generations times, the config's rewards score the
replies (trainers/rewards.py), and the loss falls on the generated tokens only."""

from __future__ import annotations

import importlib.util
import logging

from core.errors import ConfigError
from data import tokens
from trainers import rewards as rewards_mod
from trainers.models import fallback_chat_template, use_fallback_chat_template

log = logging.getLogger("trainers")


def token_plan(tokenizer, training: dict, keep: str | None) -> tokens.Plan:
    """How GRPOTrainer renders prompts: through the tokenizer's chat template with the generation prompt (ours when
    the tokenizer has none).  GRPO 1.16 cuts no prompt (there is no max_prompt_length): max_length None."""
    return tokens.Plan(max_length=None, keep=keep, chat_template=fallback_chat_template(tokenizer))


def vllm_default() -> bool:
    """use_vllm when the config leaves it out: on when a CUDA GPU and vLLM are both there, else transformers'
    generate (CPU, or a GPU without vLLM)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def build(model, tokenizer, training: dict, train_ds, eval_ds, fmt: str, peft_config, callbacks, rewards=(), **_):
    from trainers import methods

    use_fallback_chat_template(tokenizer)
    args = dict(training)
    args.setdefault("use_vllm", vllm_default())
    # GRPO counts prompt + completion tokens itself (state.num_input_tokens_seen, logged as num_tokens); the
    # Trainer's own count finds no input_ids in GRPO's batches and would warn at every step.
    args["include_num_input_tokens_seen"] = "no"
    if args.get("reward_weights") is not None:
        raise ConfigError(
            "Give each reward its weight in rewards (e.g. {name: regex, ..., weight: 0.5}), "
            "not as training.reward_weights."
        )
    funcs, args["reward_weights"] = rewards_mod.build(list(rewards), tokenizer, args, train_ds.column_names)
    log.info(
        "Rewards: %s; replies generated with %s.",
        ", ".join(f"{f.__name__} x{w:g}" for f, w in zip(funcs, args["reward_weights"], strict=False)),
        "vLLM" if args["use_vllm"] else "transformers",
    )
    trainer = methods.get("grpo").make_trainer(
        model, tokenizer, args, train_ds, eval_ds, peft_config, callbacks, reward_funcs=funcs
    )
    return trainer, {"loss_mask": "completion_only"}
