"""Held-out metrics on completion tokens only: NLL / perplexity, preference accuracy and log-prob margin,
DPO implicit-reward accuracy against a reference, and greedy generations.

A row is split into a prompt and a completion the way TRL trains it: chat rows through the tokenizer's chat
template (the prompt is everything before the last assistant turn, rendered with the generation prompt),
text rows by concatenation with EOS appended. Only completion tokens are scored; prompt tokens never are.
Log-probabilities are sums over the completion's tokens (what DPO compares); NLL is the mean per token.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

MAX_LENGTH = 1024


def _chat(tokenizer, messages: list[dict], generation_prompt: bool, assistant_mask: bool = False) -> dict:
    out = tokenizer.apply_chat_template(
        messages,
        add_generation_prompt=generation_prompt,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=assistant_mask,
    )
    return {k: list(v) for k, v in out.items()}


def encode(tokenizer, prompt, completion, max_length: int = MAX_LENGTH) -> tuple[list[int], list[int]]:
    """(token ids of prompt + completion, mask: 1 on the completion tokens that are scored).

    Chat rows: with a template that marks assistant tokens ({% generation %}), exactly the tokens training
    computes loss on, in the completion; otherwise every token after the rendered prompt."""
    if isinstance(prompt, list) or isinstance(completion, list):
        prompt = prompt if isinstance(prompt, list) else ([{"role": "user", "content": prompt}] if prompt else [])
        completion = completion if isinstance(completion, list) else [{"role": "assistant", "content": completion}]
        prompt_ids = _chat(tokenizer, prompt, True)["input_ids"] if prompt else []
        marked = "{% generation %}" in (tokenizer.chat_template or "").replace("{%-", "{%").replace(" -%}", " %}")
        rendered = _chat(tokenizer, prompt + completion, False, assistant_mask=marked)
        full = rendered["input_ids"]
        assistant = rendered.get("assistant_masks") if marked else None
    else:
        prompt_ids = tokenizer(prompt or "", add_special_tokens=False)["input_ids"]
        full = tokenizer((prompt or "") + completion, add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None and (not full or full[-1] != tokenizer.eos_token_id):
            full = full + [tokenizer.eos_token_id]
        assistant = None
    n_prompt = 0  # templates may re-render the prompt once a reply follows: use the common prefix
    for a, b in zip(prompt_ids, full, strict=False):
        if a != b:
            break
        n_prompt += 1
    mask = [int(i >= n_prompt) for i in range(len(full))]
    if assistant and any(assistant[n_prompt:]):
        mask = [int(i >= n_prompt and bool(assistant[i])) for i in range(len(full))]
    if len(full) > max_length:  # keep the completion: cut the prompt from the left first
        cut = len(full) - max_length
        full, mask = full[cut:], mask[cut:]
    return full, mask


def split_row(row: dict) -> tuple[object, object]:
    """(prompt, completion) of an SFT row in TRL's forms: messages, prompt/completion, or text."""
    if "messages" in row:
        messages = row["messages"]
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        return messages[:last], [messages[last]]
    if "prompt" in row and "completion" in row:
        return row["prompt"], row["completion"]
    if "text" in row:
        return "", row["text"]
    raise ValueError(f"Cannot score a row with columns {sorted(row)}.")


def heldout_prompts(sft_rows: list[dict], pref_rows: list[dict], n: int) -> list:
    """The first `n` held-out prompts to generate from: instruction rows first, else preference pairs."""
    return [split_row(r)[0] for r in sft_rows[:n]] or [p["prompt"] for p in pref_rows[:n]]


def completion_logprobs(
    model, encoded: list[tuple[list[int], list[int]]], batch_size: int = 8
) -> list[tuple[float, int]]:
    """(sum of log-probs of completion tokens, number of completion tokens) for each encoded row."""
    import torch

    device = next(model.parameters()).device
    results: list[tuple[float, int]] = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        input_ids = torch.zeros((len(chunk), width), dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        scored = torch.zeros((len(chunk), width), dtype=torch.bool)
        for i, (ids, mask) in enumerate(chunk):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
            scored[i, : len(ids)] = torch.tensor(mask, dtype=torch.bool)
        scored[:, 0] = False  # token 0 has no prediction
        with torch.no_grad():
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        targets = input_ids[:, 1:].to(device)
        token_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        mask = scored[:, 1:].to(device)
        sums = (token_logp * mask).sum(-1)
        counts = mask.sum(-1)
        results += [(float(s), int(c)) for s, c in zip(sums.tolist(), counts.tolist(), strict=True)]
    return results


def heldout_nll(model, tokenizer, rows: Iterable[dict], max_length: int = MAX_LENGTH) -> dict:
    """Mean NLL per completion token and its perplexity over SFT rows."""
    encoded = [encode(tokenizer, *split_row(r), max_length=max_length) for r in rows]
    scores = completion_logprobs(model, encoded)
    tokens = sum(c for _, c in scores)
    nll = -sum(s for s, _ in scores) / tokens if tokens else float("nan")
    return {"nll": nll, "perplexity": math.exp(nll) if nll < 50 else float("inf"), "tokens": tokens}


def pair_logprobs(model, tokenizer, pairs: Iterable[dict], max_length: int = MAX_LENGTH) -> list[tuple[float, float]]:
    """(log p(chosen | prompt), log p(rejected | prompt)) for each preference pair, completion tokens only."""
    pairs = list(pairs)
    encoded = []
    for p in pairs:
        encoded += [encode(tokenizer, p["prompt"], p["chosen"], max_length)]
        encoded += [encode(tokenizer, p["prompt"], p["rejected"], max_length)]
    scores = completion_logprobs(model, encoded)
    return [(scores[2 * i][0], scores[2 * i + 1][0]) for i in range(len(pairs))]


def preference_metrics(policy: list[tuple[float, float]], reference: list[tuple[float, float]] | None, beta=0.1):
    """Accuracy and mean margin of log p(chosen) - log p(rejected); with a reference, DPO's implicit reward
    beta * (log-ratio chosen - log-ratio rejected): its accuracy (> 0) and mean margin."""
    n = len(policy)
    if not n:
        return {}
    margins = [c - r for c, r in policy]
    out = {
        "preference_accuracy": sum(m > 0 for m in margins) / n,
        "logprob_margin": sum(margins) / n,
        "pairs": n,
    }
    if reference is not None:
        rewards = [beta * ((pc - rc) - (pr - rr)) for (pc, pr), (rc, rr) in zip(policy, reference, strict=True)]
        out["reward_accuracy"] = sum(r > 0 for r in rewards) / n
        out["reward_margin"] = sum(rewards) / n
    return out


def generations(model, tokenizer, prompts: list, max_new_tokens: int = 48) -> list[dict]:
    """Greedy replies (same max tokens for every model) and their length in tokens."""
    import torch

    device = next(model.parameters()).device
    out = []
    for prompt in prompts:
        if isinstance(prompt, list):
            inputs = tokenizer.apply_chat_template(
                prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        else:
            inputs = tokenizer(prompt, return_tensors="pt")
        inputs = {k: v.to(device) for k, v in inputs.items()}
        with torch.no_grad():
            ids = model.generate(
                **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        new = ids[0][inputs["input_ids"].shape[1] :]
        out.append({"reply": tokenizer.decode(new, skip_special_tokens=True).strip(), "tokens": int(len(new))})
    return out
