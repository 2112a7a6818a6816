"""Build TRL's RewardTrainer (a scoring head on the base, trained on preference pairs), and load a trained reward
model as a `Scorer`: the judge of `python -m evaluation score` and a reward for GRPO (trainers/rewards.py imports
`load_scorer` lazily).

A reward model reads prompt + reply rendered as one sequence (the chat template, no generation prompt; plain text
gets EOS) and returns one number, read at its last token.  RewardTrainer 1.16 drops a pair whose chosen or
rejected sequence is longer than max_length (it truncates nothing), so the data doctor counts with
`drop_overlong` and shortens such a pair's prompt from its start first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.runfolder import RunFolder, adapter_location
from data import tokens
from trainers import methods
from trainers.models import fallback_chat_template, resolve_model_path, use_fallback_chat_template

REWARD_TASK = "SEQ_CLS"  # the PEFT task type of a reward model's adapter (trainers/methods.py peft_task)


def token_plan(tokenizer, training: dict, keep: str | None) -> tokens.Plan:
    """How RewardTrainer tokenizes pairs: prompt + chosen and prompt + rejected, each whole; a pair with a sequence
    over max_length is dropped (reward_trainer.py `_prepare_dataset` filter), never truncated."""
    return tokens.Plan(
        max_length=training.get("max_length"),
        keep=keep,
        chat_template=fallback_chat_template(tokenizer),
        drop_overlong=True,
    )


def build(model, tokenizer, training: dict, train_ds, eval_ds, fmt: str, peft_config, callbacks, **_):
    use_fallback_chat_template(tokenizer)  # saved with the adapter: the scorer renders replies the same way
    trainer = methods.get("reward").make_trainer(model, tokenizer, training, train_ds, eval_ds, peft_config, callbacks)
    return trainer, {"loss_mask": tokens.PAIR}


# --- the scorer -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Located:
    """Where a reward model's weights are: the base it scores with (None: `weights` is a whole model), the
    adapter or model folder (or Hub id), and the tokenizer's."""

    target: str
    base: str | None
    weights: str
    tokenizer: str


def _as_messages(value, role: str) -> list[dict]:
    if isinstance(value, list):
        return value
    return [{"role": role, "content": value}] if value else []


