"""Train N more: a finished run continued as a new run from its last complete checkpoint (weights + optimizer
state), with a fresh learning-rate schedule for the N more steps (or epochs).  The new run's config records
`continues: <parent id>` and `init_from: <parent>/checkpoints/checkpoint-K`; its metrics log on from the parent's
last step, so both curves read as one (trainers/run.py continuation)."""

from __future__ import annotations

import copy
from pathlib import Path

from core.errors import ConfigError
from core.runfolder import RunFolder
from trainers import config as config_mod


def continuation_config(parent_dir: str | Path, parent_id: str, steps: int | None = None, epochs=None) -> dict:
    """The raw config (a mapping, validated) of a run that trains `parent_dir` for `steps` more optimizer steps, or
    `epochs` more epochs.  Raises ConfigError in one sentence when the parent cannot be continued."""
    from trainers.run import last_complete_checkpoint

    if (steps is None) == (epochs is None):
        raise ConfigError("Say how much more to train: a number of steps or of epochs (one of the two).")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise ConfigError(f"The number of more steps must be a whole number, 1 or more; got {steps!r}.")
    if epochs is not None and not (
        isinstance(epochs, (int, float)) and not isinstance(epochs, bool) and 0 < epochs <= 1000
    ):
        raise ConfigError(f"The number of more epochs must be greater than 0; got {epochs!r}.")
    folder = RunFolder(Path(parent_dir))
    if not folder.summary().succeeded:
        raise ConfigError(
            f"Run {parent_id} has not finished successfully, so it cannot be continued: resume it instead."
        )
    ckpt = last_complete_checkpoint(folder.path / "checkpoints", need_optimizer=True, set_aside=False)
    if not ckpt:
        raise ConfigError(
            f"Run {parent_id} kept no complete checkpoint (weights and optimizer state) to continue from: "
            "train it again with save_strategy steps."
        )
    raw = copy.deepcopy(config_mod.read_yaml(folder.config_path))
    raw["continues"] = parent_id
    raw["init_from"] = ckpt
    if (raw.get("peft") or {}).get("type") == "none":  # full fine-tuning: the checkpoint is the whole model
        raw["model"] = {**(raw.get("model") or {}), "name_or_path": ckpt}
    training = dict(raw.get("training") or {})
    if steps is not None:
        training["max_steps"] = int(steps)
    else:
        training.update(max_steps=-1, num_train_epochs=epochs)
    training.pop("resume_from_checkpoint", None)
    raw["training"] = training
    raw.pop("autofit", None)
    config_mod.from_dict(copy.deepcopy(raw))  # refuse here, in one sentence, what the run would refuse
    return raw
