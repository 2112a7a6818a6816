"""Who is using the app, with which token, and whether they may launch runs.

On a Space with `hf_oauth: true`, the signed-in user owns their runs and their OAuth token goes to the
run's process through its environment only.  Locally the owner is "local" and the token is HF_TOKEN or
the cached login.  STUDIO_ALLOWED_USERS (comma-separated users or orgs) restricts who may train.
"""

from __future__ import annotations

from core import settings

MOCK_TOKEN = "mock-oauth-token-for-local-dev"  # what gradio's local OAuth mock hands out (STACK_NOTES)


def identity(profile=None, oauth_token=None) -> tuple[str | None, str | None]:
    """(owner, token). owner is None when a Space visitor has not signed in.  On a shared Space the token is
    only ever the user's own OAuth token, never the Space's HF_TOKEN."""
    if profile is not None:
        owner = profile.get("preferred_username") or getattr(profile, "username", None)
        token = getattr(oauth_token, "token", None)
        token = settings.user_token(None if token == MOCK_TOKEN else token)
        return owner or None, token
    if settings.multi_user():
        return None, None
    from huggingface_hub import get_token

    return "local", get_token()


def may_launch(owner: str | None, profile=None) -> str | None:
    """None when allowed, else the one sentence that explains why not."""
    if owner is None:
        return "Sign in with Hugging Face (button at the top) to start runs; browsing needs no sign-in."
    allowed = settings.allowed_users()
    if not allowed:
        return None
    orgs = {o.get("name", o.get("preferred_username", "")).lower() for o in (profile or {}).get("orgs", []) or []}
    if owner.lower() in allowed or orgs & allowed:
        return None
    return f"This Space only lets {', '.join(sorted(allowed))} start runs; duplicate it to train with your own GPU."
