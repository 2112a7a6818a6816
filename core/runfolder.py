"""The run folder: the one contract the engine, the queue, the Hub push, the evaluation and the UI share.

    config.yaml        the resolved RunConfig, re-runnable as is
    summary.json       status, error, hardware, counts, final metrics (RunSummary)
    metrics.jsonl      one JSON object per log event (a killed process may leave half a last line)
    train.log          the engine's log
    data_report.json   the data doctor's reports
    adapter/           the trained adapter (or full model) and its tokenizer
    checkpoints/       the Trainer's checkpoints

Reads are tolerant (a missing or half-written file reads as empty); writes are atomic (a temporary file, then
os.replace) and happen on rank 0 only, so under `accelerate launch` one process owns the folder.  Nothing else
opens summary.json by hand.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from core import settings


def is_main_process() -> bool:
    """Rank 0 of a launcher (accelerate / torchrun set RANK), or a process on its own."""
    return settings.process_rank()[0] == 0


def read_new_lines(path: Path, offset: int) -> tuple[list[str], int]:
    """Complete lines written after byte `offset`, and the offset to continue from; a half-written last line
    (no newline yet) is left for the next call."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    return data[: end + 1].decode("utf-8", errors="replace").splitlines(), offset + end + 1


def read_json(path: Path) -> dict:
    """A JSON object from `path`; {} when it is missing, unreadable, half written or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` in one step: a kill or a full disk mid-write leaves the old file, never half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Mapping) -> None:
    write_text_atomic(path, json.dumps(dict(data), indent=2, default=str))


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON-lines file; lines that do not parse (a half-written last line) are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


class RunSummary(Mapping):
    """summary.json, typed: the fields every reader uses are attributes; every key stays readable as a mapping
    (`summary["hardware"]`, `summary.get("cpu_threads")`), so a newer engine's keys survive a round trip."""

    def __init__(self, data: Mapping | None = None):
        self._data: dict[str, Any] = dict(data or {})

    # the Mapping protocol: read-only views of the raw record
    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"RunSummary({self._data!r})"

    def update(self, *args, **fields) -> RunSummary:
        self._data.update(*args, **fields)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    @property
    def exists(self) -> bool:
        return bool(self._data)

    @property
    def status(self) -> str:
        """running / succeeded / failed / cancelled, or "missing" when there is no readable summary."""
        return self._data.get("status") or "missing"

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def method(self) -> str | None:
        return self._data.get("method")

    @property
    def model(self) -> str | None:
        """The base model as the config names it."""
        return self._data.get("model")

    @property
    def model_path(self) -> str | None:
        """The base model as loaded (a resolved local folder or Hub id); falls back to `model`."""
        return self._data.get("model_path") or self._data.get("model")

    @property
    def error(self) -> str | None:
        return self._data.get("error")

    @property
    def exit_reason(self) -> str | None:
        return self._data.get("exit_reason")

    @property
    def pid(self) -> int | None:
        return self._data.get("pid")

    @property
    def global_step(self) -> int | None:
        return self._data.get("global_step")

    @property
    def wall_time_s(self) -> float | None:
        return self._data.get("wall_time_s")

    @property
    def tokens_seen(self) -> int | None:
        return self._data.get("tokens_seen")

    @property
    def trainable_params(self) -> int | None:
        return self._data.get("trainable_params")

    @property
    def total_params(self) -> int | None:
        return self._data.get("total_params")

    @property
    def peak_memory_mb(self) -> float | None:
        """Peak GPU memory on a GPU run, else peak RSS."""
        return self._data.get("peak_gpu_mb") or self._data.get("peak_rss_mb")

    @property
    def peak_memory_kind(self) -> str:
        return "GPU" if self._data.get("peak_gpu_mb") else "RSS"

    @property
    def final_metrics(self) -> dict:
        return self._data.get("final_metrics") or {}

    @property
    def data(self) -> dict:
        return self._data.get("data") or {}

    @property
    def hardware(self) -> dict:
        return self._data.get("hardware") or {}


