"""Greedy generations from a base model plus an optional adapter, for held-out prompts."""

from __future__ import annotations

from evaluation.metrics import generations


def load(model_path: str, adapter: str | None = None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter or model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    return model.eval(), tokenizer


def reply(model, tokenizer, messages: list[dict], max_new_tokens: int = 32) -> str:
    """The assistant's greedy reply to a conversation (which must end with a user turn)."""
    return generations(model, tokenizer, [messages], max_new_tokens)[0]["reply"]


def first_prompt(messages: list[dict]) -> list[dict]:
    """Everything before the first assistant turn."""
    first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:first]
