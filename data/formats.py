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


@dataclass(frozen=True)
class Format:
    name: str
    kind: str  # sft | preference | unpaired
    description: str
    detect: Callable[[list[str], dict], str | None]  # (columns, first row) -> evidence or None
    convert: Callable[[dict, dict], dict]  # (row, options) -> standard row (+ "__error")


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
    if "completion" in columns and "label" in columns and isinstance(row.get("label"), bool):
        return "'completion' with a boolean 'label': unpaired feedback (KTO-style), not preference pairs"
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


def _is_text(columns, row):
    if "text" in columns and isinstance(row.get("text"), str):
        return "a single 'text' column of plain strings: continued pre-training (loss on every token)"
    return None


FORMATS = [
    Format(
        "sharegpt_preference",
        "preference",
        "ShareGPT conversations + chosen/rejected turns",
        _is_sharegpt_preference,
        cv.sharegpt_preference,
    ),
    Format("unpaired_preference", "unpaired", "prompt + completion + boolean label (KTO)", _is_unpaired, cv.unpaired),
    Format("preference", "preference", "prompt + chosen + rejected", _is_preference, cv.preference),
    Format(
        "implicit_preference",
        "preference",
        "chosen + rejected sharing a prompt",
        _is_implicit_preference,
        cv.implicit_preference,
    ),
    Format("sharegpt", "sft", "conversations of {from, value}", _is_sharegpt, cv.sharegpt),
    Format("messages", "sft", "messages of {role, content}", _is_messages, cv.messages),
    Format("alpaca", "sft", "instruction + input + output", _is_alpaca, cv.alpaca),
    Format("prompt_completion", "sft", "prompt + completion", _is_prompt_completion, cv.prompt_completion),
    Format("pair", "sft", "two columns such as question/answer", _is_pair, cv.pair),
    Format("text", "sft", "plain text", _is_text, cv.text),
]
BY_NAME = {f.name: f for f in FORMATS}

# The kinds of data, in this layer's words.  Which training method trains on which kind is not data's business:
# the caller says so with a Task (trainers/methods.py makes one per method).
INSTRUCTION, PREFERENCE, UNPAIRED = "sft", "preference", "unpaired"
KIND_NEEDS = {
    INSTRUCTION: "instruction data (prompt + completion, messages, ...)",
    PREFERENCE: "preference pairs (prompt, chosen, rejected)",
    UNPAIRED: "unpaired feedback (prompt, completion, true/false label)",
}
KIND_NAMES = {INSTRUCTION: "instruction data", PREFERENCE: "preference data", UNPAIRED: "unpaired feedback"}
# How data of one kind can still train on another, said as a data.columns mapping.
CONVERSIONS = {
    (PREFERENCE, INSTRUCTION): "map the prompt and the preferred reply with data.columns: "
    "{prompt: prompt, completion: chosen}",
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


def detect(columns: list[str], first_row: dict, forced: str = "auto", task: Task | None = None) -> tuple[Format, str]:
    """Returns (format, evidence) or raises DataError listing columns, known formats and the mapping hint.

    Unpaired feedback is checked first (its prompt/completion columns must never pass as SFT data), then
    the formats the task trains on, then the rest (so a mismatch is named, not mistaken).
    """
    if forced != "auto":
        if forced not in BY_NAME:
            raise DataError(f"data.format {forced!r} is unknown; use auto or one of {', '.join(BY_NAME)}.")
        fmt = BY_NAME[forced]
        return fmt, fmt.detect(columns, first_row) or f"forced by data.format: {forced}"
    wanted = task.kinds if task else ()
    order = sorted(FORMATS, key=lambda f: (f.kind != UNPAIRED, f.kind not in wanted))
    for fmt in order:
        evidence = fmt.detect(columns, first_row)
        if evidence:
            return fmt, evidence
    raise DataError(
        f"The dataset's columns ({', '.join(columns) or 'none'}) match no known format "
        f"({', '.join(BY_NAME)}): map yours with data.columns, e.g. {{prompt: my_question, completion: my_answer}}."
    )


def check_method(fmt: Format, task: Task) -> None:
    """Raises DataError, one sentence, when `task` does not train on data of this format's kind."""
    if fmt.kind in task.kinds:
        return
    wanted = task.kinds[0]
    other = task.other_method(fmt.kind)
    if fmt.kind == UNPAIRED:
        hint = f"; train it with method: {other}" if other else ""
        raise DataError(
            f"This is unpaired feedback (completion + true/false label, as KTO uses), not {KIND_NAMES[wanted]}: "
            f"{task.label} needs {KIND_NEEDS[wanted]}{hint}."
        )
    ways = [f"use method: {other}" if other else None, CONVERSIONS.get((fmt.kind, wanted))]
    ways.append(f"or a dataset of {KIND_NAMES[wanted]}")
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
