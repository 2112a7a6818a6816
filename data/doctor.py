"""The data doctor: convert a dataset to TRL's standard form and report what is wrong with it.

Findings are errors (training cannot start) or warnings (training starts; the report says what it
will cost).  Works in batched `datasets.map` passes, so memory stays bounded on large sets.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from core.errors import DataError
from data import clip, formats, tokens
from data import convert as cv

BATCH = 1000
SHOW = 20  # row indices listed per finding
_WORDS = re.compile(r"[\W_]+", re.UNICODE)
STANDARD = ("messages", "prompt", "completion", "chosen", "rejected", "text", "label", "tools")


@dataclass
class Finding:
    level: str  # error | warning | info
    code: str
    message: str
    rows: list = field(default_factory=list)
    count: int = 0  # rows concerned (rows lists at most SHOW of them)


@dataclass
class Report:
    what: str
    rows: int
    format: str | None = None
    evidence: str | None = None
    rows_kept: int | None = None
    tokens: dict | None = None
    histogram: dict | None = None  # tokens per row in bins (histogram()), with the max_length cut
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    def add(self, level, code, message, rows=(), count: int | None = None):
        rows = list(rows)
        self.findings.append(Finding(level, code, message, rows[:SHOW], len(rows) if count is None else count))

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


PLACEHOLDER = re.compile(r"\{\{\s*[A-Za-z_][\w.]*\s*\}\}")
# Converted columns holding conversations or nested values: stored as JSON so each row keeps exactly its own keys
# (Arrow would union the keys of every row's tool calls and fill the gaps with nulls).
JSON_COLUMNS = ("messages", "prompt", "completion", "chosen", "rejected")  # + "solution" stays a string


def _features(keys):
    from datasets import Features, Json, Value

    types = {"label": Value("bool"), "__index": Value("int64")}
    types.update({k: Value("bool") for k in ("__placeholder", "__tools", "__reasoning")})
    return Features({k: Json() if k in JSON_COLUMNS else types.get(k, Value("string")) for k in keys})


def _convert_row(row: dict, fmt, options: dict) -> dict:
    converted = fmt.convert(row, options)
    if options.get("keep_chosen"):
        converted = cv.keep_chosen(converted)
    converted["__error"] = converted.get("__error") or ""
    return converted


def _convert_batch(batch: dict, indices: list[int], fmt, options: dict) -> dict:
    keys = list(batch)
    out: dict[str, list] = {}
    for pos, idx in enumerate(indices):
        converted = _convert_row({k: batch[k][pos] for k in keys}, fmt, options)
        content = {k: converted[k] for k in STANDARD if k in converted}
        replies = [converted.get(k) for k in ("messages", "completion", "chosen", "text")]
        converted["__index"] = idx
        converted["__hash"] = _digest(json.dumps(content, sort_keys=True, ensure_ascii=False))
        converted["__nhash"] = _digest(
            " ".join(_WORDS.sub(" ", _texts(list(content.values())).lower()).split()) + (converted.get("tools") or "")
        )
        converted["__placeholder"] = bool(PLACEHOLDER.search(_texts(replies)))
        converted["__tools"], converted["__reasoning"] = tokens.uses(converted)
        for key, value in converted.items():
            out.setdefault(key, []).append(value)
    return out


def _code_version() -> str:
    """datasets caches map() results by the mapped function's own bytecode, not by what it calls:
    fingerprint with our converters' source so a code change never reuses a stale conversion."""
    from pathlib import Path

    here = Path(__file__).parent
    names = ("convert.py", "formats.py", "doctor.py", "tokens.py", "trees.py")
    return _digest("".join((here / n).read_text(encoding="utf-8") for n in names))


def _fingerprint(dataset, *parts: Any) -> str:
    return _digest(json.dumps([dataset._fingerprint, _code_version(), *parts], sort_keys=True, default=str))


def convert(dataset, fmt, options: dict):
    first = _convert_row(dataset[0], fmt, options) if len(dataset) else {}
    keys = [*first, "__index", "__hash", "__nhash", "__placeholder", "__tools", "__reasoning"]
    return dataset.map(
        _convert_batch,
        batched=True,
        batch_size=BATCH,
        with_indices=True,
        remove_columns=dataset.column_names,
        fn_kwargs={"fmt": fmt, "options": options},
        features=_features(keys),
        desc=f"Converting {fmt.name}",
        new_fingerprint=_fingerprint(dataset, fmt.name, options),
    )


