"""Held-out metrics on completion tokens only: NLL / perplexity, preference accuracy and log-prob margin,
DPO implicit-reward accuracy against a reference, and greedy generations.

A row is split into a prompt and a completion the way TRL trains it: chat rows through the tokenizer's chat
template (the prompt is everything before the last assistant turn, rendered with the generation prompt),
text rows by concatenation with EOS appended. Only completion tokens are scored; prompt tokens never are.
Log-probabilities are sums over the completion's tokens (what DPO compares); NLL is the mean per token.

Rows longer than max_length are cut from the left so the whole completion is scored (training keeps the start by
default instead: trainers/methods.py Method.truncation_side). Every cut is counted, and the report says it:
- an instruction row whose prompt is cut keeps the rest of its prompt (`rows_prompt_cut`); one whose completion
  alone fills max_length loses its whole prompt and the start of its completion, and the rest is still scored
  (`rows_reply_cut`): NLL per token compares every model on the same tokens either way;
- a preference pair is cut by the same tokens before the chosen and the rejected completion, so both are scored
  after the same prompt tail (`pairs_prompt_cut`); a pair whose longer completion alone fills max_length would be
  compared with no prompt at all and on parts of its completions, so it is not scored (`pairs_excluded`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

MAX_LENGTH = 1024
PROMPT_CUT, REPLY_CUT, EXCLUDED = "prompt_cut", "reply_cut", "excluded"


class PairScore(NamedTuple):
    """log p(chosen | prompt), log p(rejected | prompt), and how the pair was cut to max_length (None: not cut,
    PROMPT_CUT, or EXCLUDED: not scored, both log-probabilities NaN)."""

    chosen: float
    rejected: float
    cut: str | None = None


def _chat(tokenizer, messages: list[dict], generation_prompt: bool, assistant_mask: bool = False) -> dict:
    out = tokenizer.apply_chat_template(
        messages,
        add_generation_prompt=generation_prompt,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=assistant_mask,
    )
    return {k: list(v) for k, v in out.items()}


def encode_full(tokenizer, prompt, completion) -> tuple[list[int], list[int], int]:
    """(token ids of prompt + completion, mask: 1 on the completion tokens that are scored, number of prompt
    tokens at the start), not cut to any max_length.

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
    return full, mask, n_prompt


def _cut_kind(cut: int, n_prompt: int) -> str | None:
    """None (not cut), PROMPT_CUT (part of the prompt is left) or REPLY_CUT (no prompt token is left, and the
    completion's first token, which then has nothing before it, or more is not scored)."""
    if cut <= 0:
        return None
    return PROMPT_CUT if cut < n_prompt else REPLY_CUT


def encode_cut(tokenizer, prompt, completion, max_length: int = MAX_LENGTH) -> tuple[list[int], list[int], str | None]:
    """encode() and how the row was cut: None, PROMPT_CUT or REPLY_CUT."""
    full, mask, n_prompt = encode_full(tokenizer, prompt, completion)
    cut = max(0, len(full) - max_length)  # keep the completion: cut the prompt from the left first
    return full[cut:], mask[cut:], _cut_kind(cut, n_prompt)


def encode(tokenizer, prompt, completion, max_length: int = MAX_LENGTH) -> tuple[list[int], list[int]]:
    """(token ids of prompt + completion, mask: 1 on the completion tokens that are scored), at most max_length
    tokens: a longer row is cut from the left (its prompt first) so its completion is scored whole."""
    ids, mask, _ = encode_cut(tokenizer, prompt, completion, max_length)
    return ids, mask


def encode_pair(tokenizer, prompt, chosen, rejected, max_length: int = MAX_LENGTH):
    """(chosen encoded, rejected encoded, cut) for a preference pair.  Both sides lose the same prompt tokens
    from the left (those the longer side must lose), so both completions follow the same prompt tail; cut is
    None, PROMPT_CUT, or EXCLUDED when the longer completion alone fills max_length (no prompt would be left)."""
    c_ids, c_mask, c_prompt = encode_full(tokenizer, prompt, chosen)
    r_ids, r_mask, r_prompt = encode_full(tokenizer, prompt, rejected)
    cut = max(0, max(len(c_ids), len(r_ids)) - max_length)
    kind = _cut_kind(cut, min(c_prompt, r_prompt))
    kind = EXCLUDED if kind == REPLY_CUT else kind
    return (c_ids[cut:], c_mask[cut:]), (r_ids[cut:], r_mask[cut:]), kind


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
    """Mean NLL per completion token and its perplexity over SFT rows, and how many rows were cut to max_length
    (rows_prompt_cut: part of the prompt cut; rows_reply_cut: the whole prompt and the completion's start)."""
    encoded, cuts = [], []
    for row in rows:
        ids, mask, cut = encode_cut(tokenizer, *split_row(row), max_length=max_length)
        encoded.append((ids, mask))
        cuts.append(cut)
    scores = completion_logprobs(model, encoded)
    tokens = sum(c for _, c in scores)
    nll = -sum(s for s, _ in scores) / tokens if tokens else float("nan")
    return {
        "nll": nll,
        "perplexity": math.exp(nll) if nll < 50 else float("inf"),
        "tokens": tokens,
        "rows": len(encoded),
        "rows_prompt_cut": cuts.count(PROMPT_CUT),
        "rows_reply_cut": cuts.count(REPLY_CUT),
        "max_length": max_length,
    }


