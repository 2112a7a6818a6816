"""User-facing errors: one sentence that says what to change, never a traceback."""

from __future__ import annotations

import errno


class StudioError(Exception):
    """An error whose message is meant for the user as is."""


class ConfigError(StudioError):
    """The run config is wrong; the message names the key and what to change."""


class DataError(StudioError):
    """The dataset cannot be used as configured."""


class ModelError(StudioError):
    """The model (or adapter) cannot be loaded as configured."""


def _hub_error_message(exc: BaseException) -> str | None:
    try:
        from huggingface_hub import errors as hub_errors
    except ImportError:  # pragma: no cover - huggingface_hub is a hard dependency
        return None
    name = type(exc).__name__
    if isinstance(exc, hub_errors.GatedRepoError):
        return (
            "This model or dataset is gated: accept its licence on its Hub page with your account, "
            "then sign in or set HF_TOKEN to a token of that account."
        )
    if isinstance(exc, hub_errors.RepositoryNotFoundError):
        return (
            "The Hub repository was not found or is private: check the id for typos, "
            "or set HF_TOKEN to a token that can read it."
        )
    if isinstance(exc, hub_errors.RevisionNotFoundError):
        return "That revision (branch, tag or commit) does not exist in the repository: check model.revision."
    if isinstance(exc, hub_errors.LocalEntryNotFoundError) or name in {"ConnectError", "ConnectTimeout"}:
        return "The Hugging Face Hub could not be reached: check the network, or use a local path or cached model."
    if isinstance(exc, hub_errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 401:
            return "The Hugging Face token was rejected: sign in again or set HF_TOKEN to a valid token."
        if status == 403:
            return "Your Hugging Face token lacks permission for this repository: use a token with read access."
    return None


def quiet_hub_retries() -> None:
    """huggingface_hub logs every retry as a warning; the one-line error says it better."""
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()


def _raised_in_training_args(exc: BaseException) -> bool:
    """True when TrainingArguments / TRL's config rejected a combination of options in __post_init__."""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "__post_init__" and code.co_filename.endswith(("training_args.py", "_config.py")):
            return True
        tb = tb.tb_next
    return False


OOM_ADVICE = (  # what to change after an out-of-memory failure (here and in jobs/monitor.py)
    "lower training.per_device_train_batch_size or training.max_length, use model.quantization: 4bit (QLoRA), "
    "or set training.activation_checkpointing: true."
)
DISK_FULL = "The disk is full: delete old runs or checkpoints to free space, then resume the run."
DISK_FULL_TEXTS = ("no space left on device", "database or disk is full", "the disk is full")


def disk_full(exc: BaseException) -> bool:
    """ENOSPC anywhere in the exception chain (torch and safetensors wrap it in RuntimeError; SQLite says
    'database or disk is full')."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen).lower()
        if getattr(seen, "errno", None) == errno.ENOSPC or any(t in text for t in DISK_FULL_TEXTS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def user_message(exc: BaseException) -> str:
    """Turn any exception into one clear sentence for the user."""
    if isinstance(exc, StudioError):
        return str(exc)
    if disk_full(exc):
        return DISK_FULL
    cause: BaseException | None = exc
    while cause is not None:  # transformers/datasets wrap Hub errors in OSError
        hub = _hub_error_message(cause)
        if hub:
            return hub
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    lowered = text.lower()
    if (
        isinstance(exc, MemoryError)
        or type(exc).__name__ == "OutOfMemoryError"
        or any(t in lowered for t in ("out of memory", "can't allocate memory", "cannot allocate memory"))
    ):
        where = "GPU" if "cuda" in lowered or type(exc).__name__ == "OutOfMemoryError" else "run"
        return f"The {where} ran out of memory: {OOM_ADVICE}"
    if any(
        t in lowered for t in ("couldn't connect to", "offline mode", "couldn't reach", "name or service not known")
    ):
        return (
            "The Hugging Face Hub could not be reached and the files are not cached here: check the id and "
            "the network, or use a local path."
        )
    if type(exc).__name__ == "NoMatchingPeftModuleError" or "not found in the base model" in text:
        return (
            "peft.target_modules matches no module of this model: use all-linear, or the names of its linear "
            "layers (python -m trainers estimate CONFIG lists them for the same target_modules)."
        )
    if isinstance(exc, ValueError) and _raised_in_training_args(exc):
        first = " ".join(text.split())[:300].rstrip(".") or "they conflict"
        return f"The training options do not fit together ({first}): change the training keys it names."
    if isinstance(exc, KeyboardInterrupt):
        return "The run was interrupted."
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"Unexpected error ({type(exc).__name__}: {first[:300]})."
