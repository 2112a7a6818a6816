"""Trainer callbacks: metrics.jsonl writer and a graceful SIGTERM stop (checkpoint, then exit)."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import time
from pathlib import Path

from transformers import TrainerCallback

from trainers.metrics_file import read_metrics

# Keys the trainer logs that are not per-step metrics.
_SKIP = {"total_flos", "train_runtime", "train_samples_per_second", "train_steps_per_second"}


def truncate_metrics(path: Path, last_step: int) -> int:
    """Drop records logged after `last_step` (they will be logged again on resume); returns rows kept."""
    if not path.exists():
        return 0
    kept = [row for row in read_metrics(path) if row.get("step", 0) <= last_step]
    write_rows(path, kept)
    return len(kept)


def write_rows(path: Path, rows: list[dict]) -> None:
    """Replace metrics.jsonl atomically: a kill or a full disk mid-write leaves the old file, never half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    os.replace(tmp, path)


def rows_from_log_history(log_history: list[dict]) -> list[dict]:
    """metrics.jsonl rows rebuilt from a checkpoint's trainer_state.json (a checkpoint fetched from the Hub)."""
    rows = []
    for entry in log_history:
        row = {"step": entry.get("step", 0), "epoch": round(entry.get("epoch") or 0.0, 4)}
        row.update({k: v for k, v in entry.items() if k not in row and k not in _SKIP and isinstance(v, (int, float))})
        rows.append(row)
    return rows


class MetricsWriter(TrainerCallback):
    """Appends one JSON object per log event to metrics.jsonl, flushed, with tokens_per_second."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._last_time = None
        self._last_tokens = None

    def _tokens(self, state, logs) -> float | None:
        seen = getattr(state, "num_input_tokens_seen", 0) or 0
        return float(seen) if seen else logs.get("num_tokens")

    def on_step_begin(self, args, state, control, **kwargs):
        if self._last_time is None:  # first step of this process (state is loaded by now on resume)
            self._last_time = time.perf_counter()
            self._last_tokens = float(getattr(state, "num_input_tokens_seen", 0) or 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        for key, value in logs.items():
            if key in _SKIP or not isinstance(value, (int, float)):
                continue
            row[key] = None if isinstance(value, float) and not math.isfinite(value) else value
        now = time.perf_counter()
        tokens = self._tokens(state, logs)
        is_train_step = "loss" in logs
        if is_train_step and tokens is not None:
            if self._last_time is not None and now > self._last_time:
                row["tokens_per_second"] = round((tokens - self._last_tokens) / (now - self._last_time), 2)
            row["tokens_seen"] = tokens
            self._last_tokens, self._last_time = tokens, now
        row["time"] = round(time.time(), 3)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()


class GracefulStop(TrainerCallback):
    """On SIGTERM, save a checkpoint at the end of the current step and stop training."""

    def __init__(self):
        self.requested = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.requested = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        signal.signal(signal.SIGTERM, self._previous)


# --- test-only fault injection ------------------------------------------------------------------------------
TEST_FAULT_ENV = "STUDIO_TEST_DIE_AT"
SAVE_PHASES = ("torn", "weights", "state", "optimizer")


def install_test_faults(trainer) -> None:
    """TEST ONLY: STUDIO_TEST_DIE_AT="save:<step>:<phase>[:enospc]" kills this process with SIGKILL (or raises
    OSError ENOSPC, a full disk) inside the checkpoint save of <step>, so tests hit exact points of a save
    without racing the clock.  Phases, in the order transformers 5.24 writes a checkpoint:
      torn       the weights file half written
      weights    weights written, nothing else
      state      weights and trainer_state.json written, no optimizer/scheduler (another writer's order)
      optimizer  weights, optimizer and scheduler written, no RNG state and no trainer_state.json
    Unset (always, outside tests) it does nothing."""
    spec = os.environ.get(TEST_FAULT_ENV, "")
    if not spec.startswith("save:"):
        return
    _, step, phase, *how = spec.split(":")
    if phase not in SAVE_PHASES:
        raise ValueError(f"{TEST_FAULT_ENV}: phase must be one of {SAVE_PHASES}")

    def fault():
        if how == ["enospc"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.kill(os.getpid(), signal.SIGKILL)

    def due() -> bool:
        return trainer.state.global_step == int(step)

    save_optimizer, save_rng = trainer._save_optimizer_and_scheduler, trainer._save_rng_state

    def before_optimizer(output_dir):
        if due() and phase == "torn":
            for weights in Path(output_dir).glob("*.safetensors"):
                os.truncate(weights, weights.stat().st_size // 2)
            fault()
        if due() and phase == "weights":
            fault()
        if due() and phase == "state":
            trainer.state.save_to_json(str(Path(output_dir) / "trainer_state.json"))
            fault()
        return save_optimizer(output_dir)

    def before_rng(output_dir):
        if due() and phase == "optimizer":
            fault()
        return save_rng(output_dir)

    trainer._save_optimizer_and_scheduler, trainer._save_rng_state = before_optimizer, before_rng
