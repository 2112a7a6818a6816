"""Detect a dataset's shape and convert it into TRL's standard forms.

Every format is one `Format`: which columns it needs, how it recognises itself (with evidence a user
can read), and a row converter.  Converted rows are TRL-standard and conversational where possible:
SFT -> {"messages"} or {"prompt", "completion"} or {"text"}; DPO -> {"prompt", "chosen", "rejected"}
with message lists.  A converter never raises on a bad row: it returns the reason as `__error`, so
the doctor can report every invalid row by index.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import DataError
from data import convert as cv
from data import trees


@dataclass(frozen=True)
class Format:
    name: str
    kind: str  # sft | preference | unpaired
    description: str
    detect: Callable[[list[str], dict], str | None]  # (columns, first row) -> evidence or None
    convert: Callable[[dict, dict], dict]  # (row, options) -> standard row (+ "__error")
    regroup: Callable | None = None  # dataset -> dataset of rows `convert` reads (flat message trees)


def _conversation_column(columns: list[str], row: dict, keys: tuple[str, str]) -> str | None:
    return cv.conversation_column({c: row.get(c) for c in columns}, keys)


# --- detectors (columns, first row) -> evidence ------------------------------------------------


def _is_sharegpt_preference(columns, row):
    col = _conversation_column(columns, row, ("from", "value"))
    chosen = cv.maybe_json(row.get("chosen"))
    if col and isinstance(chosen, dict) and "value" in chosen and "rejected" in columns:
        return f"'{col}' holds {{from, value}} turns and 'chosen'/'rejected' are single {{from, value}} turns"
    return None


def _is_preference(columns, row):
    prompt = cv.first_present(columns, cv.PROMPT_ALIASES)
    if prompt and "chosen" in columns and "rejected" in columns:
        shape = "message lists" if isinstance(cv.maybe_json(row.get("chosen")), list) else "strings"
        return f"columns '{prompt}', 'chosen', 'rejected' ({shape}): an explicit prompt with a preferred and a rejected reply"
    return None


def _is_implicit_preference(columns, row):
    if "chosen" in columns and "rejected" in columns:
        chosen = cv.maybe_json(row.get("chosen"))
        shape = "conversations" if isinstance(chosen, list) else "transcripts"
        return f"'chosen' and 'rejected' are whole {shape} sharing a prompt prefix (no prompt column)"
    return None


def _is_unpaired(columns, row):
    if "label" not in columns or not isinstance(row.get("label"), bool):
        return None
    if "completion" in columns:
        return "'completion' with a boolean 'label': unpaired feedback (KTO-style), not preference pairs"
    col = _conversation_column(columns, row, ("role", "content"))
    if col:
        return f"'{col}' conversations with a boolean 'label' on the last reply: unpaired feedback (KTO-style)"
    return None


def _is_message_tree(columns, row):
    if trees.detect(columns):
        return (
            "flat message rows linked by 'parent_id' ('message_id', 'role', 'text', ...: an OpenAssistant message "
            "tree): one conversation per tree is rebuilt along the best-ranked replies"
        )
    return None


def _is_ranked_responses(columns, row):
    choice = next((c for c in ("choice", "better_response_id", "safer_response_id") if c in columns), None)
    if "response_0" in columns and "response_1" in columns and choice:
        return f"'response_0'/'response_1' with '{choice}' naming the preferred one (PKU-SafeRLHF style)"
    return None


def _is_io_turns(columns, row):
    if "conversation" in columns and cv.conversation_column(
        {"conversation": row.get("conversation")}, ("input", "output")
    ):
        return "'conversation' holds {input, output} exchanges (Capybara)"
    return None


def _is_sharegpt(columns, row):
    col = _conversation_column(columns, row, ("from", "value"))
    return f"'{col}' holds turns with 'from'/'value' keys (ShareGPT)" if col else None


def _is_messages(columns, row):
    col = _conversation_column(columns, row, ("role", "content"))
    return f"'{col}' holds turns with 'role'/'content' keys" if col else None


def _is_alpaca(columns, row):
    if "instruction" in columns and "output" in columns:
        extra = [c for c in ("input", "system", "history") if c in columns]
        return "columns 'instruction' and 'output'" + (f" (+ {', '.join(extra)})" if extra else "") + " (Alpaca)"
    return None


def _is_prompt_completion(columns, row):
    if "prompt" in columns and "completion" in columns:
        shape = "message lists" if isinstance(cv.maybe_json(row.get("prompt")), list) else "strings"
        return f"columns 'prompt' and 'completion' ({shape})"
    return None


def _is_pair(columns, row):
    prompt, response = cv.first_present(columns, cv.PROMPT_ALIASES), cv.first_present(columns, cv.RESPONSE_ALIASES)
    if prompt and response and prompt != response:
        return f"columns '{prompt}' (taken as the prompt) and '{response}' (taken as the reply)"
    return None


def _is_prompt_only(columns, row):
    prompt = cv.first_present(columns, cv.PROMPT_ALIASES)
    if prompt is None or any(c in columns for c in ("chosen", "rejected", "completion", "label")):
        return None
    answer = cv.first_present(columns, cv.SOLUTION_ALIASES)
    extra = f" with '{answer}' as the reference answer" if answer else " (no reference answer column)"
    return f"a '{prompt}' column of prompts to answer{extra}"


def _is_text(columns, row):
    if "text" in columns and isinstance(row.get("text"), str):
        others = [c for c in columns if c != "text"]
        ignored = (
            f" (other columns ignored: {', '.join(others[:6])}{', ...' if len(others) > 6 else ''})" if others else ""
        )
        return f"a 'text' column of plain strings{ignored}: continued pre-training (loss on every token)"
    return None


FORMATS = [
    Format(
        "sharegpt_preference",
        "preference",
        "ShareGPT conversations + chosen/rejected turns",
        _is_sharegpt_preference,
        cv.sharegpt_preference,
    ),
    Format(
        "unpaired_preference",
        "unpaired",
        "prompt + completion (or messages) + boolean label (KTO)",
        _is_unpaired,
        cv.unpaired,
    ),
    Format(
        "message_tree",
        "sft",
        "flat message rows linked by parent_id (oasst)",
        _is_message_tree,
        cv.messages,
        trees.rebuild,
    ),
    Format("preference", "preference", "prompt + chosen + rejected", _is_preference, cv.preference),
    Format(
        "ranked_responses",
        "preference",
        "prompt + response_0/response_1 + the better one's id",
        _is_ranked_responses,
        cv.ranked_responses,
    ),
    Format(
        "implicit_preference",
        "preference",
        "chosen + rejected sharing a prompt",
        _is_implicit_preference,
        cv.implicit_preference,
    ),
    Format("sharegpt", "sft", "conversations of {from, value}", _is_sharegpt, cv.sharegpt),
    Format("messages", "sft", "messages of {role, content}", _is_messages, cv.messages),
    Format("io_turns", "sft", "conversation of {input, output} (Capybara)", _is_io_turns, cv.io_turns),
    Format("alpaca", "sft", "instruction + input + output", _is_alpaca, cv.alpaca),
    Format("prompt_completion", "sft", "prompt + completion", _is_prompt_completion, cv.prompt_completion),
    Format("pair", "sft", "two columns such as question/answer", _is_pair, cv.pair),
    Format("text", "sft", "plain text", _is_text, cv.text),
    Format("prompt_only", "prompts", "prompts (+ a reference answer) for online RL", _is_prompt_only, cv.prompt_only),
]
BY_NAME = {f.name: f for f in FORMATS}

# The kinds of data, in this layer's words.  Which training method trains on which kind is not data's business:
# the caller says so with a Task (trainers/methods.py makes one per method).
INSTRUCTION, PREFERENCE, UNPAIRED, PROMPTS = "sft", "preference", "unpaired", "prompts"
KIND_NEEDS = {
    INSTRUCTION: "instruction data (prompt + completion, messages, ...)",
    PREFERENCE: "preference pairs (prompt, chosen, rejected)",
    UNPAIRED: "unpaired feedback (prompt, completion, true/false label)",
    PROMPTS: "prompts (a prompt column, optionally with a solution or answer to check replies against)",
}
KIND_NAMES = {
    INSTRUCTION: "instruction data",
    PREFERENCE: "preference data",
    UNPAIRED: "unpaired feedback",
    PROMPTS: "prompts",
}


@dataclass(frozen=True)
class Task:
    """What the caller trains: the method's name and label (for messages), the kinds it accepts, and for
    every other kind the method that trains on it (the hint when the data is of that kind)."""

    method: str
    label: str
    kinds: tuple[str, ...]
    trained_by: tuple[tuple[str, str], ...] = ()  # (kind, method name)

    def other_method(self, kind: str) -> str | None:
        return next((m for k, m in self.trained_by if k == kind and m != self.method), None)


def detect(
    columns: list[str], first_row: dict, forced: str = "auto", task: Task | None = None, keep: str | None = None
) -> tuple[Format, str]:
    """Returns (format, evidence) or raises DataError listing columns, known formats and the mapping hint.

    Unpaired feedback is checked first (its prompt/completion columns must never pass as SFT data), then
    the formats the task trains on, then the rest (so a mismatch is named, not mistaken).  Preference data
    whose conversation column is only the prompt (no reply in it) is preference data even for a task that
    trains instruction data: read as a conversation it would lose its replies.  With data.keep: chosen the
    preference and feedback formats come first.
    """
    if forced != "auto":
        if forced not in BY_NAME:
            raise DataError(f"data.format {forced!r} is unknown; use auto or one of {', '.join(BY_NAME)}.")
        fmt = BY_NAME[forced]
        return fmt, fmt.detect(columns, first_row) or f"forced by data.format: {forced}"
    wanted = task.kinds if task else ()
    if keep in KEEPS:
        wanted = (PREFERENCE, UNPAIRED, *wanted)
    order = sorted(FORMATS, key=lambda f: (f.kind != UNPAIRED, f.kind not in wanted))
    found = [(fmt, evidence) for fmt in order if (evidence := fmt.detect(columns, first_row))]
    if not found:
        raise DataError(
            f"The dataset's columns ({', '.join(columns) or 'none'}) match no known format "
            f"({', '.join(BY_NAME)}): map yours with data.columns, e.g. {{prompt: my_question, completion: my_answer}}."
        )
    fmt, evidence = found[0]
    paired = next(((f, e) for f, e in found if f.kind == PREFERENCE), None)
    if fmt.kind == INSTRUCTION and paired and fmt.regroup is None:
        trial = fmt.convert(dict(first_row), {})
        if trial.get("__error"):
            return paired  # e.g. ShareGPT preference: 'conversations' is the prompt, the replies are chosen/rejected
    return fmt, evidence


KEEP_CHOSEN, KEEP_DESIRABLE = "chosen", "desirable"  # the good replies: a pair's chosen, feedback labelled true
KEEPS = (KEEP_CHOSEN, KEEP_DESIRABLE)


def keeps_chosen(fmt: Format, task: Task, keep: str | None) -> bool:
    """True when SFT trains on this preference / feedback data's good replies (data.keep: chosen / desirable)."""
    return keep in KEEPS and INSTRUCTION in task.kinds and fmt.kind in (PREFERENCE, UNPAIRED)