def pair_logprobs(model, tokenizer, pairs: Iterable[dict], max_length: int = MAX_LENGTH) -> list[PairScore]:
    """PairScore(log p(chosen | prompt), log p(rejected | prompt), cut) for each preference pair, completion
    tokens only; an EXCLUDED pair (encode_pair) is not scored: NaN, NaN."""
    encoded, cuts = [], []
    for p in pairs:
        chosen, rejected, cut = encode_pair(tokenizer, p["prompt"], p["chosen"], p["rejected"], max_length)
        cuts.append(cut)
        if cut != EXCLUDED:
            encoded += [chosen, rejected]
    scores = iter(completion_logprobs(model, encoded))
    nan = float("nan")
    return [
        PairScore(nan, nan, cut) if cut == EXCLUDED else PairScore(next(scores)[0], next(scores)[0], cut)
        for cut in cuts
    ]


def preference_metrics(policy: list[tuple[float, float]], reference: list[tuple[float, float]] | None, beta=0.1):
    """Accuracy and mean margin of log p(chosen) - log p(rejected); with a reference, DPO's implicit reward
    beta * (log-ratio chosen - log-ratio rejected): its accuracy and mean margin.

    A pair whose implicit reward margin is exactly 0 (the model scores it exactly as the reference does, e.g.
    the reference against itself) is a tie, not a wrong preference: reward_accuracy is the share of the decided
    pairs (margin != 0) with a margin > 0, absent when no pair is decided, and reward_ties counts the ties.
    reward_accuracy_trl is TRL's rewards/accuracies rule, (chosen > rejected).mean() over every pair, which
    counts ties as wrong.  Pairs are PairScores or (chosen, rejected) tuples; EXCLUDED pairs are counted in
    pairs_excluded and left out of every mean (pairs counts the scored ones)."""
    if not policy:
        return {}
    cuts = [getattr(p, "cut", None) for p in policy]
    scored = [i for i, cut in enumerate(cuts) if cut != EXCLUDED]
    n = len(scored)
    out = {"pairs": n, "pairs_prompt_cut": cuts.count(PROMPT_CUT), "pairs_excluded": len(policy) - n}
    if not n:
        return out
    margins = [policy[i][0] - policy[i][1] for i in scored]
    out.update(preference_accuracy=sum(m > 0 for m in margins) / n, logprob_margin=sum(margins) / n)
    if reference is not None:
        rewards = [beta * ((policy[i][0] - reference[i][0]) - (policy[i][1] - reference[i][1])) for i in scored]
        wins, ties = sum(r > 0 for r in rewards), sum(r == 0 for r in rewards)
        if n > ties:
            out["reward_accuracy"] = wins / (n - ties)
        out["reward_ties"] = ties
        out["reward_accuracy_trl"] = wins / n
        out["reward_margin"] = sum(rewards) / n
    return out


def _end_ids(model, tokenizer) -> set[int]:
    ends = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ends = set(ends) if isinstance(ends, list | tuple | set) else {ends}
    return {int(i) for i in ends | {tokenizer.eos_token_id, tokenizer.pad_token_id} if i is not None}


def reply_text(tokenizer, new: list[int], end_ids: set[int]) -> str:
    """What a reply of `new` token ids shows: its text, stripped; "" only when the model generated nothing but
    its end token; a reply without visible text keeps what it is made of (whitespace, or special tokens that
    decoding would hide), so it never reads as empty beside the tokens it was counted for."""
    text = tokenizer.decode(new, skip_special_tokens=True)
    if text.strip():
        return text.strip()
    body = list(new)
    while body and body[-1] in end_ids:
        body.pop()
    if not body:
        return ""
    return text or tokenizer.decode(body, skip_special_tokens=False)


def generations(model, tokenizer, prompts: list, max_new_tokens: int = 48) -> list[dict]:
    """Greedy replies (same max tokens for every model) and their length in tokens: every generated token, the
    end token included (reply_text says what a reply without visible text shows)."""
    import torch

    device = next(model.parameters()).device
    end_ids = _end_ids(model, tokenizer)
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
        new = [int(i) for i in ids[0][inputs["input_ids"].shape[1] :]]
        out.append({"reply": reply_text(tokenizer, new, end_ids), "tokens": len(new)})
    return out