class RunFolder:
    """One run folder: where each file is, tolerant reads, atomic rank-0 writes, where the adapter is."""

    CONFIG = "config.yaml"
    SUMMARY = "summary.json"
    METRICS = "metrics.jsonl"
    LOG = "train.log"
    DATA_REPORT = "data_report.json"
    ADAPTER = "adapter"
    CHECKPOINTS = "checkpoints"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # --- paths --------------------------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def summary_path(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    @property
    def log_path(self) -> Path:
        return self.path / self.LOG

    @property
    def data_report_path(self) -> Path:
        return self.path / self.DATA_REPORT

    @property
    def adapter_path(self) -> Path:
        """Where the engine saves the adapter (see adapter() for where one is found)."""
        return self.path / self.ADAPTER

    @property
    def checkpoints_path(self) -> Path:
        return self.path / self.CHECKPOINTS

    def is_run(self) -> bool:
        """A folder the engine wrote (its summary.json exists)."""
        return self.summary_path.exists()

    # --- reads (tolerant) ---------------------------------------------------------------------------------------
    def summary(self) -> RunSummary:
        """The summary; empty (status "missing") when summary.json is missing or half written."""
        return RunSummary(read_json(self.summary_path))

    def metrics(self) -> list[dict]:
        """metrics.jsonl rows; a half-written last line (a killed process) is skipped."""
        return read_jsonl(self.metrics_path)

    def metrics_since(self, after_step: int = -1, offset: int = 0) -> tuple[list[dict], int]:
        """Rows with step > after_step written from byte `offset` on, and the offset to continue from; a
        half-written last line (no newline yet) is left for the next call."""
        lines, offset = read_new_lines(self.metrics_path, offset)
        rows = []
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("step", 0) > after_step:
                rows.append(row)
        return rows, offset

    def data_reports(self) -> list[dict]:
        return read_json(self.data_report_path).get("reports", [])

    def config_text(self) -> str | None:
        try:
            return self.config_path.read_text(encoding="utf-8")
        except OSError:
            return None

    def log_tail(self, max_bytes: int = 20_000) -> str:
        """The last `max_bytes` of train.log ("" when there is none)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - max_bytes))
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def adapter(self) -> Path | None:
        """Where the trained weights are: adapter/ of a run folder, or the folder itself when it is an adapter
        (adapter_config.json) or a model (config.json); None when it is neither."""
        return adapter_location(self.path)

    # --- writes (atomic, rank 0 only) ---------------------------------------------------------------------------
    def write_summary(self, summary: Mapping) -> None:
        self.write_json(self.SUMMARY, summary)

    def write_json(self, name: str, data: Mapping) -> None:
        """Write `name` in this folder atomically, from rank 0 only (the other ranks return)."""
        if is_main_process():
            write_json_atomic(self.path / name, data)

    def write_text(self, name: str, text: str) -> None:
        if is_main_process():
            write_text_atomic(self.path / name, text)

    def write_metrics(self, rows: list[dict]) -> None:
        """Replace metrics.jsonl atomically with `rows` (rank 0 only)."""
        if is_main_process():
            write_text_atomic(self.metrics_path, "".join(json.dumps(row) + "\n" for row in rows))

    def append_metrics(self, row: Mapping) -> None:
        """Append one row, flushed (the caller decides who logs: the Trainer's world process zero)."""
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(dict(row)) + "\n")
            f.flush()


def adapter_location(path: str | Path) -> Path | None:
    """The one answer to "where is the adapter?": `path`/adapter when it is a folder, else `path` itself when
    it holds adapter_config.json (an adapter) or config.json (a full model), else None."""
    path = Path(path)
    if (path / RunFolder.ADAPTER).is_dir():
        return path / RunFolder.ADAPTER
    if (path / "adapter_config.json").is_file() or (path / "config.json").is_file():
        return path
    return None
