"""Read a run folder incrementally (byte offsets) and turn a failed run into one clear sentence."""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path

from core import errors
from core.runfolder import RunFolder, read_new_lines

read_new = read_new_lines  # complete lines after a byte offset (a half-written last line waits)


def metrics_since(run_dir: Path, after_step: int = -1, offset: int = 0) -> tuple[list[dict], int]:
    """Metric rows with step > after_step (from byte `offset` on), and the next offset (core.runfolder)."""
    return RunFolder(run_dir).metrics_since(after_step, offset)


def log_tail(run_dir: Path, max_bytes: int = 20_000) -> str:
    return RunFolder(run_dir).log_tail(max_bytes)


# Third-party noise a person reading the run's log does not need (it stays in train.log).
_WARNING = re.compile(r"^\S.*?:\d+: \w*Warning: ")  # python's warnings format: path:line: Category: message
_NOISE = (
    re.compile(r"\d+%\|.*\| *\d+/\d+ \["),  # tqdm progress bars (Loading weights ...)
    re.compile(r"Failed to load CPU gemm_4bit_forward|pip install kernels"),  # bitsandbytes on CPU
)
_TRACEBACK_GLUE = (
    "Traceback (most recent call last):",
    "During handling of the above exception",
    "The above exception was the direct cause",
)


def readable_log(text: str, partial_start: bool = False) -> str:
    """The log as a person reads it: without python warnings (and the source line they quote), tracebacks,
    progress bars, known third-party noise, or a line repeated; `partial_start`: the text starts mid-file, so
    its first line may be cut and is dropped. The file itself is never changed."""
    lines = text.splitlines()
    if partial_start and lines:
        lines = lines[1:]
    kept: list[str] = []
    seen: set[str] = set()
    skipping_indented = False  # inside a warning's quoted source or a traceback's frames
    in_traceback = after_traceback = False
    for line in lines:
        line = line.split("\r")[-1]  # a progress bar redrawn in place: its last state
        if any(line.startswith(glue) for glue in _TRACEBACK_GLUE):
            in_traceback, skipping_indented = True, True
            continue
        if skipping_indented and (line.startswith((" ", "\t")) or not line.strip()):
            continue
        if in_traceback:  # the exception line ends a traceback (the run's one sentence says it better)
            in_traceback = skipping_indented = False
            after_traceback = True
            continue
        skipping_indented = False
        if after_traceback and not line.strip():
            continue
        after_traceback = False
        if _WARNING.match(line):
            skipping_indented = True
            continue
        if any(noise.search(line) for noise in _NOISE):
            continue
        if line.strip() and line in seen:
            continue
        seen.add(line)
        kept.append(line)
    return "\n".join(kept)


def readable_tail(run_dir: Path, max_bytes: int = 20_000) -> str:
    """The end of train.log without third-party noise and tracebacks (readable_log); the file keeps them."""
    folder = RunFolder(run_dir)
    text = folder.log_tail(max_bytes)
    try:
        cut = folder.log_path.stat().st_size > max_bytes
    except OSError:
        cut = False
    return readable_log(text, partial_start=cut)


def read_summary(run_dir: Path) -> dict:
    """summary.json as a plain dict ({} when missing or half written); RunFolder(run_dir).summary() is typed."""
    return RunFolder(run_dir).summary().to_dict()


DISK_FULL = errors.DISK_FULL
OOM = f"The run ran out of memory: {errors.OOM_ADVICE}"
PATTERNS = [  # (text in the log, exit reason, message)
    ("out of memory", "out_of_memory", OOM),
    ("can't allocate memory", "out_of_memory", OOM),
    ("memoryerror", "out_of_memory", OOM),
    ("gatedrepoerror", "gated_model", "The model is gated: accept its licence on its Hub page, then sign in again."),
    ("invalid user token", "bad_token", "The Hugging Face token was rejected: sign in again or set a valid HF_TOKEN."),
    ("no space left on device", "disk_full", DISK_FULL),
    ("the disk is full", "disk_full", DISK_FULL),
]
LOW_DISK_BYTES = 16 * 2**20  # a failed run on a disk with less free than this failed because the disk is full


def _disk_nearly_full(run_dir: Path) -> bool:
    try:
        return shutil.disk_usage(run_dir).free < LOW_DISK_BYTES
    except OSError:
        return False


def classify(returncode: int | None, run_dir: Path, cancelled: bool = False) -> tuple[str, str, str | None]:
    """(status, exit_reason, user message) for a finished child process."""
    folder = RunFolder(run_dir)
    summary = folder.summary()
    status = summary.status
    if status == "succeeded" and returncode in (0, None):  # None: adopted after a restart, its own record decides
        return "succeeded", "completed", None
    if cancelled or status == "cancelled":
        return "cancelled", "cancelled", "Cancelled; the last checkpoint is kept and the run can be resumed."
    tail = folder.log_tail().lower()
    if summary.error:
        reason = summary.exit_reason or "error"
        for needle, code, _ in PATTERNS:
            if needle in summary.error.lower():
                reason = code
        return "failed", reason, DISK_FULL if reason == "disk_full" else summary.error
    for needle, code, message in PATTERNS:
        if needle in tail:
            return "failed", code, message
    if _disk_nearly_full(run_dir):
        return "failed", "disk_full", DISK_FULL
    if returncode is None:
        return (
            "failed",
            "lost",
            "The training process ended without recording how (it may have been killed); resume the run to continue.",
        )
    if returncode < 0:
        name = signal.Signals(-returncode).name
        if -returncode == signal.SIGKILL:
            return (
                "failed",
                "killed",
                (
                    "The training process was killed (SIGKILL), often because the machine ran out of memory: "
                    "lower the batch size or max_length, or use QLoRA, then resume the run."
                ),
            )
        return "failed", "killed", f"The training process was stopped by {name}; resume the run to continue."
    return "failed", "error", f"The training process exited with code {returncode}; see train.log."
