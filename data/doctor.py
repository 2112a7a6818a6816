"""The data doctor: convert a dataset to TRL's standard form and report what is wrong with it.

Findings are errors (training cannot start) or warnings (training starts; the report says what it
will cost).  Works in batched `datasets.map` passes, so memory stays bounded on large sets.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from core.errors import DataError
from data import formats

BATCH = 1000
SHOW = 20  # row indices listed per finding
_WORDS = re.compile(r"[\W_]+", re.UNICODE)
STANDARD = ("messages", "prompt", "completion", "chosen", "rejected", "text", "label")


@dataclass
class Finding:
    level: str  # error | warning | info
    code: str
    message: str
    rows: list = field(default_factory=list)


@dataclass
class Report:
    what: str
    rows: int
    format: str | None = None
    evidence: str | None = None
    rows_kept: int | None = None
    tokens: dict | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    def add(self, level, code, message, rows=()):
        self.findings.append(Finding(level, code, message, list(rows)[:SHOW]))

    def to_dict(self) -> dict:
        return asdict(self)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def _texts(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_texts(v) for v in value)
    if isinstance(value, dict):
        return _texts(value.get("content", ""))
    return "" if value is None else str(value)


def _convert_batch(batch: dict, indices: list[int], fmt, options: dict) -> dict:
    keys = list(batch)
    out: dict[str, list] = {}
    for pos, idx in enumerate(indices):
        row = {k: batch[k][pos] for k in keys}
        converted = fmt.convert(row, options)
        converted["__error"] = converted.get("__error") or ""
        if "tools" in converted and not isinstance(converted["tools"], str):
            converted["tools"] = json.dumps(converted["tools"])
        content = {k: converted[k] for k in STANDARD if k in converted}
        converted["__index"] = idx
        converted["__hash"] = _digest(json.dumps(content, sort_keys=True, ensure_ascii=False))
        converted["__nhash"] = _digest(" ".join(_WORDS.sub(" ", _texts(list(content.values())).lower()).split()))
        for key, value in converted.items():
            out.setdefault(key, []).append(value)
    return out


def _code_version() -> str:
    """datasets caches map() results by the mapped function's own bytecode, not by what it calls:
    fingerprint with our converters' source so a code change never reuses a stale conversion."""
    from pathlib import Path

    here = Path(__file__).parent
    return _digest("".join((here / n).read_text(encoding="utf-8") for n in ("convert.py", "formats.py", "doctor.py")))


def _fingerprint(dataset, *parts: Any) -> str:
    return _digest(json.dumps([dataset._fingerprint, _code_version(), *parts], sort_keys=True, default=str))


def convert(dataset, fmt, options: dict):
    return dataset.map(
        _convert_batch,
        batched=True,
        batch_size=BATCH,
        with_indices=True,
        remove_columns=dataset.column_names,
        fn_kwargs={"fmt": fmt, "options": options},
        desc=f"Converting {fmt.name}",
        new_fingerprint=_fingerprint(dataset, fmt.name, options),
    )


def _render(tokenizer, row: dict, prompt_only: bool = False) -> str:
    """One standard row as the model sees it (or only its prompt) under the chat template."""
    chat = tokenizer.apply_chat_template
    if "messages" in row:
        msgs = row["messages"]
        if not prompt_only:
            return chat(msgs, tokenize=False)
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=len(msgs))
        return chat(msgs[:last], tokenize=False, add_generation_prompt=True)
    if "completion" in row and not isinstance(row["completion"], list):  # raw strings, no template
        return row["prompt"] if prompt_only else row["prompt"] + row["completion"]
    if "prompt" in row:
        if prompt_only:
            return chat(row["prompt"], tokenize=False, add_generation_prompt=True)
        reply = row.get("completion") or max(row["chosen"], row["rejected"], key=lambda m: len(_texts(m)))
        return chat(row["prompt"] + reply, tokenize=False)
    return "" if prompt_only else row["text"]


def render_row(tokenizer, row: dict) -> str:
    """A converted row exactly as training will tokenize it (for previews)."""
    return _render(tokenizer, {k: v for k, v in row.items() if not k.startswith("__")})


def _rows_of(batch: dict):
    keys = [k for k in batch if not k.startswith("__")]
    return ({k: batch[k][pos] for k in keys} for pos in range(len(batch[keys[0]])))


# Token counting is bounded: a row longer than this many characters per max_length token (or than
# MEASURE_CHARS without a max_length) is measured on that prefix only and reported as "at least N tokens".
# No tokenizer averages 32 characters a token, so such a row is far over max_length either way.
CHARS_PER_TOKEN_BOUND = 32
MEASURE_CHARS = 1_000_000


