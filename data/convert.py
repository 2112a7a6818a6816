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


TEXT_PARTS = {"text", "input_text", "output_text"}
REASONING_PARTS = {"reasoning", "thinking", "thought"}
MEDIA_PARTS = {"image", "image_url", "input_image", "video", "video_url", "audio", "input_audio", "audio_url", "file"}
MEDIA_COLUMNS = ("images", "image", "videos", "video", "audios", "audio")
MEDIA_REFUSAL = "carries {what}: this studio trains text models, so rows with media are not trained"


def _parts(value: Any) -> tuple[str, str, str | None]:
    """Message content as (text, reasoning, error).  Content may be a string or a list of parts: OpenAI's
    {type: text, text}, LLaMA-Factory v1's {type: text, value}, reasoning parts {type: reasoning|thinking, value}.
    Media parts (image, audio, video) are an error: this studio trains text models."""
    if isinstance(value, str):
        return value, "", None
    if value is None:
        return "", "", "has no content (null)"
    if isinstance(value, dict) and "type" in value:
        value = [value]
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        return str(value), "", f"has {type(value).__name__} content, not text"
    text, reasoning = [], []
    for part in value:
        kind = part.get("type")
        body = part.get("text", part.get("value"))
        if kind in MEDIA_PARTS:
            return "", "", MEDIA_REFUSAL.format(what=f"a {kind} part")
        if kind not in TEXT_PARTS | REASONING_PARTS:
            return "", "", f"has a content part of unknown type {kind!r} (expected text or reasoning)"
        if not isinstance(body, str):
            return "", "", f"has a {kind} part without text"
        (reasoning if kind in REASONING_PARTS else text).append(body)
    return "".join(text), "\n\n".join(reasoning), None


def _content(value: Any) -> tuple[str, str | None]:
    """Message content as text (reasoning parts are not allowed here). Returns (text, error)."""
    text, reasoning, error = _parts(value)
    if reasoning and error is None:
        error = "has a reasoning part where only text is expected"
    return text, error


