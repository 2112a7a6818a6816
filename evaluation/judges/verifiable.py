"""The verifiable judge: is a reply the reference answer?  `score` gives True/False per reply (None where the
row has no reference, which is not counted); evaluation/stats.rate turns that into a rate with its interval.

Modes:
- exact: the reply equals the reference after stripping surrounding whitespace, nothing else.
- normalised (default): equal after `normalise` (NFKC, case-folded, punctuation and the articles a/an/the dropped,
  whitespace collapsed, numbers compared as numbers: "1,000" == "1000" == "1000.0").
- contains: the normalised reference appears in the normalised reply as whole words ("cold" is in "The opposite of
  hot is cold." but "1" is not in "10").  Beware short references: "6" is also in "22 - 6 is 16".
- regex: the reply matches `pattern` (Python re.search, so anchor with ^ and $ for the whole reply); "{answer}" in
  the pattern is replaced by the reference, escaped.  A pattern without "{answer}" needs no reference.

Which mode for the shipped demo task (data/demo): its instruction replies are exact sentences ("The opposite of hot
is cold.", "Hello, Fatima!"), so **normalised** is the right one: it wants the whole sentence but forgives case,
punctuation and spacing; exact would fail a reply for a missing full stop, and contains would pass a reply that
rambles on after the answer.  The arithmetic prompts (grpo_*.jsonl, a `solution` like "16") suit contains only
with care (the question's own numbers may be echoed); a regex such as `(?:is|=)\\s*{answer}\\W*$` is stricter.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation

MODES = ("exact", "normalised", "contains", "regex")
ARTICLES = {"a", "an", "the"}
ANSWER = "{answer}"
# a number: thousands groups "1,000,000.5", plain "1000.0" or ".5"; a sign only when it touches the digits and no
# letter or digit comes before it ("-2" and "x = -2", but not the "-" of "5-2" or "pre-2000")
NUMBER = re.compile(r"(?:(?<![\w.])[-+\u2212])?(?:\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")
APOSTROPHES = "'\u2019\u02bc"


def _number(text: str) -> str:
    """The canonical form of a number token: no thousands separators, no trailing zeros, no "+", "-0" -> "0"."""
    text = text.replace(",", "").replace("\u2212", "-").lstrip("+")
    try:
        d = Decimal(text)
    except InvalidOperation:  # pragma: no cover - NUMBER only matches valid decimals
        return text
    s = format(d.normalize(), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _words(text: str) -> list[str]:
    """Words of a stretch without numbers: apostrophes dropped ("don't" -> "dont"), other punctuation and symbols
    split words, articles dropped."""
    text = "".join(
        "" if ch in APOSTROPHES else " " if unicodedata.category(ch)[0] in "PS" else ch for ch in text.casefold()
    )
    return [w for w in text.split() if w not in ARTICLES]


def normalise(text: str) -> str:
    """Text for comparing answers: NFKC, case-folded, punctuation and symbols dropped, the articles a/an/the dropped,
    whitespace collapsed to single spaces, and every number in one canonical form ("1,000" and "1000.0" -> "1000",
    "-0.50" -> "-0.5")."""
    text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    last = 0
    for m in NUMBER.finditer(text):
        out += _words(text[last : m.start()])
        out.append(_number(m.group()))
        last = m.end()
    out += _words(text[last:])
    return " ".join(out)


def _compile(pattern: str, reference: str | None) -> re.Pattern:
    expr = pattern.replace(ANSWER, re.escape(reference or ""))
    try:
        return re.compile(expr)
    except re.error as exc:
        raise ValueError(f"The verifiable judge's regex {pattern!r} is not a valid pattern: {exc}.") from exc


def check(reply: str, reference: str | None, mode: str = "normalised", pattern: str | None = None) -> bool | None:
    """One reply against its reference under `mode` (see the module's docstring); None when a needed reference is
    missing."""
    reply = reply or ""
    if mode == "regex":
        if not pattern:
            raise ValueError("The verifiable judge's regex mode needs a pattern.")
        if ANSWER in pattern and reference is None:
            return None
        return _compile(pattern, reference).search(reply) is not None
    if reference is None:
        return None
    if mode == "exact":
        return reply.strip() == reference.strip()
    want, got = normalise(reference), normalise(reply)
    if mode == "normalised":
        return got == want
    if mode == "contains":
        return got == want if not want else f" {want} " in f" {got} "
    raise ValueError(f"Unknown verifiable mode {mode!r}: choose from {', '.join(MODES)}.")


def score(
    replies: Sequence[str], references: Sequence[str | None], mode: str = "normalised", pattern: str | None = None
) -> list[bool | None]:
    """True/False per reply (is it the reference answer under `mode`?), None where the reference is missing (not
    counted: stats.rate drops and counts it).  Modes: exact, normalised, contains, regex (module docstring)."""
    if mode not in MODES:
        raise ValueError(f"Unknown verifiable mode {mode!r}: choose from {', '.join(MODES)}.")
    if len(replies) != len(references):
        raise ValueError(f"{len(replies)} replies but {len(references)} references: one reference per reply.")
    if mode == "regex" and pattern:
        _compile(pattern, "")  # a bad pattern is one sentence before any reply is scored
    return [check(reply, ref, mode, pattern) for reply, ref in zip(replies, references, strict=True)]


def _content(message) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    content = message.get("content") if isinstance(message, dict) else message
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _assistant(turns) -> str | None:
    if isinstance(turns, str):
        return turns
    if isinstance(turns, list):
        replies = [_content(m) for m in turns if isinstance(m, dict) and m.get("role") == "assistant"]
        return replies[-1] if replies else None
    return None


def reference_of(row: dict) -> str | None:
    """A held-out row's reference answer: its `solution` or `answer` column, else its (last) assistant reply
    (`messages`, or a `completion` as text or messages).  None when it has none (a preference pair's chosen reply is
    preferred, not the one right answer, so pairs get None); an empty reference is None too."""
    for key in ("solution", "answer"):
        if row.get(key) is not None and str(row[key]).strip():
            return str(row[key])
    reply = None
    if "messages" in row:
        reply = _assistant(row["messages"])
    elif "completion" in row:
        reply = _assistant(row["completion"])
    return reply if reply and reply.strip() else None


def references_of(rows: Iterable[dict]) -> list[str | None]:
    """`reference_of` of every row, in order."""
    return [reference_of(row) for row in rows]