def measure_limit(max_length: int | None) -> int:
    """The most characters of one row that are ever tokenized."""
    return CHARS_PER_TOKEN_BOUND * max_length if max_length else MEASURE_CHARS


def _bounded_lengths(tokenizer, texts: list[str], limit: int) -> tuple[list[int], list[bool]]:
    """Token counts of `texts`, each tokenizing at most `limit` characters; capped[i] when text i was longer
    (its count is then a lower bound)."""
    capped = [len(t) > limit for t in texts]
    enc = tokenizer([t[:limit] for t in texts], add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return [len(x) for x in enc], capped


def _length_batch(batch: dict, tokenizer, limit: int = MEASURE_CHARS) -> dict:
    fulls, errors = [], list(batch["__error"])
    for pos, row in enumerate(_rows_of(batch)):
        full = ""
        if not errors[pos]:
            try:
                full = _render(tokenizer, row)
            except Exception as exc:  # noqa: BLE001 - a template that rejects a row makes that row invalid
                errors[pos] = f"is rejected by the model's chat template ({str(exc).splitlines()[0][:120]})"
        fulls.append(full)
    lengths, capped = _bounded_lengths(tokenizer, fulls, limit)
    return {"__error": errors, "__tokens": lengths, "__tokens_capped": capped}


def _prompt_tokens(ds, positions, tokenizer, limit: int = MEASURE_CHARS) -> list[int]:
    """Prompt lengths of the overlong rows (what truncation will cut), in bounded batches."""
    lengths: list[int] = []
    for start in range(0, len(positions), BATCH):
        batch = ds.select(positions[start : start + BATCH])[:]
        prompts = [_render(tokenizer, row, prompt_only=True) for row in _rows_of(batch)]
        lengths += _bounded_lengths(tokenizer, prompts, limit)[0]
    return lengths


def _duplicates(hashes: list[str], indices: list[int], skip: set[int] = frozenset()) -> list[tuple[int, int]]:
    first: dict[str, int] = {}
    dups = []
    for h, idx in zip(hashes, indices, strict=True):
        if idx in skip:
            continue
        if h in first:
            dups.append((idx, first[h]))
        else:
            first[h] = idx
    return dups


def _token_findings(report: Report, ds, max_length: int | None, tokenizer) -> None:
    import numpy as np

    lengths = np.asarray(ds["__tokens"])
    if not len(lengths):
        return
    capped = np.asarray(ds["__tokens_capped"]) if "__tokens_capped" in ds.column_names else np.zeros(len(lengths), bool)
    limit = measure_limit(max_length)
    report.tokens = {f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 99)}
    report.tokens.update(max=int(lengths.max()), mean=round(float(lengths.mean()), 1), total=int(lengths.sum()))
    if capped.any():  # counts of the huge rows are lower bounds
        report.tokens.update(capped_rows=int(capped.sum()))
    at_least = "at least " if capped.any() else ""
    if not max_length:
        return
    over = np.nonzero((lengths > max_length) | capped)[0]
    if len(over):
        prompts = np.asarray(_prompt_tokens(ds, [int(i) for i in over], tokenizer, limit))
        whole = int((prompts >= max_length).sum())
        cut = int(np.clip(lengths[over] - max_length, 0, None).sum())
        rows = [ds[int(i)]["__index"] for i in over[:SHOW]]
        huge = int(capped.sum())
        report.add(
            "warning",
            "overlong",
            f"{len(over)} rows are longer than max_length {max_length} tokens (longest {at_least}{int(lengths.max())}): "
            f"truncation keeps their first {max_length} tokens and cuts {at_least}{cut} tokens in all"
            + (f"; {whole} of them lose their whole (last) reply because the prompt alone is too long" if whole else "")
            + (
                f"; {huge} of them are over {limit} characters, measured on their first {limit} characters only"
                if huge
                else ""
            )
            + ". Raise training.max_length or drop those rows.",
            rows,
        )


