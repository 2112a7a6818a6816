"""Clip rows so huge that the trainer would tokenize megabytes only to keep the first max_length tokens.

The doctor measures token lengths on at most `doctor.measure_limit(max_length)` characters of a row and marks the
rows it could not measure whole (`__tokens_capped`).  When the trainer truncates (keeps the start, or the end),
those rows are clipped to the same number of characters before they reach it: every string keeps at least that
many characters on the kept side, which is more than max_length tokens, so the tokens the trainer keeps are the
same and a 50 MB row costs no more than a long one.  Turns of a conversation wholly past the limit are dropped.
Strategies that keep every token (packing `bfd_split`, `wrapped`, no max_length) are never clipped.
"""

from __future__ import annotations

KEEP_START, KEEP_END = "start", "end"


def _clip_text(text: str, limit: int, keep: str) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] if keep == KEEP_START else text[-limit:]


def clip_value(value, limit: int, keep: str):
    """Strings clipped; a list (of turns) loses whole items once `limit` characters lie on the kept side."""
    if isinstance(value, str):
        return _clip_text(value, limit, keep)
    if isinstance(value, dict):
        return {k: clip_value(v, limit, keep) for k, v in value.items()}
    if isinstance(value, list):
        items = value if keep == KEEP_START else value[::-1]
        out, seen = [], 0
        for item in items:
            if seen >= limit:
                break
            item = clip_value(item, limit, keep)
            out.append(item)
            seen += size(item)
        return out if keep == KEEP_START else out[::-1]
    return value


def size(value) -> int:
    """Characters of text in a value (strings inside dicts and lists counted)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(size(v) for v in value.values())
    if isinstance(value, list):
        return sum(size(v) for v in value)
    return 0


def clip_capped_rows(ds, limit: int, keep: str | None):
    """`ds` with its capped rows (doctor column `__tokens_capped`) clipped to `limit` characters; (ds, count)."""
    if keep is None or "__tokens_capped" not in ds.column_names:
        return ds, 0
    count = sum(bool(c) for c in ds["__tokens_capped"])
    if not count:
        return ds, 0
    columns = [c for c in ds.column_names if not c.startswith("__")]

    def clip_row(row):
        if not row["__tokens_capped"]:
            return {c: row[c] for c in columns}
        return {c: clip_value(row[c], limit, keep) for c in columns}

    return ds.map(clip_row, desc=None), count
