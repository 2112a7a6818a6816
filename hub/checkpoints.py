"""Checkpoint sync through TRL's own Hub options: trainers/checkpoint_sync.py (the engine resumes from it)."""

from trainers.checkpoint_sync import (
    CONFIG_NAME,
    SYNC_STRATEGIES,
    fetch_last_checkpoint,
    record_config,
    sync_repo,
    sync_settings,
)

__all__ = ["CONFIG_NAME", "SYNC_STRATEGIES", "fetch_last_checkpoint", "record_config", "sync_repo", "sync_settings"]
