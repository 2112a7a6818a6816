"""What training keeps of each row: its tokens and its loss tokens under the trainer's own rules.

The doctor measures every row the way TRL 1.16 will tokenize, mask and truncate it (sft_trainer.py
`tokenize_fn` / `build_labels` / `truncate`, dpo_trainer.py `tokenize_fn` and its keep_start filter), so the rows
it calls trainable are exactly the rows that train:

- chat rows render through the chat template with the row's `tools`; assistant-only loss counts the template's
  `{% generation %}` tokens, completion-only loss the tokens after the common prefix of prompt and prompt +
  completion, plain text every token (+ EOS);
- truncation keeps the first (or last) `max_length` tokens of each sequence; a row none of whose loss tokens
  survive is dropped (SFT would train on nothing, DPO would drop the pair after tokenizing it);
- a row with a prompt (a preference pair, or prompt/completion data with completion-only loss) whose prompt
  leaves too little room for its reply has its prompt shortened from the start (oldest turns first, then the
  start of its first remaining turn) so that the reply fits: what TRL's own `keep_end` prompt truncation did
  before 1.0, and what a reply needs (its prompt's end).
"""

from __future__ import annotations

from dataclasses import dataclass

ASSISTANT_ONLY, COMPLETION_ONLY, FULL_SEQUENCE, PAIR = "assistant_only", "completion_only", "full_sequence", "pair"
ELLIPSIS = "…"


@dataclass(frozen=True)
class Plan:
    """How the trainer turns a converted row into tokens; the trainers layer fills it from the run's config."""

    max_length: int | None = None
    keep: str | None = "start"  # "start" / "end": the side truncation keeps; None: nothing is cut (packing splits)
    chat_template: str | None = None  # the template training renders with, when not the tokenizer's own
    assistant_masks: bool = True  # the template marks assistant tokens ({% generation %})
    assistant_only_loss: bool | None = None  # SFTConfig's value (None = ours: on when the template marks replies)
    completion_only_loss: bool | None = None  # SFTConfig's value (None = TRL's: on for prompt/completion data)
    shorten_prompts: bool = True  # pairs: cut a too-long prompt from its start instead of losing the pair
    drop_overlong: bool = False  # a pair with a sequence over max_length is dropped whole (RewardTrainer's filter)

    def loss(self, form: str) -> str:
        """The loss mask for data in TRL form `form` (messages, prompt_completion, text, preference, prompts)."""
        if form in ("preference", "prompts"):
            return PAIR
        if form == "text":
            return FULL_SEQUENCE
        if form == "prompt_completion":
            return FULL_SEQUENCE if self.completion_only_loss is False else COMPLETION_ONLY
        if self.assistant_only_loss is False:
            return FULL_SEQUENCE
        return ASSISTANT_ONLY if self.assistant_masks else COMPLETION_ONLY

    def window(self, n: int) -> tuple[int, int]:
        """[start, end) of a sequence of n tokens that truncation keeps."""
        if not self.max_length or self.keep is None or n <= self.max_length:
            return 0, n
        return (0, self.max_length) if self.keep == "start" else (n - self.max_length, n)


@dataclass
class Measure:
    tokens: int  # the (longest) sequence's length before truncation
    loss: int  # loss tokens left after truncation (a pair: the fewer of chosen's and rejected's)
    prompt: int = 0  # prompt tokens (0 for plain text and assistant-only conversations)
    shortened: dict | None = None  # the row's columns rewritten with a shortened prompt, when it was shortened


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _chat(tokenizer, plan: Plan, messages, tools, **kwargs) -> dict:
    return tokenizer.apply_chat_template(
        messages, tools=tools, chat_template=plan.chat_template, tokenize=True, return_dict=True, **kwargs
    )


def _tools(row: dict):
    import json

    tools = row.get("tools")
    return json.loads(tools) if isinstance(tools, str) else tools


def _after_prefix(plan: Plan, prompt_len: int, n: int) -> int:
    start, end = plan.window(n)
    return max(0, end - max(start, prompt_len))