def tool_calls(value: Any) -> tuple[list[dict], str | None]:
    """Tool calls in the form chat templates read: [{type: function, function: {name, arguments: dict}} (+ id)].
    Accepts OpenAI's calls (arguments a JSON string) and glaive/ShareGPT function_call values ({name, arguments}
    or a list of them, possibly as JSON text)."""
    value = maybe_json(value)
    if value in (None, "", []):
        return [], None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return [], "has a tool call that is not a JSON object with a name and arguments"
    out = []
    for call in value:
        call = maybe_json(call)
        if not isinstance(call, dict):
            return [], "has a tool call that is not a JSON object with a name and arguments"
        fn = call.get("function") if isinstance(call.get("function"), dict) else call
        name = fn.get("name")
        args = fn.get("arguments", fn.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError:
                return [], f"has a tool call to {name!r} whose arguments are not JSON"
        if not isinstance(name, str) or not name or not isinstance(args, dict):
            return [], "has a tool call without a function name or with arguments that are not an object"
        entry = {"type": "function", "function": {"name": name, "arguments": drop_none(args)}}
        if call.get("id"):
            entry["id"] = str(call["id"])
        out.append(entry)
    return out, None


def drop_none(value: Any) -> Any:
    """Remove None entries that tabular storage adds for keys other rows have (Arrow unions nested structs)."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


def tools_schema(value: Any) -> tuple[list[dict] | None, str | None]:
    """A `tools` column (list of function schemas, or its JSON text) as a list, or None when the row has none."""
    value = maybe_json(value)
    if value in (None, "", []) or value == "[]":
        return None, None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        return None, "has a 'tools' value that is not a list of function schemas"
    return [
        t if "function" in t or t.get("type") == "function" else {"type": "function", "function": t}
        for t in drop_none(value)
    ], None


def normalise(turns: Any, role_key="role", text_key="content", role_map=None) -> tuple[list[dict], str | None]:
    """Turn a list of dicts into chat-template messages, reporting the first problem found.

    Keeps what templates read: role, content, tool_calls (assistant), tool_call_id / name (tool turns) and
    reasoning_content (assistant reasoning parts or a reasoning_content / thinking key).  A ShareGPT
    function_call turn becomes an assistant turn with structured tool_calls.  An empty leading system turn is
    dropped (SlimOrca, OpenHermes)."""
    turns = maybe_json(turns)
    if not isinstance(turns, list) or not turns:
        return [], "has no turns"
    out, error = [], None
    call_names: dict[str, str] = {}
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            return [], f"turn {i} is not an object"
        raw_role = turn.get(role_key)
        role = (role_map or {}).get(raw_role, raw_role) if role_map else raw_role
        message: dict = {"role": str(role)}
        calls, problem = [], None
        if raw_role == "function_call":
            calls, problem = tool_calls(turn.get(text_key))
            text, reasoning = "", ""
        else:
            content = turn.get(text_key)
            if isinstance(content, list):  # LLaMA-Factory v1: {type: tool_call, value: '{"name": ...}'} parts
                part_calls = [p.get("value") for p in content if isinstance(p, dict) and p.get("type") == "tool_call"]
                content = [p for p in content if not (isinstance(p, dict) and p.get("type") == "tool_call")]
                if part_calls:
                    calls, problem = tool_calls(part_calls)
            text, reasoning, text_problem = _parts(content)
            problem = problem or (None if calls and not content else text_problem)
            if turn.get("tool_calls") is not None:
                calls, call_problem = tool_calls(turn.get("tool_calls"))
                problem = call_problem or (None if calls and turn.get(text_key) in (None, "") else problem)
        reasoning = reasoning or turn.get("reasoning_content") or turn.get("thinking") or ""
        message["content"] = text
        if calls:
            message["tool_calls"] = calls
            call_names.update({c["id"]: c["function"]["name"] for c in calls if "id" in c})
        if reasoning and role == "assistant":
            message["reasoning_content"] = str(reasoning)
        if role == "tool":
            if turn.get("tool_call_id"):
                message["tool_call_id"] = str(turn["tool_call_id"])
            name = turn.get("name") or call_names.get(message.get("tool_call_id", ""))
            if name:
                message["name"] = str(name)
        if problem and error is None:
            error = f"turn {i} {problem}"
        if role not in ROLES and error is None:
            error = f"turn {i} has unknown role {raw_role!r} (expected system, user, assistant or tool)"
        before = out[-1] if out else None
        if calls and before and before["role"] == "assistant" and not before.get("tool_calls") and not text:
            before["tool_calls"] = calls  # ShareGPT: a gpt turn then its function_call is one assistant turn
            continue
        out.append(message)
    if len(out) > 1 and out[0]["role"] == "system" and not out[0]["content"].strip():
        out = out[1:]
        if error and error.startswith("turn 0 "):
            error = None
    return out, error


def check_order(messages: list[dict], need_reply: bool = True) -> str | None:
    """Conversation shape: optional leading system, user first, alternating, a non-empty reply; tool turns
    answer an assistant turn's tool calls."""
    body = messages[1:] if messages and messages[0]["role"] == "system" else messages
    offset = len(messages) - len(body)
    if any(m["role"] == "system" for m in body):
        return "has a system turn after the start"
    if body and body[0]["role"] != "user":
        return f"starts with a {body[0]['role']} turn instead of a user turn"
    previous, previous_calls = None, False
    for i, m in enumerate(body):
        if m["role"] == previous and m["role"] in ("user", "assistant") and not previous_calls:
            return f"has two {m['role']} turns in a row (turn {i + offset})"
        if m["role"] == "tool" and not (previous == "tool" or (previous == "assistant" and previous_calls)):
            return f"has a tool turn (turn {i + offset}) that answers no assistant tool call"
        previous, previous_calls = m["role"], bool(m.get("tool_calls"))
    replies = [m for m in body if m["role"] == "assistant"]
    if need_reply and not replies:
        return "has no assistant reply"
    if need_reply and any(not m["content"].strip() and not m.get("tool_calls") for m in replies):
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


def _tools(row) -> tuple[dict, str | None]:
    """The row's `tools` column as JSON text (TRL passes it to the chat template), when the dataset has one."""
    if "tools" not in row:
        return {}, None
    schema, error = tools_schema(row["tools"])
    return {"tools": json.dumps(schema, ensure_ascii=False) if schema else None}, error


def media_error(row: dict) -> str | None:
    """Why a row is not trained when it carries images, audio or video (a non-empty media column)."""
    for col in MEDIA_COLUMNS:
        value = maybe_json(row.get(col))
        if value not in (None, "", [], {}):
            return MEDIA_REFUSAL.format(what=f"{col} ({col!r} column)")
    return None


# --- SFT -----------------------------------------------------------------------------------------


def messages(row, options):
    msgs, error = normalise(row[_turns_column(row, ("role", "content"))])
    tools, tools_error = _tools(row)
    return _result(msgs, media_error(row) or error or tools_error, options, **tools)


def sharegpt(row, options):
    msgs, error = normalise(row[_turns_column(row, ("from", "value"))], "from", "value", SHAREGPT_ROLES)
    if row.get("system") and not (msgs and msgs[0]["role"] == "system"):
        msgs = [{"role": "system", "content": str(row["system"])}, *msgs]
    tools, tools_error = _tools(row)
    return _result(msgs, media_error(row) or error or tools_error, options, **tools)


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
    if isinstance(maybe_json(row[prompt_col]), list):  # a prompt given as messages (e.g. prompt + solution rows)
        turns, p_err = _as_messages(row[prompt_col], "user")
        reply, r_err = _content(row[reply_col])
        problem = (p_err and f"'{prompt_col}' {p_err}") or (r_err and f"'{reply_col}' {r_err}")
        return _result([*turns, {"role": "assistant", "content": reply}], problem, options)
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
    tools, tools_error = _tools(row)
    return {"prompt": p_msgs, "completion": c_msgs, "__error": media_error(row) or error or tools_error, **tools}


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
    """Feedback rows: a prompt and one reply labelled good (true) or bad (false), as KTO trains on.  The reply is
    a `completion` column, or the last assistant turn of a `messages` conversation."""
    if "completion" in row:
        prompt, p_err = _as_messages(row.get("prompt", ""), "user")
        completion, c_err = _as_messages(row["completion"], "assistant")
        error = (p_err and f"prompt {p_err}") or (c_err and f"completion {c_err}")
    else:
        msgs, error = normalise(row[_turns_column(row, ("role", "content"))])
        prompt, completion = _split_prompt(msgs)
    prompt = with_system(prompt, options.get("system_prompt"))
    label = row.get("label")
    if error is None:
        if not isinstance(label, bool):
            error = f"has label {label!r}, not true or false"
        elif not completion or not any(m["content"].strip() or m.get("tool_calls") for m in completion):
            error = "has an empty reply"
        else:
            error = check_order(prompt + completion)
    return {"prompt": prompt, "completion": completion, "label": bool(label), "__error": media_error(row) or error}


def io_turns(row, options):
    """Capybara-style `conversation` of {input, output} exchanges."""
    turns = maybe_json(row.get("conversation"))
    msgs, error = [], None
    if not isinstance(turns, list) or not turns:
        error = "has no turns"
    for i, turn in enumerate(turns if isinstance(turns, list) else []):
        if not isinstance(turn, dict):
            error = error or f"turn {i} is not an object"
            continue
        question, q_err = _content(turn.get("input"))
        answer, a_err = _content(turn.get("output"))
        error = error or (q_err and f"turn {i} input {q_err}") or (a_err and f"turn {i} output {a_err}")
        msgs += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return _result(msgs, error, options)


def ranked_responses(row, options):
    """PKU-SafeRLHF-style: a prompt, response_0 / response_1 and the id of the better one (`better_response_id`,
    or the column data.columns maps to `choice`, e.g. {choice: safer_response_id})."""
    key = "choice" if "choice" in row else "better_response_id"
    choice = row.get(key)
    prompt, p_err = _as_messages(row.get(first_present(row, PROMPT_ALIASES) or "prompt"), "user")
    if choice not in (0, 1) or isinstance(choice, bool):
        return _pair_result(prompt, [], [], f"has {key} {choice!r}, not 0 or 1", options)
    chosen, c_err = _as_messages(row.get(f"response_{choice}"), "assistant")
    rejected, r_err = _as_messages(row.get(f"response_{1 - choice}"), "assistant")
    return _pair_result(prompt, chosen, rejected, p_err or c_err or r_err, options)


SOLUTION_ALIASES = ("solution", "answer", "ground_truth", "final_answer", "target", "reference")


def prompt_only(row, options):
    """A prompt to answer (online RL), with the reference answer rewards check replies against when the data has
    one (`solution`, `answer`, ...; GSM8K's "... #### 72" keeps what follows the last ####)."""
    col = first_present(row, PROMPT_ALIASES) or first_present(row, CONVERSATION_COLUMNS)
    prompt, error = _as_messages(row.get(col), "user")
    if row.get("system") and not (prompt and prompt[0]["role"] == "system"):
        prompt = [{"role": "system", "content": str(row["system"])}, *prompt]
    prompt = with_system(prompt, options.get("system_prompt"))
    answer_col = first_present(row, SOLUTION_ALIASES)
    solution = row.get(answer_col) if answer_col else None
    if isinstance(solution, str) and "####" in solution:
        solution = solution.rsplit("####", 1)[1].strip()
    if error is None:
        error = check_order(prompt, need_reply=False) if prompt else "has no prompt"
    if error is None and prompt[-1]["role"] == "assistant":
        error = "ends with an assistant turn: a prompt must end with the user's turn"
    if error is None and not any(m["content"].strip() for m in prompt if m["role"] == "user"):
        error = "has an empty prompt"
    return {
        "prompt": prompt,
        "solution": None if solution is None else str(solution),
        "__error": media_error(row) or error,
    }


def keep_chosen(converted: dict) -> dict:
    """A preference or feedback row as SFT data on the reply the data marks as good (data.keep: chosen): prompt +
    chosen reply, or prompt + completion of a row labelled true.  Rows labelled false are excluded, by reason."""
    error = converted.get("__error")
    if "label" in converted and not converted["label"] and not error:
        error = "is labelled false (a bad reply): data.keep trains only the replies labelled true"
    reply = converted["chosen"] if "chosen" in converted else converted["completion"]
    return {"prompt": converted["prompt"], "completion": reply, "__error": error}
