"""Recognise TRL's standard dataset forms and check that the method and the data agree.

This is the slot where auto-detection of other shapes (ShareGPT, Alpaca, ...) plugs in: `prepare`
takes any dataset and returns one in a TRL standard form plus the name of that form.
"""

from __future__ import annotations

from trainers.errors import DataError

# name -> required columns, in order of preference
SFT_FORMATS = {
    "messages": ("messages",),
    "prompt_completion": ("prompt", "completion"),
    "text": ("text",),
}
PREFERENCE_FORMATS = {
    "preference": ("prompt", "chosen", "rejected"),
    "implicit_preference": ("chosen", "rejected"),
}
METHOD_FORMATS = {"sft": SFT_FORMATS, "dpo": PREFERENCE_FORMATS}


def _describe(formats: dict[str, tuple[str, ...]]) -> str:
    return "; ".join(" + ".join(repr(c) for c in cols) for cols in formats.values())


def detect(columns: list[str], method: str) -> str:
    """Return the name of the standard format the columns form for this method, or raise DataError."""
    for name, required in METHOD_FORMATS[method].items():
        if all(c in columns for c in required):
            return name
    if method == "sft" and any(all(c in columns for c in cols) for cols in PREFERENCE_FORMATS.values()):
        raise DataError(
            "This is preference data (chosen/rejected): train it with method: dpo, "
            "or map a prompt and a response column for SFT with data.columns."
        )
    if method == "dpo" and any(all(c in columns for c in cols) for cols in SFT_FORMATS.values()):
        raise DataError(
            f"DPO needs preference pairs ({_describe(PREFERENCE_FORMATS)}) but this dataset only has "
            f"instruction data (columns {', '.join(columns)}): use method: sft, or a preference dataset."
        )
    example = (
        "data.columns: {prompt: question, completion: answer}"
        if method == "sft"
        else ("data.columns: {prompt: question, chosen: good, rejected: bad}")
    )
    raise DataError(
        f"The dataset's columns ({', '.join(columns) or 'none'}) match no {method.upper()} format "
        f"({_describe(METHOD_FORMATS[method])}): map yours with {example}."
    )


def apply_column_map(dataset, columns: dict[str, str]):
    """Rename user columns to the standard names, e.g. {prompt: question} renames question -> prompt."""
    if not columns:
        return dataset
    missing = [src for src in columns.values() if src not in dataset.column_names]
    if missing:
        raise DataError(
            f"data.columns names {', '.join(map(repr, missing))}, which the dataset does not have "
            f"(it has {', '.join(dataset.column_names)})."
        )
    return dataset.rename_columns({src: std for std, src in columns.items() if src != std})


def prepare(dataset, method: str, columns: dict[str, str] | None = None, what: str = "training"):
    """Map columns, detect the format, drop unused columns; returns (dataset, format name)."""
    if len(dataset) == 0:
        raise DataError(f"The {what} dataset is empty: point data.source at a file or split with rows.")
    dataset = apply_column_map(dataset, columns or {})
    name = detect(dataset.column_names, method)
    keep = set(METHOD_FORMATS[method][name]) | {"tools", "chat_template_kwargs"}
    extra = [c for c in dataset.column_names if c not in keep]
    if extra:
        dataset = dataset.remove_columns(extra)
    return dataset, name


def last_turn_as_completion(example: dict) -> dict:
    """messages -> prompt/completion, the last assistant turn being the completion."""
    messages = example["messages"]
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return {"prompt": messages[:last], "completion": [messages[last]]}