def _prompt_ids(tokenizer, plan: Plan, prompt, tools) -> list[int]:
    """The prompt alone as TRL tokenizes it: plain text, or the chat template with the generation prompt."""
    if isinstance(prompt, str):
        return tokenizer(prompt)["input_ids"]
    return _chat(tokenizer, plan, prompt, tools, add_generation_prompt=True)["input_ids"]


def _sequence_ids(tokenizer, plan: Plan, prompt, completion, tools) -> list[int]:
    """Prompt + completion as TRL tokenizes it; plain strings (data.chat_template: false) get the EOS TRL adds."""
    if isinstance(prompt, str):
        eos = tokenizer.eos_token or ""
        return tokenizer(prompt + (completion if completion.endswith(eos) else completion + eos))["input_ids"]
    return _chat(tokenizer, plan, prompt + completion, tools)["input_ids"]


def _completion(tokenizer, plan: Plan, prompt, completion, tools) -> Measure:
    ids = _sequence_ids(tokenizer, plan, prompt, completion, tools)
    plen = common_prefix(_prompt_ids(tokenizer, plan, prompt, tools), ids)
    return Measure(len(ids), _after_prefix(plan, plen, len(ids)), plen)


def last_turn(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:last], [messages[last]]


def _pair(tokenizer, plan: Plan, row: dict, tools) -> Measure:
    p_ids = _prompt_ids(tokenizer, plan, row["prompt"], tools)
    c_ids = _sequence_ids(tokenizer, plan, row["prompt"], row["chosen"], tools)
    r_ids = _sequence_ids(tokenizer, plan, row["prompt"], row["rejected"], tools)
    plen = min(common_prefix(p_ids, c_ids), common_prefix(p_ids, r_ids))
    if plan.max_length and plan.drop_overlong and max(len(c_ids), len(r_ids)) > plan.max_length:
        loss = 0  # the trainer drops pairs longer than max_length
    elif plan.max_length and plan.keep == "start" and plen >= plan.max_length:
        loss = 0  # TRL drops the pair: its prompt alone fills max_length
    else:
        loss = min(_after_prefix(plan, plen, len(c_ids)), _after_prefix(plan, plen, len(r_ids)))
    return Measure(max(len(c_ids), len(r_ids)), loss, plen)


def measure(tokenizer, row: dict, form: str, plan: Plan) -> Measure:
    """Tokens and loss tokens of one converted row (TRL form `form`) under `plan`; a pair whose prompt crowds
    out its replies comes back with `shortened` set to the prompt that fits (measured with it)."""
    tools = _tools(row)
    mode = plan.loss(form)
    if form == "text":
        eos = tokenizer.eos_token or ""
        text = row["text"] if row["text"].endswith(eos) else row["text"] + eos
        n = len(tokenizer(text)["input_ids"])
        return Measure(n, n if row["text"].strip() else 0)
    if form == "prompts":  # online RL: the prompt is all the data holds; it must leave room to answer
        n = len(_prompt_ids(tokenizer, plan, row["prompt"], tools))
        return Measure(n, 0 if plan.max_length and n >= plan.max_length else 1, n)
    if form == "preference":
        return _shortened(tokenizer, plan, row, tools, lambda r: _pair(tokenizer, plan, r, tools))
    if form == "prompt_completion":
        if mode != COMPLETION_ONLY:
            m = _completion(tokenizer, plan, row["prompt"], row["completion"], tools)
            return Measure(m.tokens, _after_prefix(plan, 0, m.tokens))
        return _shortened(
            tokenizer, plan, row, tools, lambda r: _completion(tokenizer, plan, r["prompt"], r["completion"], tools)
        )
    messages = row["messages"]
    if mode == ASSISTANT_ONLY:
        m = _assistant_only(tokenizer, plan, messages, tools)
        replied = any(x["role"] == "assistant" for x in messages)
        if m.loss == 0 and plan.shorten_prompts and replied:  # no reply survives: keep the last, cut its prompt
            prompt, reply = last_turn(messages)
            short = _shortened(tokenizer, plan, {"prompt": prompt, "completion": reply}, tools, lambda r: m)
            if short.shortened is not None:
                messages = short.shortened["prompt"] + reply
                m = _assistant_only(tokenizer, plan, messages, tools)
                m.shortened = {"messages": messages}
        return m
    if mode == COMPLETION_ONLY:
        return _completion(tokenizer, plan, *last_turn(messages), tools)
    n = len(_chat(tokenizer, plan, messages, tools)["input_ids"])
    return Measure(n, _after_prefix(plan, 0, n))


