"""Every environment setting of the studio, read here and nowhere else.

| variable | default | what it does |
| --- | --- | --- |
| `STUDIO_HOME` | `studio_home` | where runs, uploads, comparisons, built models and the queue (jobs.db) live |
| `STUDIO_MULTI_USER` | auto | `1` forces the shared-Space rules (sign-in, path allowlist), `0` turns them off; auto = on a Space with OAuth |
| `SPACE_ID` | — | set by Hugging Face on a Space (`owner/name`) |
| `OAUTH_CLIENT_ID` | — | set by Hugging Face on a Space with `hf_oauth: true` |
| `STUDIO_ALLOWED_USERS` | — | comma-separated users or orgs allowed to start runs on a Space (empty: every signed-in user) |
| `STUDIO_ALLOW_REMOTE_CODE` | `0` | `1` lets signed-in users set `trust_remote_code` on a shared Space |
| `STUDIO_CHILD_ENV` | — | extra variable names passed to training children (names that look like secrets never pass) |
| `STUDIO_PAUSE_WHEN_IDLE` | `0` | `1` pauses the Space when the run queue has been empty `STUDIO_PAUSE_AFTER_S` seconds |
| `STUDIO_PAUSE_AFTER_S` | `600` | idle seconds before that pause |
| `STUDIO_QUIET` | — | set for children: only warnings on the console (train.log keeps everything) |
| `STUDIO_PLAYGROUND_CACHE_MB` | 25 % of free memory | how much memory the Playground's loaded models may hold before the least recently used is let go |
| `STUDIO_CPU_THREADS` | — | a parent's CPU thread share for its child (core/threads.py); `OMP_NUM_THREADS` wins |
| `HF_TOKEN` | — | the token of the one local user; on a Space, the Space owner's (never lent to users' runs) |
| `RANK`, `LOCAL_RANK`, `WORLD_SIZE` | 0, 0, 1 | set by `accelerate launch` / torchrun: only rank 0 writes the run folder |
| `GRADIO_SERVER_NAME`, `GRADIO_SERVER_PORT` | `127.0.0.1`, `7860` | where `./studio app` listens |

Libraries read their own variables (`HF_ENDPOINT`, `HF_HUB_OFFLINE`, `OMP_*`, `WANDB_*`, ...); the studio reads
a few of them only where it must decide something: `OMP_NUM_THREADS` / `OMP_WAIT_POLICY` in core/threads.py,
`HF_HUB_OFFLINE` / `HF_ENDPOINT` in data/sources.py (is the Hub reachable?), `WANDB_API_KEY` / `TRACKIO_SPACE_ID`
in trainers/run.py (can the chosen tracker log?), and the test-only hooks in trainers/callbacks.py.
"""

from __future__ import annotations

import os

DEFAULTS = {
    "STUDIO_HOME": "studio_home",
    "STUDIO_PAUSE_AFTER_S": "600",
    "GRADIO_SERVER_NAME": "127.0.0.1",
    "GRADIO_SERVER_PORT": "7860",
}
TRUE = ("1", "true", "yes")


def get(name: str) -> str:
    """The variable's value, or its default from the table ("" when it has none)."""
    return os.environ.get(name) or DEFAULTS.get(name, "")


def flag(name: str) -> bool:
    return get(name).lower() in TRUE


def names(name: str) -> set[str]:
    """A comma-separated setting as a set of stripped, non-empty names."""
    return {x.strip() for x in get(name).split(",") if x.strip()}


def space_id() -> str | None:
    return get("SPACE_ID") or None


def space_url() -> str | None:
    return f"https://huggingface.co/spaces/{space_id()}" if space_id() else None


def on_space_with_oauth() -> bool:
    return bool(get("SPACE_ID") and get("OAUTH_CLIENT_ID"))


def multi_user() -> bool:
    """True on a shared Space (OAuth configured), or when STUDIO_MULTI_USER=1 forces the shared-Space rules."""
    forced = get("STUDIO_MULTI_USER").lower()
    if forced in TRUE:
        return True
    if forced in ("0", "false", "no"):
        return False
    return on_space_with_oauth()


def local_token() -> str | None:
    """HF_TOKEN: the one local user's token (never a shared-Space user's)."""
    return get("HF_TOKEN") or None


def user_token(token: str | None) -> str | None:
    """The token a user's work runs with: their own, else (off a shared Space only) the one local user's HF_TOKEN.
    On a shared Space the Space's own HF_TOKEN never stands in for a user's."""
    return token or (None if multi_user() else local_token())


def remote_code_allowed() -> bool:
    return flag("STUDIO_ALLOW_REMOTE_CODE")


def allowed_users() -> set[str]:
    return {n.lower() for n in names("STUDIO_ALLOWED_USERS")}


def quiet() -> bool:
    return bool(get("STUDIO_QUIET"))


def process_rank() -> tuple[int, int, int]:
    """(rank, local rank, world size) under `accelerate launch` / torchrun (RANK, LOCAL_RANK, WORLD_SIZE, set by
    the launcher); (0, 0, 1) for a process on its own."""
    return int(get("RANK") or 0), int(get("LOCAL_RANK") or 0), int(get("WORLD_SIZE") or 1)


def playground_cache_bytes() -> int | None:
    """The Playground's model-cache budget in bytes, or None for its default (a share of free memory)."""
    value = get("STUDIO_PLAYGROUND_CACHE_MB")
    try:
        return int(float(value) * 2**20) if value and float(value) > 0 else None
    except ValueError:
        return None


def server() -> tuple[str, int]:
    return get("GRADIO_SERVER_NAME"), int(get("GRADIO_SERVER_PORT"))
