"""Trainer callbacks: metrics.jsonl writer and a graceful SIGTERM stop (checkpoint, then exit)."""

from __future__ import annotations

import errno
import math
import os
import signal
import time
from pathlib import Path

from transformers import TrainerCallback

from core.runfolder import RunFolder

# Keys the trainer logs that are not per-step metrics.
_SKIP = {"total_flos", "train_runtime", "train_samples_per_second", "train_steps_per_second"}


def truncate_metrics(folder: RunFolder, last_step: int) -> int:
    """Drop records logged after `last_step` (they will be logged again on resume); returns rows kept.
    The file is replaced atomically: a kill or a full disk mid-write leaves the old file, never half a file."""
    if not folder.metrics_path.exists():
        return 0
    kept = [row for row in folder.metrics() if row.get("step", 0) <= last_step]
    folder.write_metrics(kept)
    return len(kept)


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

    def __init__(self, folder: RunFolder, step_offset: int = 0):
        self.folder = folder
        self.step_offset = step_offset  # a continuation logs on from its parent's last step (continuous curves)
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
        row = {"step": state.global_step + self.step_offset, "epoch": round(state.epoch or 0.0, 4)}
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
        self.folder.append_metrics(row)


class OptimizerFromCheckpoint(TrainerCallback):
    """A continuation starts from its parent's optimizer state (AdamW moments) with a fresh learning-rate schedule:
    the state is loaded once the trainer has built its optimizer, and each group keeps the new schedule's rate."""

    def __init__(self, checkpoint: str | Path):
        self.path = Path(checkpoint) / "optimizer.pt"
        self.loaded = False

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        import torch

        if optimizer is None or not self.path.is_file():
            return
        saved = torch.load(self.path, map_location="cpu", weights_only=True)
        fresh = [{k: g[k] for k in ("lr", "initial_lr") if k in g} for g in optimizer.param_groups]
        optimizer.load_state_dict(saved)
        for group, rates in zip(optimizer.param_groups, fresh, strict=True):
            group.update(rates)
        self.loaded = True


class GracefulStop(TrainerCallback):
    """On SIGTERM, save a checkpoint at the end of the current step and stop training.  The handler is installed
    for a `with` block only and the previous one restored on every exit path (an exception included)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self) -> GracefulStop:
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGTERM, self._previous)

    def _handle(self, signum, frame):
        self.requested = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
        return control


# --- test-only fault injection ------------------------------------------------------------------------------
TEST_FAULT_ENV = "STUDIO_TEST_DIE_AT"
TEST_BARRIER_ENV = "STUDIO_TEST_BARRIER"
SAVE_PHASES = ("torn", "weights", "state", "optimizer")


class StepBarrier(TrainerCallback):
    """TEST ONLY: once this process has finished global step `step` (its on_step_end and then that step's
    logging, evaluation and checkpoint save), write `<folder>/reached-<step>` and block until the test creates
    `<folder>/release-<step>` (polled every `poll_s`).  Blocks at the next step's start, or at the end of training
    when `step` is the last one, so the test acts (SIGTERM, cancel, SIGKILL) at exactly that point on any machine
    speed.  A run resumed past `step` never reaches it again, so it never blocks there."""

    def __init__(self, folder: Path, step: int, poll_s: float = 0.05):
        self.folder, self.step, self.poll_s = Path(folder), step, poll_s
        self._armed = False

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            self._armed = True  # the trainer logs, evaluates and saves this step right after the callbacks

    def _wait(self) -> None:
        if not self._armed:
            return
        self._armed = False
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".reached-{self.step}.tmp"
        tmp.write_text(str(os.getpid()))
        os.replace(tmp, self.folder / f"reached-{self.step}")  # whole: the test reads the pid as soon as it exists
        release = self.folder / f"release-{self.step}"
        while not release.exists():
            time.sleep(self.poll_s)  # a signal's Python handler (GracefulStop) still runs while this waits

    def on_step_begin(self, args, state, control, **kwargs):
        self._wait()

    def on_train_end(self, args, state, control, **kwargs):
        self._wait()


def install_test_faults(trainer) -> None:
    """TEST ONLY: STUDIO_TEST_DIE_AT="save:<step>:<phase>[:enospc]" kills this process with SIGKILL (or raises
    OSError ENOSPC, a full disk) inside the checkpoint save of <step>, so tests hit exact points of a save
    without racing the clock.  Phases, in the order transformers 5.24 writes a checkpoint:
      torn       the weights file half written
      weights    weights written, nothing else
      state      weights and trainer_state.json written, no optimizer/scheduler (another writer's order)
      optimizer  weights, optimizer and scheduler written, no RNG state and no trainer_state.json
    STUDIO_TEST_BARRIER="<folder>:<step>" adds a StepBarrier: the run pauses after <step> until the test
    releases it.  Unset (always, outside tests) they do nothing."""
    barrier = os.environ.get(TEST_BARRIER_ENV, "")
    if barrier:
        folder, _, step = barrier.rpartition(":")
        if not folder or not step.isdigit():
            raise ValueError(f"{TEST_BARRIER_ENV}: expected <folder>:<step>, got {barrier!r}")
        trainer.add_callback(StepBarrier(Path(folder), int(step)))
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