def check_method(fmt: Format, task: Task, keep: str | None = None) -> None:
    """Raises DataError, one sentence, when `task` does not train on data of this format's kind."""
    if keep not in (None, *KEEPS):
        raise DataError(f"data.keep {keep!r} is unknown; use chosen or desirable (or leave it unset).")
    if fmt.kind in task.kinds or keeps_chosen(fmt, task, keep):
        return
    wanted = task.kinds[0]
    other = task.other_method(fmt.kind)
    sft_way = "set data.keep: desirable to train only the replies labelled true" if INSTRUCTION in task.kinds else None
    if fmt.kind == UNPAIRED:
        ways = [w for w in (f"train it with method: {other}" if other else None, sft_way) if w]
        raise DataError(
            f"This is unpaired feedback ({fmt.name}: a 'label' column marks each reply good or bad, as KTO uses), "
            f"not {KIND_NAMES[wanted]}: {task.label} would train the bad replies too"
            + (f"; {' or '.join(ways)}" if ways else f"; {task.label} needs {KIND_NEEDS[wanted]}")
            + "."
        )
    if fmt.kind == PREFERENCE and INSTRUCTION in task.kinds:
        way = f"train it with method: {other}, or " if other else ""
        raise DataError(
            f"This is preference data ({fmt.name}: a chosen and a rejected reply per prompt), not instruction data: "
            f"{way}set data.keep: chosen to train {task.label} on the chosen replies."
        )
    ways = [f"use method: {other}" if other else None, f"or a dataset of {KIND_NAMES[wanted]}"]
    raise DataError(
        f"{task.label} needs {KIND_NEEDS[wanted]} but this dataset is {KIND_NAMES[fmt.kind]} ({fmt.name}): "
        f"{', '.join(w for w in ways if w)}."
    )


def apply_column_map(dataset, columns: dict[str, str]):
    """Rename the user's columns to standard names ({prompt: question} renames question -> prompt)."""
    if not columns:
        return dataset
    aliases = {"response": "completion", "answer": "completion", "output": "completion"}
    mapping = {src: aliases.get(std, std) for std, src in columns.items()}
    missing = [src for src in mapping if src not in dataset.column_names]
    if missing:
        raise DataError(
            f"data.columns names {', '.join(map(repr, missing))}, which the dataset does not have "
            f"(it has {', '.join(dataset.column_names)})."
        )
    clashes = [std for src, std in mapping.items() if std in dataset.column_names and std not in mapping]
    if clashes:
        dataset = dataset.remove_columns(clashes)  # the mapped column replaces an existing one of that name
    return dataset.rename_columns({src: std for src, std in mapping.items() if src != std})


def first_row(dataset) -> dict:
    return dataset[0] if len(dataset) else {}


def describe_row(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)[:300]
