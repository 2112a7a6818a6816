"""Build the train and held-out datasets a run uses, from the `data:` section of a RunConfig."""

from __future__ import annotations

from data import formats, sources
from trainers.errors import DataError


def _eval_rows(size: float, n: int) -> int:
    rows = int(size) if size >= 1 else int(round(size * n))
    return max(1, rows) if size > 0 else 0


def load_for_run(section, method: str):
    """Returns (train, eval or None, format name, info dict for the summary)."""
    train = sources.load(section.source, section.split, section.subset, section.revision)
    train, fmt = formats.prepare(train, method, section.columns)
    info = {"format": fmt, "source": section.source, "split": section.split}
    eval_ds = None
    if section.eval_source or section.eval_split:
        source = section.eval_source or section.source
        split = section.eval_split or ("train" if section.eval_source else "test")
        eval_ds = sources.load(source, split, section.subset, section.revision)
        eval_ds, eval_fmt = formats.prepare(eval_ds, method, section.columns, what="held-out")
        if eval_fmt != fmt:
            raise DataError(f"The held-out data is {eval_fmt} but the training data is {fmt}: use the same format.")
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
    info["train_rows"] = len(train)
    info["eval_rows"] = len(eval_ds) if eval_ds is not None else 0
    return train, eval_ds, fmt, info
