"""Build the train and held-out datasets a run uses, from the `data:` section of a RunConfig.

Every run goes through the data doctor: formats are detected and converted, invalid rows found,
duplicates and leakage counted, token lengths measured under the model's chat template.
"""

from __future__ import annotations

from core.errors import DataError
from data import clip, doctor, formats, sources, tokens


def _eval_rows(size: float, n: int) -> int:
    rows = int(size) if size >= 1 else int(round(size * n))
    return max(1, rows) if size > 0 else 0


def load_for_run(
    section,
    task: formats.Task,
    tokenizer=None,
    max_length: int | None = None,
    keep: str | None = "start",
    plan: tokens.Plan | None = None,
    online: bool | None = None,
):
    """Returns (train, eval or None, TRL form, info, doctor reports); datasets are None when a report has errors.

    `plan` says how the trainer tokenizes, masks and truncates (the trainers layer builds it from the run's
    config); without one, rows are truncated to `max_length` keeping the `keep` side ("start" / "end"; None: the
    trainer keeps every token).  Rows too long to measure are clipped on the side the trainer drops before it
    tokenizes them (data/clip.py).  `info` counts the rows that train exactly.  `online`: whether the Hub is
    reachable, when the caller knows (None: sources.load probes when a source is a Hub id)."""
    plan = plan or tokens.Plan(max_length=max_length, keep=keep)
    max_length, keep = plan.max_length, plan.keep
    raw = sources.load(section.source, section.split, section.subset, section.revision, online)
    train, report, train_hashes = doctor.examine(raw, task, section, "training", tokenizer, plan=plan)
    reports = [report]
    info = {"format": report.format, "evidence": report.evidence, "source": section.source, "split": section.split}
    eval_ds = None
    if report.errors:
        return None, None, None, info, reports
    if section.eval_source or section.eval_split:
        source = section.eval_source or section.source
        split = section.eval_split or "train"
        raw_eval = sources.load(source, split, section.subset, section.revision, online)
        eval_ds, eval_report, eval_hashes = doctor.examine(raw_eval, task, section, "held-out", tokenizer, plan=plan)
        reports.append(eval_report)
        if eval_report.errors:
            return None, None, None, info, reports
        train_shape, eval_shape = doctor.trl_shape(train), doctor.trl_shape(eval_ds)
        if train_shape != eval_shape:  # compared after conversion: alpaca and messages are both conversations
            raise DataError(
                f"The held-out data converts to {eval_shape} ({eval_report.format}) but the training data to "
                f"{train_shape} ({report.format}): use held-out data of the same shape."
            )
        doctor.leakage(eval_report, train_hashes, eval_hashes)
        info["eval"] = f"{source}:{split}"
    elif section.eval_size > 0:
        rows = _eval_rows(section.eval_size, len(train))
        if rows >= len(train):
            raise DataError(
                f"data.eval_size {section.eval_size} leaves no training rows out of {len(train)}: lower it or set 0."
            )
        parts = train.train_test_split(test_size=rows, seed=section.seed, shuffle=True)
        train, eval_ds = parts["train"], parts["test"]
        info["eval"] = f"{rows} rows carved from {section.split} (seed {section.seed})"
    if section.max_samples is not None and section.max_samples < len(train):
        train = train.shuffle(seed=section.seed).select(range(section.max_samples))
    if max_length and keep:
        limit = doctor.measure_limit(max_length)
        train, clipped = clip.clip_capped_rows(train, limit, keep)
        if eval_ds is not None:
            eval_ds, clipped_eval = clip.clip_capped_rows(eval_ds, limit, keep)
            clipped += clipped_eval
        if clipped:
            info["clipped_rows"] = f"{clipped} rows over {limit} characters clipped before tokenizing (keep {keep})"
    train = doctor.strip_internal(train)
    eval_ds = doctor.strip_internal(eval_ds) if eval_ds is not None else None
    info["train_rows"] = len(train)
    info["eval_rows"] = len(eval_ds) if eval_ds is not None else 0
    return train, eval_ds, doctor.standard_form(train.column_names), info, reports