@dataclass
class Scorer:
    """A trained reward model: `score(prompts, completions)` -> one float per reply (higher = preferred)."""

    model: Any
    tokenizer: Any
    device: str
    max_length: int | None = None  # longer sequences keep their end (the reply); `truncated` counts them
    batch_size: int = 8
    source: str = ""
    truncated: int = field(default=0, init=False)

    def encode(self, prompt, completion) -> list[int]:
        """Token ids of prompt + completion as RewardTrainer tokenizes a pair's side: conversations through the
        chat template (a plain-string reply becomes the assistant's turn), plain text with EOS appended."""
        tok = self.tokenizer
        if isinstance(prompt, list) or isinstance(completion, list):
            messages = _as_messages(prompt, "user") + _as_messages(completion, "assistant")
            ids = tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        else:
            eos = tok.eos_token or ""
            text = (prompt or "") + completion
            ids = tok(text=text if text.endswith(eos) else text + eos)["input_ids"]
        ids = list(ids)
        if self.max_length and len(ids) > self.max_length:
            self.truncated += 1
            ids = ids[-self.max_length :]
        return ids

    def score(self, prompts: list, completions: list) -> list[float]:
        """The reward of each completion after its prompt.  prompts: conversations (lists of messages) or plain
        strings; completions: lists of messages (the reply turns) or strings."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions: give one prompt per reply.")
        import torch

        encoded = [self.encode(p, c) for p, c in zip(prompts, completions, strict=True)]
        pad = self.tokenizer.pad_token_id
        out: list[float] = []
        for start in range(0, len(encoded), self.batch_size):
            chunk = encoded[start : start + self.batch_size]
            width = max(len(ids) for ids in chunk)
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            attention = torch.zeros_like(input_ids)
            for i, ids in enumerate(chunk):  # right padding, as RewardTrainer's collator
                input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                attention[i, : len(ids)] = 1
            with torch.no_grad():
                logits = self.model(
                    input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device)
                ).logits
            out += logits[:, 0].float().tolist()
        return out

    def score_pairs(self, prompts: list, chosen: list, rejected: list) -> list[tuple[float, float]]:
        """(reward of chosen, reward of rejected) for each preference pair."""
        scores = self.score(list(prompts) * 2, list(chosen) + list(rejected))
        n = len(prompts)
        return list(zip(scores[:n], scores[n:], strict=True))


def _not_reward(target: str, what: str) -> ConfigError:
    return ConfigError(
        f"{target} is not a reward model ({what}): score with the run folder of a `method: reward` run, its "
        "adapter folder, or a reward model's Hub id."
    )


def _check_adapter(target: str, config: dict) -> None:
    task = str(config.get("task_type") or "")
    if task.removeprefix("TaskType.") != REWARD_TASK:
        raise _not_reward(target, f"its adapter's task type is {task or 'not set'}, not {REWARD_TASK}")


def _check_model(target: str, config: dict) -> None:
    archs = config.get("architectures") or []
    labels = config.get("num_labels", len(config.get("id2label") or {}) or None)
    if not any(a.endswith("ForSequenceClassification") for a in archs) or labels not in (1, None):
        raise _not_reward(target, f"it is a {', '.join(archs) or 'model of no architecture'}")


def locate(path_or_id) -> Located:
    """Check that `path_or_id` is a reward model (a reward run's folder, its adapter or model folder, or a Hub
    id of a SEQ_CLS adapter or a one-label sequence classifier) and say where its parts are; ConfigError, one
    sentence, when it is not.  Loads nothing heavy."""
    target = str(path_or_id)
    path = Path(target).expanduser()
    if path.exists():
        return _locate_local(target, path)
    if target.startswith((".", "/", "~")) or target.count("/") > 1:
        raise ConfigError(f"{target} does not exist: give the run folder of a reward run or a reward model's Hub id.")
    return _locate_hub(target)


def _locate_local(target: str, path: Path) -> Located:
    folder = RunFolder(path)
    base = None
    if folder.is_run():
        summary = folder.summary()
        method = methods.METHODS.get(summary.method or "")
        if method is not None and method.output != "reward_model":
            raise _not_reward(target, f"it was trained with {method.label}")
        if not summary.succeeded:
            raise ConfigError(
                f"{target} is a reward run that has not finished (status {summary.status}): nothing to score with yet."
            )
        base = summary.model_path
    weights = adapter_location(path)
    if weights is None:
        raise ConfigError(
            f"{target} holds no reward model (no adapter_config.json or config.json): give a reward run's folder."
        )
    adapter_config = weights / "adapter_config.json"
    if adapter_config.is_file():
        config = json.loads(adapter_config.read_text(encoding="utf-8"))
        _check_adapter(target, config)
        base = resolve_model_path(base or config.get("base_model_name_or_path") or "")
        return Located(target, base, str(weights), str(weights))
    _check_model(target, json.loads((weights / "config.json").read_text(encoding="utf-8")))
    return Located(target, None, str(weights), str(weights))


def _locate_hub(target: str) -> Located:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        config = json.loads(Path(hf_hub_download(target, "adapter_config.json")).read_text(encoding="utf-8"))
    except EntryNotFoundError:
        model_config = json.loads(Path(hf_hub_download(target, "config.json")).read_text(encoding="utf-8"))
        _check_model(target, model_config)
        return Located(target, None, target, target)
    _check_adapter(target, config)
    return Located(target, resolve_model_path(config["base_model_name_or_path"]), target, target)


def load_scorer(path_or_id, device: str | None = None) -> Scorer:
    """The reward model at `path_or_id` (a reward run's folder, its adapter/model folder, or a Hub id), ready to
    score on `device` (default: this process's GPU when there is one, else the CPU)."""
    return load_located(locate(path_or_id), device)


def load_located(where: Located, device: str | None = None) -> Scorer:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl.trainer.reward_trainer import suppress_seqcls_warning

    if device is None:  # this process's GPU (each rank of a launcher has its own), else the CPU
        device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    try:
        tokenizer = AutoTokenizer.from_pretrained(where.tokenizer)
    except OSError:
        tokenizer = AutoTokenizer.from_pretrained(where.base or where.weights)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    cuda_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if cuda_bf16 else torch.float32
    with suppress_seqcls_warning():  # a causal LM base loads without its LM head and with a new score head
        model = AutoModelForSequenceClassification.from_pretrained(
            where.base or where.weights, num_labels=1, dtype=dtype
        )
    model.config.pad_token_id = tokenizer.pad_token_id  # as in training: the score is read at the last real token
    if where.base is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, where.weights)  # LoRA weights and the trained score head
    model.to(device).eval()
    limit = getattr(model.config, "max_position_embeddings", None)
    return Scorer(model, tokenizer, device, max_length=limit, source=where.target)
