"""Row converters into TRL's standard conversational forms, and the checks that find invalid rows.

Each converter takes (row, options) and returns the standard columns plus "__error": None for a good
row, else one short reason.  Options: system_prompt (str | None), chat_template (bool: wrap plain
prompt/completion strings as a user/assistant exchange so the tokenizer's chat template applies).
"""

from __future__ import annotations

import json
import re
from typing import Any

ROLES = {"system", "user", "assistant", "tool"}
CONVERSATION_COLUMNS = ("messages", "conversations", "conversation", "chat", "dialog")
PROMPT_ALIASES = ("prompt", "question", "instruction", "query", "input", "problem")
RESPONSE_ALIASES = ("completion", "response", "answer", "output", "solution")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
}
TRANSCRIPT = re.compile(r"(?:^|\n\n)(Human|Assistant|User|System):[ \t]?")
TRANSCRIPT_ROLES = {"Human": "user", "User": "user", "Assistant": "assistant", "System": "system"}


def maybe_json(value: Any) -> Any:
    """Some datasets store lists/objects as JSON text; decode those, leave everything else."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, dict) or (
            isinstance(decoded, list) and decoded and all(isinstance(d, dict) for d in decoded)
        ):
            return decoded  # a JSON-encoded turn list/object, not text that happens to start with a bracket
    return value


def first_present(names: list[str] | dict, aliases: tuple[str, ...]) -> str | None:
    return next((c for c in aliases if c in names), None)


def conversation_column(row: dict, turn_keys: tuple[str, str]) -> str | None:
    """The first conversation column whose turns carry turn_keys ({role, content} or {from, value})."""
    for col in CONVERSATION_COLUMNS:
        turns = maybe_json(row.get(col))
        is_turns = isinstance(turns, list) and turns and all(isinstance(t, dict) for t in turns)
        if is_turns and all(k in turns[0] for k in turn_keys):
            return col
    return None


def _turns_column(row: dict, turn_keys: tuple[str, str]) -> str:
    """Where this row's conversation is; a bad row falls back to any conversation column (to report it)."""
    return conversation_column(row, turn_keys) or first_present(row, CONVERSATION_COLUMNS)