def examine(
    dataset, task: formats.Task, section, what: str = "training", tokenizer=None, max_length: int | None = None
):
    """Convert and check one split. Returns (clean dataset or None, report, hashes for leakage checks)."""
    report = Report(what=what, rows=len(dataset))
    if len(dataset) == 0:
        report.add("error", "empty", f"The {what} data has no rows: point the source at a file or split with rows.")
        return None, report, {}
    try:
        dataset = formats.apply_column_map(dataset, section.columns)
        fmt, evidence = formats.detect(dataset.column_names, formats.first_row(dataset), section.format, task)
        report.format, report.evidence = fmt.name, evidence
        formats.check_method(fmt, task)
    except DataError as exc:
        report.add("error", "format", str(exc))
        return None, report, {}
    options = {"system_prompt": section.system_prompt, "chat_template": section.chat_template}
    ds = convert(dataset, fmt, options)
    if tokenizer is not None:
        ds = ds.map(
            _length_batch,
            batched=True,
            batch_size=BATCH,
            fn_kwargs={"tokenizer": tokenizer, "limit": measure_limit(max_length)},
            desc="Measuring token lengths",
            new_fingerprint=_fingerprint(
                ds, "lengths", tokenizer.name_or_path, tokenizer.chat_template, measure_limit(max_length)
            ),
        )
    errors, indices = ds["__error"], ds["__index"]
    bad = [(i, e) for i, e in zip(indices, errors, strict=True) if e]
    if bad:
        shown = "; ".join(f"row {i} {e}" for i, e in bad[:3])
        level = "warning" if section.drop_invalid else "error"
        action = (
            "were dropped (data.drop_invalid)"
            if section.drop_invalid
            else "stop training (set data.drop_invalid: true to drop them)"
        )
        report.add(
            level,
            "invalid_rows",
            f"{len(bad)} of {len(ds)} rows are invalid and {action}: {shown}.",
            [{"row": i, "reason": e} for i, e in bad],
        )
    bad_rows = {i for i, _ in bad}
    exact = _duplicates(ds["__hash"], indices, bad_rows)
    exact_rows = {i for i, _ in exact}
    near = _duplicates(ds["__nhash"], indices, bad_rows | exact_rows)
    for code, dups, kind in (("duplicates", exact, "exact "), ("near_duplicates", near, "near-")):
        if dups:
            action = "removed (data.dedupe)" if section.dedupe else "kept; set data.dedupe: true to remove them"
            report.add(
                "warning",
                code,
                f"{len(dups)} rows are {kind}duplicates of earlier rows ({action}).",
                [{"row": r, "same_as": s} for r, s in dups],
            )
    drop = bad_rows if section.drop_invalid else set()
    if section.dedupe:
        drop |= exact_rows | {r for r, _ in near}
    if drop:
        ds = ds.select([pos for pos, idx in enumerate(indices) if idx not in drop])
    if tokenizer is not None:
        _token_findings(report, ds, max_length, tokenizer)
    report.rows_kept = len(ds)
    if len(ds) == 0 and not report.errors:
        report.add(
            "error",
            "no_rows_left",
            f"No {what} rows are left after dropping invalid ones: fix the rows listed above or the column mapping.",
        )
    elif 0 < len(ds) < 50 and what == "training":
        report.add("warning", "tiny", f"Only {len(ds)} training rows: expect the model to memorise them.")
    hashes = {
        "exact": dict(zip(ds["__hash"], ds["__index"], strict=True)),
        "near": dict(zip(ds["__nhash"], ds["__index"], strict=True)),
    }
    return ds, report, hashes


def leakage(report: Report, train_hashes: dict, eval_hashes: dict) -> None:
    pairs = [(t, eval_hashes["near"][h]) for h, t in train_hashes["near"].items() if h in eval_hashes["near"]]
    if pairs:
        report.add(
            "warning",
            "leakage",
            f"{len(pairs)} held-out rows also appear in the training data "
            "(exact or near copies), so held-out metrics will look better than they are.",
            [{"train_row": t, "eval_row": e} for t, e in sorted(pairs)],
        )


def standard_form(columns: list[str]) -> str:
    """Which TRL form converted data is in: messages, prompt_completion, text or preference."""
    if "chosen" in columns:
        return "preference"
    if "messages" in columns:
        return "messages"
    if "completion" in columns:
        return "prompt_completion"
    return "text"


def strip_internal(ds):
    return ds.remove_columns([c for c in ds.column_names if c.startswith("__")])


def raise_on_errors(*reports: Report) -> None:
    for report in reports:
        if report.errors:
            raise DataError(report.errors[0].message)


def render_text(reports: list[Report]) -> str:
    lines = []
    for r in reports:
        lines.append(f"== {r.what} data: {r.rows} rows" + (f", {r.rows_kept} kept" if r.rows_kept is not None else ""))
        if r.format:
            lines.append(f"format: {r.format} — {r.evidence}")
        if r.tokens:
            lines.append("tokens per row: " + ", ".join(f"{k} {v}" for k, v in r.tokens.items()))
        for f in r.findings:
            where = ""
            if f.rows:
                first = f.rows[:8]
                where = " rows: " + ", ".join(
                    str(x.get("row", x.get("train_row"))) if isinstance(x, dict) else str(x) for x in first
                )
            lines.append(f"{f.level.upper()}: {f.message}{where}")
        if not r.findings:
            lines.append("no problems found")
    verdict = "NOT trainable" if any(r.errors for r in reports) else "trainable"
    lines.append(f"== verdict: {verdict}")
    return "\n".join(lines)