def _render(tokenizer, row: dict) -> str:
    """One standard row as the model sees it under the chat template (with the row's tools)."""
    tools = tokens._tools(row)
    if "messages" in row:
        return tokenizer.apply_chat_template(row["messages"], tools=tools, tokenize=False)
    if "completion" in row and not isinstance(row["completion"], list):  # raw strings, no template
        return row["prompt"] + row["completion"]
    if "prompt" in row:
        reply = row.get("completion") or max(row["chosen"], row["rejected"], key=lambda m: len(_texts(m)))
        return tokenizer.apply_chat_template(row["prompt"] + reply, tools=tools, tokenize=False)
    return row["text"]


def render_row(tokenizer, row: dict) -> str:
    """A converted row exactly as training will tokenize it (for previews)."""
    return _render(tokenizer, {k: v for k, v in row.items() if not k.startswith("__")})


def _rows_of(batch: dict):
    keys = [k for k in batch if not k.startswith("__")]
    return ({k: batch[k][pos] for k in keys} for pos in range(len(batch[keys[0]])))


# Token counting is bounded: a row longer than this many characters per max_length token (or than
# MEASURE_CHARS without a max_length) is measured on that much of it only (clipped on the side truncation keeps)
# and reported as "at least N tokens".  No tokenizer averages 32 characters a token, so such a row is far over
# max_length either way.
CHARS_PER_TOKEN_BOUND = 32
MEASURE_CHARS = 1_000_000


def measure_limit(max_length: int | None) -> int:
    """The most characters of one row that are ever tokenized."""
    return CHARS_PER_TOKEN_BOUND * max_length if max_length else MEASURE_CHARS


def _clip_for_measure(row: dict, limit: int, keep: str) -> dict:
    """A huge row cut to what can matter: keeping the start, a prompt keeps its end (a shortened prompt is its
    end) and the replies their start; keeping the end, everything keeps its end."""
    if keep != clip.KEEP_START:
        return {k: clip.clip_value(v, limit, keep) for k, v in row.items()}
    out = {k: clip.clip_value(v, limit, clip.KEEP_END if k == "prompt" else keep) for k, v in row.items()}
    msgs = row.get("messages")
    if isinstance(msgs, list) and any(m.get("role") == "assistant" for m in msgs):
        prompt, reply = tokens.last_turn(msgs)
        head = clip.clip_value(msgs, limit, keep)
        if not any(m.get("role") == "assistant" for m in head):  # the first reply lies past the limit
            out["messages"] = clip.clip_value(prompt, limit, clip.KEEP_END) + clip.clip_value(reply, limit, keep)
    return out


def _measure_batch(batch: dict, tokenizer, plan: tokens.Plan, form: str, limit: int) -> dict:
    errors = list(batch["__error"])
    out = {"__tokens": [], "__loss": [], "__prompt_tokens": [], "__tokens_capped": [], "__shortened": []}
    rewritten = {k: list(batch[k]) for k in ("prompt", "messages") if k in batch}
    for pos, row in enumerate(_rows_of(batch)):
        capped = clip.size(row) > limit
        if capped:
            row = _clip_for_measure(row, limit, plan.keep or clip.KEEP_START)
        m = tokens.Measure(0, 0)
        # A clipped row measured for a trainer that keeps every token: its counts are lower bounds, never a
        # reason to shorten or drop it (-1 loss tokens: unknown, kept).
        row_plan = replace(plan, shorten_prompts=False) if capped and plan.keep is None else plan
        if not errors[pos]:
            try:
                m = tokens.measure(tokenizer, row, form, row_plan)
                if row_plan is not plan and m.loss == 0:
                    m.loss = -1
            except Exception as exc:  # noqa: BLE001 - a template that rejects a row makes that row invalid
                errors[pos] = f"is rejected by the model's chat template ({str(exc).splitlines()[0][:120]})"
        for key, value in (m.shortened or {}).items():
            rewritten[key][pos] = value
        out["__tokens"].append(m.tokens)
        out["__loss"].append(m.loss)
        out["__prompt_tokens"].append(m.prompt)
        out["__tokens_capped"].append(capped and m.shortened is None)  # a shortened row is small again
        out["__shortened"].append(m.shortened is not None)
    out["__error"] = errors
    return {**out, **rewritten}


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


