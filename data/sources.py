"""Load a dataset from a local file or a Hub id, through `datasets` (nothing hand-rolled)."""

from __future__ import annotations

from pathlib import Path

from trainers.errors import DataError

FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


def is_local(source: str) -> bool:
    return Path(source).expanduser().exists() or Path(source).suffix.lower() in FILE_BUILDERS


def load(source: str, split: str = "train", subset: str | None = None, revision: str | None = None):
    """Return a `datasets.Dataset` for one split of a local file or Hub dataset."""
    import datasets

    if is_local(source):
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"Data file {source!r} does not exist: check data.source.")
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if path.is_dir():
            try:
                return datasets.load_dataset(str(path), name=subset, split=split)
            except ValueError as exc:
                raise DataError(f"No split {split!r} in {source!r}: {exc}") from exc
        if builder is None:
            raise DataError(f"Unsupported file type {path.suffix!r}: use .json, .jsonl, .csv, .parquet or .txt.")
        if path.stat().st_size == 0:
            raise DataError(f"The data file {path.name} is empty: point data.source at a file with rows.")
        try:
            return datasets.load_dataset(builder, data_files=str(path), split="train")
        except Exception as exc:  # datasets raises many types for unreadable files
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"Could not read {path.name} as {builder}: {reason}") from exc
    try:
        return datasets.load_dataset(source, name=subset, split=split, revision=revision)
    except ValueError as exc:
        if "split" in str(exc).lower():
            raise DataError(f"Dataset {source!r} has no split {split!r}: {str(exc).splitlines()[0]}") from exc
        raise
