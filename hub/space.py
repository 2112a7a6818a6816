"""On a Space: pause it when the run queue has been empty for a while, so paid hardware stops billing.

Opt-in (`STUDIO_PAUSE_WHEN_IDLE=1`), with the owner's token (the Space's HF_TOKEN secret). A paused Space
restarts with an empty disk unless storage is mounted: push adapters (or turn on checkpoint sync) first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from hub.errors import message, with_retries

log = logging.getLogger(__name__)


def pause_space(space_id: str, token: str | None) -> str:
    """Pause `space_id`; returns its new stage. Raises HubError-style exceptions to the caller."""
    from huggingface_hub import HfApi

    runtime = with_retries(lambda: HfApi(token=token).pause_space(space_id), "pause space")
    return str(runtime.stage)


def idle_hook(env: Mapping[str, str] = os.environ) -> tuple[Callable[[], None] | None, float]:
    """(callback for the jobs worker, idle seconds before it fires); (None, 0) when not asked for."""
    if env.get("STUDIO_PAUSE_WHEN_IDLE", "").lower() not in ("1", "true", "yes") or not env.get("SPACE_ID"):
        return None, 0.0
    space_id, token = env["SPACE_ID"], env.get("HF_TOKEN")
    delay = float(env.get("STUDIO_PAUSE_AFTER_S", "600"))

    def pause() -> None:
        try:
            stage = pause_space(space_id, token)
            log.info("Run queue empty for %.0f s: paused Space %s (%s).", delay, space_id, stage)
        except Exception as exc:  # noqa: BLE001 - the app keeps serving; the log says why
            log.warning("Could not pause the Space: %s", message(exc, space_id, "pause"))

    return pause, delay