def histogram(lengths, max_length: int | None, bins: int = 16) -> dict:
    """Tokens per row in about `bins` bins of equal width up to max_length (half as many past it, up to
    3 x max_length, then one bin for the rest); max_length + 1 is a bin edge, so the bins from it on hold exactly
    the rows truncation cuts.  {"edges": [e0, e1, ...], "counts": [...], "max_length": m, "over": rows over m}."""
    import math

    import numpy as np

    lengths = np.asarray(lengths)
    top = int(lengths.max()) if len(lengths) else 0
    width = max(1, math.ceil(min(top, max_length or top) / bins))
    edges = list(range(0, min(top, max_length or top) + 1, width))
    if max_length and top >= max_length:
        stop = min(top, 3 * max_length)
        past = max(1, math.ceil((stop - max_length) / (bins // 2)))  # coarser bins past the cut
        edges = [e for e in edges if e <= max_length] + list(range(max_length + 1, stop + 1, past))
    if edges[-1] <= top:
        edges.append(top + 1)
    counts, _ = np.histogram(lengths, bins=edges)
    over = int((lengths > max_length).sum()) if max_length else 0
    return {"edges": edges, "counts": counts.tolist(), "max_length": max_length, "over": over}


def _token_findings(report: Report, ds, plan: tokens.Plan, form: str, what: str, drop: bool = True):
    """Token percentiles, overlong rows, shortened prompts; drops the rows that keep no loss token (unless `drop`
    is False: invalid rows were kept and already stop training).  Returns ds."""
    import numpy as np

    lengths = np.asarray(ds["__tokens"])
    if not len(lengths):
        return ds
    capped = np.asarray(ds["__tokens_capped"])
    loss = np.asarray(ds["__loss"])
    limit = measure_limit(plan.max_length)
    index = ds["__index"]
    report.tokens = {f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 99)}
    report.tokens.update(max=int(lengths.max()), mean=round(float(lengths.mean()), 1), total=int(lengths.sum()))
    report.tokens["loss_tokens"] = int(loss.clip(0).sum())
    report.histogram = histogram(lengths, plan.max_length)
    if capped.any():  # counts of the huge rows are lower bounds
        report.tokens.update(capped_rows=int(capped.sum()))
    at_least = "at least " if capped.any() else ""
    pair = form == "preference"
    unit = "pairs" if pair else "rows"
    shortened = np.nonzero(np.asarray(ds["__shortened"]))[0]
    if len(shortened):
        report.add(
            "warning",
            "shortened_prompts",
            f"{len(shortened)} {unit} have prompts too long for max_length {plan.max_length} beside their replies: "
            "each prompt was cut from its start (oldest turns first, marked …) so the replies fit.",
            [index[int(i)] for i in shortened[:SHOW]],
            len(shortened),
        )
    max_length = plan.max_length
    over = np.nonzero(((lengths > max_length) | capped) & (loss != 0))[0] if max_length else []
    if len(over) and plan.keep is not None:
        side = "first" if plan.keep == "start" else "last"
        cut = int(np.clip(lengths[over] - max_length, 0, None).sum())
        huge = int(capped[over].sum())
        report.add(
            "warning",
            "overlong",
            f"{len(over)} {unit} are longer than max_length {max_length} tokens (longest {at_least}"
            f"{int(lengths.max())}): truncation keeps their {side} {max_length} tokens and cuts {at_least}{cut} "
            "tokens in all"
            + (f"; {huge} of them are over {limit} characters, measured on {limit} characters only" if huge else "")
            + ". Raise training.max_length or drop those rows.",
            [index[int(i)] for i in over[:SHOW]],
            len(over),
        )
    empty = np.nonzero(loss == 0)[0]
    if len(empty) and drop:
        before = "the turns before their first reply fill" if form == "messages" else "their prompt alone fills"
        why = (
            f"{before} max_length {max_length} tokens"
            if max_length and plan.keep == "start"
            else "they have no reply token to train on"
        )
        prompts = np.asarray(ds["__prompt_tokens"])[empty]
        if len(empty) == len(ds):
            report.add(
                "error",
                "no_loss_tokens",
                f"No {what} {unit} keep a reply token to train on: {why}"
                + (f" (the shortest prompt is {int(prompts.min())} tokens)" if prompts.any() else "")
                + ". Raise training.max_length or use shorter prompts.",
                [index[int(i)] for i in empty[:SHOW]],
                len(empty),
            )
            return ds.select([])
        report.add(
            "warning",
            "no_loss_tokens",
            f"{len(empty)} {unit} keep no reply token ({why}) and are dropped: nothing of them would train. "
            "Raise training.max_length to keep them.",
            [index[int(i)] for i in empty[:SHOW]],
            len(empty),
        )
        ds = ds.select(np.nonzero(loss != 0)[0].tolist())
    return ds


def _template_findings(report: Report, ds, tokenizer, plan: tokens.Plan) -> bool:
    """Refuse tool-using rows a template cannot render; say what happens to reasoning it has no field for.
    Returns False when training must not start."""
    tool_rows = [i for i, t in zip(ds["__index"], ds["__tools"], strict=True) if t]
    if tool_rows and not tokens.template_renders(tokenizer, plan, "tools"):
        report.add(
            "error",
            "no_tool_template",
            f"{len(tool_rows)} rows use tools (tool calls, tool turns or a tools schema) but this model's chat "
            "template cannot render them, so they would train without their calls: use a model whose chat "
            "template supports tools (Qwen2.5, Qwen3, Llama 3.1 and later, ...).",
            tool_rows,
        )
        return False
    thinking = [i for i, r in zip(ds["__index"], ds["__reasoning"], strict=True) if r]
    if thinking and not tokens.template_renders(tokenizer, plan, "reasoning"):
        report.add(
            "warning",
            "reasoning_dropped",
            f"{len(thinking)} rows carry reasoning (thinking) parts but this model's chat template has no thinking "
            "field: the reasoning is left out and only the replies train.",
            thinking,
        )
    return True


def _balance(report: Report, labels: list[bool]) -> None:
    """Feedback data: how many replies are desirable and undesirable.  KTO's paper (and TRL's KTOConfig docs) keep
    desirable_weight * desirable / (undesirable_weight * undesirable) between 1 and 4/3; outside it, say which
    weights bring it back."""
    good, bad = sum(labels), len(labels) - sum(labels)
    if not labels:
        return
    report.add(
        "info",
        "balance",
        f"{good} desirable (label true) and {bad} undesirable (label false) replies ({good / len(labels):.0%} desirable).",
    )
    if not good or not bad:
        report.add(
            "warning",
            "one_sided",
            f"Every reply is labelled {'true' if good else 'false'}: KTO learns from both kinds; add replies labelled "
            f"{'false' if good else 'true'}.",
        )
        return
    ratio = good / bad
    if not 1.0 <= ratio <= 4 / 3:
        weight = round(bad / good * 1.15, 2)  # desirable_weight that puts the ratio inside [1, 4/3]
        report.add(
            "warning",
            "imbalanced",
            f"Desirable to undesirable is {ratio:.2f}:1; KTO works best between 1 and 4/3 (desirable_weight x desirable"
            f" / undesirable_weight x undesirable): set training.desirable_weight: {weight} (undesirable_weight 1).",
        )


def _media_only(bad: list[tuple[int, str]], rows: int) -> bool:
    marker = cv.MEDIA_REFUSAL.split("{what}")[1]
    return len(bad) == rows and all(marker in e for _, e in bad)


def _options(section, keep_chosen: bool) -> dict:
    return {"system_prompt": section.system_prompt, "chat_template": section.chat_template, "keep_chosen": keep_chosen}


def examine(
    dataset,
    task: formats.Task,
    section,
    what: str = "training",
    tokenizer=None,
    max_length: int | None = None,
    plan: tokens.Plan | None = None,
):
    """Convert and check one split. Returns (clean dataset or None, report, hashes for leakage checks).

    With a tokenizer every row is measured as the trainer will tokenize, mask and truncate it (`plan`, or keep
    the start of `max_length` tokens): rows that keep no loss token are dropped, so `rows_kept` is exactly the
    number of rows that train."""
    plan = plan or tokens.Plan(max_length=max_length)
    report = Report(what=what, rows=len(dataset))
    if len(dataset) == 0:
        report.add("error", "empty", f"The {what} data has no rows: point the source at a file or split with rows.")
        return None, report, {}
    keep = getattr(section, "keep", None)
    try:
        dataset = formats.apply_column_map(dataset, section.columns)
        fmt, evidence = formats.detect(dataset.column_names, formats.first_row(dataset), section.format, task, keep)
        report.format, report.evidence = fmt.name, evidence
        formats.check_method(fmt, task, keep)
    except DataError as exc:
        report.add("error", "format", str(exc))
        return None, report, {}
    if fmt.regroup is not None:
        dataset = fmt.regroup(dataset)
        report.add(
            "info",
            "regrouped",
            f"{report.rows} message rows form {len(dataset)} conversation trees; each tree trains as one "
            "conversation along its best-ranked replies.",
        )
        if len(dataset) == 0:
            report.add("error", "empty", f"The {what} data has no conversation roots (messages without a parent).")
            return None, report, {}
    chosen = formats.keeps_chosen(fmt, task, keep)
    if chosen:
        report.evidence += "; data.keep: chosen trains SFT on the prompt and its chosen (or true-labelled) reply"
    ds = convert(dataset, fmt, _options(section, chosen))
    form = standard_form(ds.column_names)
    if tokenizer is not None and not _template_findings(report, ds, tokenizer, plan):
        return None, report, {}
    if tokenizer is not None:
        limit = measure_limit(plan.max_length)
        ds = ds.map(
            _measure_batch,
            batched=True,
            batch_size=BATCH,
            fn_kwargs={"tokenizer": tokenizer, "plan": plan, "form": form, "limit": limit},
            desc="Measuring tokens",
            new_fingerprint=_fingerprint(ds, "tokens", tokenizer.name_or_path, tokenizer.chat_template, plan, form),
        )
    errors, indices = ds["__error"], ds["__index"]
    bad = [(i, e) for i, e in zip(indices, errors, strict=True) if e]
    if bad and _media_only(bad, len(ds)):
        report.add(
            "error",
            "multimodal",
            f"This dataset is multimodal (every row carries images, audio or video: {bad[0][1].split(':')[0]}): "
            "this studio trains text models, so use a text-only dataset.",
            [{"row": i, "reason": e} for i, e in bad],
        )
        return None, report, {}
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
    if "label" in ds.column_names and not chosen:
        _balance(report, [lab for i, lab in zip(indices, ds["label"], strict=True) if i not in bad_rows])
    placeholders = [i for i, p in zip(indices, ds["__placeholder"], strict=True) if p and i not in bad_rows]
    if placeholders:
        report.add(
            "warning",
            "placeholders",
            f"{len(placeholders)} rows contain template placeholders such as {{{{name}}}} that will be trained "
            "literally: fill them in (e.g. your assistant's name) before training.",
            placeholders,
        )
    drop = bad_rows if section.drop_invalid else set()
    if section.dedupe:
        drop |= exact_rows | {r for r, _ in near}
    if drop:
        ds = ds.select([pos for pos, idx in enumerate(indices) if idx not in drop])
    if tokenizer is not None:
        ds = _token_findings(report, ds, plan, form, what, drop=not report.errors)
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
    if "prompt" in columns:
        return "prompts"
    return "text"


def trl_shape(ds) -> str:
    """The converted form in words ("conversations", "prompt/completion strings", ...), for comparing two sets."""
    form = standard_form(ds.column_names)
    row = ds[0] if len(ds) else {}
    plain = isinstance(row.get("prompt", row.get("messages")), str)
    names = {
        "messages": "conversations",
        "prompt_completion": "prompt/completion",
        "text": "plain text",
        "prompts": "prompts",
    }
    name = names.get(form, "preference pairs")
    return f"{name} {'strings' if plain else 'messages'}" if form in ("prompt_completion", "preference") else name


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


def converted_row(dataset, index: int, fmt_name: str, task: formats.Task, section) -> tuple[dict, str]:
    """Row `index` (a row number of the doctor's report) of the raw `dataset`, converted as `examine` converts it
    in format `fmt_name`: (its standard columns, why it is invalid or "")."""
    dataset = formats.apply_column_map(dataset, section.columns)
    fmt = formats.BY_NAME[fmt_name]
    if fmt.regroup is not None:
        dataset = fmt.regroup(dataset)
    if not 0 <= index < len(dataset):
        raise DataError(f"There is no row {index}: the rows are numbered 0 to {len(dataset) - 1}.")
    options = _options(section, formats.keeps_chosen(fmt, task, getattr(section, "keep", None)))
    row = _convert_row(dataset[int(index)], fmt, options)
    return {k: v for k, v in row.items() if not k.startswith("__")}, row["__error"]


def measured_row(tokenizer, row: dict, form: str, plan: tokens.Plan) -> tuple[dict, tokens.Measure]:
    """One converted row measured as `_measure_batch` measures it: (the row as it trains, its prompt shortened when
    the doctor shortens it, and its Measure)."""
    limit = measure_limit(plan.max_length)
    measured = _clip_for_measure(row, limit, plan.keep or clip.KEEP_START) if clip.size(row) > limit else row
    m = tokens.measure(tokenizer, measured, form, plan)
    return {**measured, **(m.shortened or {})}, m
