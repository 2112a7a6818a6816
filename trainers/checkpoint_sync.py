"""Checkpoint sync through TRL's own Hub options, and resuming from the Hub on a fresh machine.

Pushing is transformers' Trainer's job: `training.push_to_hub: true`, `hub_model_id`, `hub_strategy:
checkpoint` (or `all_checkpoints`) and `hub_private_repo: true` upload each saved checkpoint in the background
(`last-checkpoint/` in the repo). The run's resolved config is placed next to the checkpoints
(`checkpoints/run_config.yaml`), so it travels with them. What the Trainer does not do is bring a checkpoint
back: `fetch_last_checkpoint` downloads it when the run folder has none (a Space restarted without storage)
and refuses a repo that holds a different run; the engine rebuilds metrics.jsonl from its log history.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from pathlib import Path

import yaml

from core.errors import ConfigError
from trainers.hub_errors import HubError, message, with_retries

log = logging.getLogger("hub.checkpoints")
SYNC_STRATEGIES = ("checkpoint", "all_checkpoints")
CONFIG_NAME = "run_config.yaml"


def sync_repo(training: dict) -> str | None:
    """The Hub repo checkpoints are synced to, when the config asks for it."""
    if training.get("push_to_hub") and training.get("hub_strategy") in SYNC_STRATEGIES:
        return training.get("hub_model_id") or None
    return None


def sync_settings(repo_id: str) -> dict:
    """The TRL fields that turn checkpoint sync on (what the UI writes into `training:`)."""
    return {"push_to_hub": True, "hub_model_id": repo_id, "hub_strategy": "checkpoint", "hub_private_repo": True}


def record_config(checkpoints_dir: Path, resolved: dict) -> None:
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    (checkpoints_dir / CONFIG_NAME).write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")


def _remote_folder(files: list[str]) -> str | None:
    if any(f.startswith("last-checkpoint/") for f in files):
        return "last-checkpoint"
    steps = {int(m.group(1)) for f in files if (m := re.match(r"checkpoint-(\d+)/", f))}
    return f"checkpoint-{max(steps)}" if steps else None


def _comparable(config: dict) -> dict:
    """What must match to resume: everything but the number of steps/epochs still to train."""
    config = json.loads(json.dumps(config))
    for key in ("max_steps", "num_train_epochs", "push_to_hub", "hub_model_id", "hub_strategy", "hub_private_repo"):
        (config.get("training") or {}).pop(key, None)
    return config


def fetch_last_checkpoint(repo_id: str, checkpoints_dir: Path, resolved: dict, token: str | None = None) -> Path | None:
    """Download the newest checkpoint of `repo_id` into `checkpoints_dir`; None when the repo has none yet."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError

    api = HfApi(token=token)
    if "/" not in repo_id:  # the Trainer accepts a bare name and creates it in the user's namespace
        repo_id = f"{with_retries(lambda: api.whoami()['name'], 'whoami')}/{repo_id}"
    try:
        files = with_retries(lambda: api.list_repo_files(repo_id), "list checkpoints")
    except RepositoryNotFoundError:
        return None  # first attempt: the Trainer creates the repo
    except Exception as exc:
        raise HubError(message(exc, repo_id, "fetch checkpoints from")) from exc
    folder = _remote_folder(files)
    if folder is None:
        return None
    with tempfile.TemporaryDirectory(prefix="studio-ckpt-") as tmp:
        try:
            with_retries(
                lambda: snapshot_download(
                    repo_id, allow_patterns=[f"{folder}/*", CONFIG_NAME], local_dir=tmp, token=token
                ),
                "download checkpoint",
            )
        except Exception as exc:
            raise HubError(message(exc, repo_id, "fetch checkpoints from")) from exc
        remote_config = Path(tmp) / CONFIG_NAME
        if remote_config.exists():
            theirs = yaml.safe_load(remote_config.read_text(encoding="utf-8"))
            if _comparable(theirs) != _comparable(resolved):
                raise ConfigError(
                    f"The checkpoint repo {repo_id} holds a different run (its {CONFIG_NAME} differs): "
                    "set training.hub_model_id to a repo of its own for this run."
                )
        state = json.loads((Path(tmp) / folder / "trainer_state.json").read_text(encoding="utf-8"))
        step = int(state.get("global_step", 0))
        target = checkpoints_dir / f"checkpoint-{step}"
        checkpoints_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(tmp) / folder), target)
    log.info("Fetched %s/%s from the Hub (step %d) into %s", repo_id, folder, step, target)
    return target