def _content(value: Any) -> tuple[str, str | None]:
    """Message content as text; OpenAI-style parts are joined. Returns (text, error)."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
        return "".join(str(p.get("text", "")) for p in value), None
    if value is None:
        return "", "has no content (null)"
    return str(value), f"has {type(value).__name__} content, not text"


def normalise(turns: Any, role_key="role", text_key="content", role_map=None) -> tuple[list[dict], str | None]:
    """Turn a list of dicts into [{role, content}], reporting the first problem found."""
    turns = maybe_json(turns)
    if not isinstance(turns, list) or not turns:
        return [], "has no turns"
    out, error = [], None
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            return [], f"turn {i} is not an object"
        raw_role = turn.get(role_key)
        role = (role_map or {}).get(raw_role, raw_role) if role_map else raw_role
        text, problem = _content(turn.get(text_key))
        if problem and error is None:
            error = f"turn {i} {problem}"
        if role not in ROLES and error is None:
            error = f"turn {i} has unknown role {raw_role!r} (expected system, user, assistant or tool)"
        out.append({"role": str(role), "content": text})
    return out, error


def check_order(messages: list[dict], need_reply: bool = True) -> str | None:
    """Conversation shape: optional leading system, user first, alternating, a non-empty reply."""
    body = messages[1:] if messages and messages[0]["role"] == "system" else messages
    if any(m["role"] == "system" for m in body):
        return "has a system turn after the start"
    if body and body[0]["role"] != "user":
        return f"starts with a {body[0]['role']} turn instead of a user turn"
    previous = None
    for i, m in enumerate(body):
        if m["role"] == previous and m["role"] in ("user", "assistant"):
            return f"has two {m['role']} turns in a row (turn {i + len(messages) - len(body)})"
        previous = m["role"]
    replies = [m for m in body if m["role"] == "assistant"]
    if need_reply and not replies:
        return "has no assistant reply"
    if need_reply and any(not m["content"].strip() for m in replies):
        return "has an empty assistant reply"
    return None


def with_system(messages: list[dict], system_prompt: str | None) -> list[dict]:
    if not system_prompt:
        return messages
    rest = messages[1:] if messages and messages[0]["role"] == "system" else messages
    return [{"role": "system", "content": system_prompt}, *rest]


def _result(messages, error, options, **extra):
    messages = with_system(messages, options.get("system_prompt"))
    while len(messages) > 1 and messages[-1]["role"] == "user" and any(m["role"] == "assistant" for m in messages):
        messages = messages[:-1]  # a cut-off conversation: drop the unanswered last question, keep the row
    return {"messages": messages, "__error": error or check_order(messages), **extra}


def _tools(row):
    return {"tools": row["tools"]} if "tools" in row else {}


# --- SFT -----------------------------------------------------------------------------------------


def messages(row, options):
    msgs, error = normalise(row[_turns_column(row, ("role", "content"))])
    return _result(msgs, error, options, **_tools(row))


def sharegpt(row, options):
    msgs, error = normalise(row[_turns_column(row, ("from", "value"))], "from", "value", SHAREGPT_ROLES)
    if row.get("system") and not (msgs and msgs[0]["role"] == "system"):
        msgs = [{"role": "system", "content": str(row["system"])}, *msgs]
    return _result(msgs, error, options, **_tools(row))


def alpaca(row, options):
    msgs = [{"role": "system", "content": str(row["system"])}] if row.get("system") else []
    for pair in maybe_json(row.get("history")) or []:
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            msgs += [{"role": "user", "content": str(pair[0])}, {"role": "assistant", "content": str(pair[1])}]
    instruction, error = _content(row.get("instruction"))
    extra = row.get("input") or ""
    prompt = f"{instruction}\n\n{extra}" if isinstance(extra, str) and extra.strip() else instruction
    output, out_error = _content(row.get("output"))
    msgs += [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    problem = ("instruction " + error) if error else ("output " + out_error) if out_error else None
    if problem is None and not instruction.strip():
        problem = "has an empty instruction"
    return _result(msgs, problem, options)


def pair(row, options):
    prompt_col = first_present(row, PROMPT_ALIASES)
    reply_col = first_present(row, RESPONSE_ALIASES)
    prompt, p_err = _content(row[prompt_col])
    if row.get("context"):  # dolly-style extra context
        prompt = f"{prompt}\n\n{row['context']}"
    reply, r_err = _content(row[reply_col])
    msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]
    problem = f"'{prompt_col}' {p_err}" if p_err else f"'{reply_col}' {r_err}" if r_err else None
    return _result(msgs, problem, options)


def _as_messages(value, default_role: str) -> tuple[list[dict], str | None]:
    """A string becomes one turn of default_role; a message or list of messages is normalised."""
    value = maybe_json(value)
    if isinstance(value, str):
        return [{"role": default_role, "content": value}], None
    if isinstance(value, dict):
        if "role" not in value and "content" not in value:
            return [], f"is an object with keys {', '.join(map(str, value))}, not text or a message"
        value = [value]
    if not isinstance(value, list):
        return [], "is missing" if value is None else f"is {type(value).__name__}, not text"
    return normalise(value)


def prompt_completion(row, options):
    prompt, completion = maybe_json(row["prompt"]), maybe_json(row["completion"])
    if isinstance(prompt, str) and isinstance(completion, str) and not options.get("chat_template", True):
        error = None if completion.strip() else "has an empty completion"
        return {"prompt": prompt, "completion": completion, "__error": error}
    p_msgs, p_err = _as_messages(prompt, "user")
    c_msgs, c_err = _as_messages(completion, "assistant")
    p_msgs = with_system(p_msgs, options.get("system_prompt"))
    error = (p_err and f"prompt {p_err}") or (c_err and f"completion {c_err}") or check_order(p_msgs + c_msgs)
    if error is None and not any(m["content"].strip() for m in c_msgs):
        error = "has an empty completion"
    return {"prompt": p_msgs, "completion": c_msgs, "__error": error, **_tools(row)}


def text(row, options):
    value = row.get("text")
    if not isinstance(value, str):
        return {"text": "" if value is None else str(value), "__error": "text is not a string"}
    return {"text": value, "__error": None if value.strip() else "has empty text"}


# --- preference ----------------------------------------------------------------------------------


def parse_transcript(value: str) -> list[dict]:
    """'\\n\\nHuman: hi\\n\\nAssistant: hello' -> messages (Anthropic HH style)."""
    parts = TRANSCRIPT.split(value)
    msgs = []
    for i in range(1, len(parts) - 1, 2):
        msgs.append({"role": TRANSCRIPT_ROLES[parts[i]], "content": parts[i + 1].strip()})
    if not msgs and value.strip():
        msgs = [{"role": "assistant", "content": value.strip()}]
    return msgs


def _split_prompt(msgs: list[dict]) -> tuple[list[dict], list[dict]]:
    """Leading turns up to the last non-assistant turn are the prompt; the rest is the reply."""
    last = max((i for i, m in enumerate(msgs) if m["role"] != "assistant"), default=-1)
    return msgs[: last + 1], msgs[last + 1 :]


def _pair_result(prompt, chosen, rejected, error, options):
    prompt = with_system(prompt, options.get("system_prompt"))
    if error is None:
        error = check_order(prompt, need_reply=False) if prompt else "has no prompt"
    if error is None:
        if not chosen or not any(m["content"].strip() for m in chosen):
            error = "has an empty chosen reply"
        elif not rejected or not any(m["content"].strip() for m in rejected):
            error = "has an empty rejected reply"
        elif chosen == rejected:
            error = "has chosen identical to rejected"
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "__error": error}


def preference(row, options):
    prompt_col = first_present(row, PROMPT_ALIASES)
    prompt, p_err = _as_messages(row[prompt_col], "user")
    if row.get("system") and not (prompt and prompt[0]["role"] == "system"):
        prompt = [{"role": "system", "content": str(row["system"])}, *prompt]
    chosen, c_err = _as_messages(row["chosen"], "assistant")
    rejected, r_err = _as_messages(row["rejected"], "assistant")
    embedded, chosen_reply = _split_prompt(chosen)
    if embedded:  # e.g. UltraFeedback (H4): chosen/rejected repeat the user turn
        prompt, chosen = embedded, chosen_reply
        rejected = _split_prompt(rejected)[1]
    return _pair_result(prompt, chosen, rejected, p_err or c_err or r_err, options)


def implicit_preference(row, options):
    def parse(value):
        value = maybe_json(value)
        return (parse_transcript(value), None) if isinstance(value, str) else normalise(value)

    chosen, c_err = parse(row["chosen"])
    rejected, r_err = parse(row["rejected"])
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == len(chosen) == len(rejected):
        shared = len(_split_prompt(chosen)[0])  # identical: report it, but keep a sensible split
    prompt, chosen_reply, rejected_reply = chosen[:shared], chosen[shared:], rejected[shared:]
    if prompt and prompt[-1]["role"] == "assistant":  # the replies differ mid-turn: split at the last user turn
        prompt, chosen_reply = _split_prompt(chosen)
        rejected_reply = _split_prompt(rejected)[1]
    return _pair_result(prompt, chosen_reply, rejected_reply, c_err or r_err, options)


def sharegpt_preference(row, options):
    prompt, error = normalise(row[_turns_column(row, ("from", "value"))], "from", "value", SHAREGPT_ROLES)
    if row.get("system") and not (prompt and prompt[0]["role"] == "system"):
        prompt = [{"role": "system", "content": str(row["system"])}, *prompt]
    turns = []
    for key in ("chosen", "rejected"):
        msgs, err = normalise([maybe_json(row[key])], "from", "value", SHAREGPT_ROLES)
        error = error or err
        turns.append(msgs)
    return _pair_result(prompt, turns[0], turns[1], error, options)


def unpaired(row, options):
    prompt, p_err = _as_messages(row.get("prompt", ""), "user")
    completion, c_err = _as_messages(row["completion"], "assistant")
    return {"prompt": prompt, "completion": completion, "label": bool(row["label"]), "__error": p_err or c_err}


def last_turn_as_completion(example: dict) -> dict:
    """messages -> prompt/completion, the last assistant turn being the completion."""
    msgs = example["messages"]
    last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
    return {"prompt": msgs[:last], "completion": [msgs[last]]}