def _assistant_only(tokenizer, plan: Plan, messages, tools) -> Measure:
    out = _chat(tokenizer, plan, messages, tools, return_assistant_tokens_mask=True)
    start, end = plan.window(len(out["input_ids"]))
    masks = out["assistant_masks"]
    first = next((i for i, bit in enumerate(masks) if bit), len(masks))
    return Measure(len(out["input_ids"]), sum(masks[start:end]), first)


def _shortened(tokenizer, plan: Plan, row: dict, tools, measure_row) -> Measure:
    """Measure a row with a prompt; when the prompt crowds out the reply, measure it with the prompt shortened."""
    m = measure_row(row)
    budget = _prompt_budget(plan, m)
    if plan.shorten_prompts and isinstance(row["prompt"], list) and budget is not None and m.prompt > budget:
        prompt = shorten_prompt(tokenizer, plan, row["prompt"], tools, budget)
        if prompt is not None:
            shortened = measure_row({**row, "prompt": prompt})
            shortened.shortened = {"prompt": prompt}
            return shortened
    return m


def _prompt_budget(plan: Plan, m: Measure) -> int | None:
    """The most prompt tokens a pair may keep: the window less its longer reply, but at least half the window
    for the prompt (a reply longer than that is cut at its end, as truncation does)."""
    if not plan.max_length or plan.keep != "start":
        return None
    reply = m.tokens - m.prompt
    if plan.drop_overlong:  # the whole pair must fit: the prompt gets what the longer reply leaves
        return plan.max_length - reply if reply < plan.max_length else None
    return plan.max_length - min(reply, plan.max_length // 2)


def shorten_prompt(tokenizer, plan: Plan, prompt: list[dict], tools, budget: int) -> list[dict] | None:
    """The prompt cut from its start to at most `budget` tokens (with the generation prompt): whole earlier
    exchanges go first, then the start of the first remaining turn's text (marked with "…").  The system turn
    and the last user turn's end are kept.  None when even that does not fit."""

    def length(msgs):
        return len(_prompt_ids(tokenizer, plan, msgs, tools))

    system = prompt[:1] if prompt and prompt[0]["role"] == "system" else []
    body = list(prompt[len(system) :])
    while length(system + body) > budget:
        users = [i for i, m in enumerate(body) if m["role"] == "user"]
        if len(users) < 2:
            break
        body = body[users[1] :]
    for attempt in range(12):  # cutting at a token can re-tokenize longer (a split character): cut a wider margin
        over = length(system + body) - budget
        if over <= 0:
            return system + body
        first = body[0] if body else None
        if first is None or not isinstance(first.get("content"), str):
            return None
        text = first["content"].removeprefix(ELLIPSIS)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        keep = len(ids) - over - (2 << attempt)
        if keep < 1:
            return None
        tail = tokenizer.decode(ids[-keep:]).lstrip("\ufffd")  # no half of a multi-byte character at the cut
        body = [{**first, "content": ELLIPSIS + tail}, *body[1:]]
    return system + body if length(system + body) <= budget else None


_PROBE_TOOL, _PROBE_KEY, _PROBE_VALUE, _PROBE_RESULT = "probe_fn_q7", "probe_arg_k3", "probe_val_v9", "probe_out_r5"
_PROBE_THOUGHT = "probe_thought_t2"
PROBES = {
    "tools": (
        [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"type": "function", "function": {"name": _PROBE_TOOL, "arguments": {_PROBE_KEY: _PROBE_VALUE}}}
                ],
            },
            {"role": "tool", "name": _PROBE_TOOL, "content": _PROBE_RESULT},
        ],
        [{"type": "function", "function": {"name": _PROBE_TOOL, "description": "probe", "parameters": {}}}],
        (_PROBE_TOOL, _PROBE_KEY, _PROBE_VALUE, _PROBE_RESULT),
    ),
    "reasoning": (
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "ok", "reasoning_content": _PROBE_THOUGHT},
        ],
        None,
        (_PROBE_THOUGHT,),
    ),
}


