"""Settings read from the environment, each in one place."""

from __future__ import annotations

import os


def multi_user() -> bool:
    """True on a shared Space (OAuth configured), or when STUDIO_MULTI_USER=1 forces the shared-Space rules."""
    forced = os.environ.get("STUDIO_MULTI_USER", "").lower()
    if forced in ("1", "true", "yes"):
        return True
    if forced in ("0", "false", "no"):
        return False
    return bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))