def template_renders(tokenizer, plan: Plan, feature: str) -> bool:
    """Whether the chat template training uses renders `feature` ("tools": tool calls, tool turns and the tools
    schema; "reasoning": an assistant's reasoning_content), as TRL's supports_tool_calling checks: every sentinel
    put in must come out."""
    messages, tools, sentinels = PROBES[feature]
    try:
        text = tokenizer.apply_chat_template(messages, tools=tools, chat_template=plan.chat_template, tokenize=False)
    except Exception:  # noqa: BLE001 - a template that rejects the shape does not support it
        return False
    return all(s in text for s in sentinels)


def uses(row: dict) -> tuple[bool, bool]:
    """(uses tools, has reasoning) for a converted row."""
    turns = [m for k in ("messages", "prompt", "completion", "chosen", "rejected") for m in (row.get(k) or [])]
    turns = [m for m in turns if isinstance(m, dict)]
    tools = bool(row.get("tools")) or any(m.get("tool_calls") or m.get("role") == "tool" for m in turns)
    return tools, any(m.get("reasoning_content") for m in turns)


TRAINED, MASKED, CUT = "trained", "masked", "cut"


def _reply_pair(row: dict, form: str, reply: str):
    """(prompt, reply) of a row whose loss starts after a prompt; `reply` picks a pair's "chosen" or "rejected"."""
    if form == "preference":
        return row["prompt"], row[reply]
    if form == "prompt_completion":
        return row["prompt"], row["completion"]
    return last_turn(row["messages"])


def token_spans(tokenizer, row: dict, form: str, plan: Plan, reply: str = "chosen") -> list[tuple[str, str]]:
    """A converted row as the trainer tokenizes it, cut into (text, TRAINED / MASKED / CUT) spans: the tokens the
    loss falls on after masking, those it does not, and those truncation drops (past the `plan` window).  A pair
    shows its `reply` ("chosen" / "rejected") sequence; online-RL prompts are all MASKED (their replies are
    generated while training)."""
    tools, mode = _tools(row), plan.loss(form)
    if form == "text":
        ids = tokenizer(row["text"])["input_ids"]
        mask = [1] * len(ids)
    elif form == "prompts":
        ids = _prompt_ids(tokenizer, plan, row["prompt"], tools)
        mask = [0] * len(ids)
    elif mode == ASSISTANT_ONLY:
        out = _chat(tokenizer, plan, row["messages"], tools, return_assistant_tokens_mask=True)
        ids, mask = out["input_ids"], out["assistant_masks"]
    else:
        prompt, answer = _reply_pair(row, form, reply)
        ids = _sequence_ids(tokenizer, plan, prompt, answer, tools)
        plen = common_prefix(_prompt_ids(tokenizer, plan, prompt, tools), ids)
        mask = [int(i >= plen or mode == FULL_SEQUENCE) for i in range(len(ids))]
    start, end = plan.window(len(ids))
    labels = [CUT if not start <= i < end else TRAINED if mask[i] else MASKED for i in range(len(ids))]
    spans: list[tuple[str, str]] = []
    run: list[int] = []
    for i, token in enumerate(ids):
        if run and labels[i] != labels[i - 1]:
            spans.append((tokenizer.decode(run), labels[i - 1]))
            run = []
        run.append(token)
    if run:
        spans.append((tokenizer.decode(run), labels[-1]))
    return spans


def loss_spans(tokenizer, row: dict, form: str, plan: Plan) -> list[tuple[str, bool]]:
    """A converted row as the trainer sees it, cut into (text, trained) spans: what the loss falls on after
    masking and truncation (a pair: its chosen sequence).  Text past the truncation window is left out."""
    return [(text, label == TRAINED) for text, label in token_spans(tokenizer, row, form, plan) if label != CUT]


def show_spans(spans: list[tuple[str, bool]], open_mark: str = "⟦", close_mark: str = "⟧") -> str:
    """Spans as text with the trained parts between marks."""
    return "".join(f"{open_mark}{text}{close_mark}" if trained else text for text, trained in spans)
