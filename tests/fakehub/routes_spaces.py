"""Space runtime, minimal: GET /runtime, POST /pause and /restart. Nothing runs: only the stage is stored (in
repo.json, key "runtime") so that `HfApi.get_space_runtime` / `space_info().runtime` return what was last set.

A new Space is "RUNNING" (cpu-basic). pause -> "PAUSED", restart -> "RUNNING" (factory reboot or not).
Pause and restart need a write token of the Space's namespace: 401 RepoNotFound without a token, 403 for another
user or a read token, 404 RepoNotFound for a missing Space (or a private one the caller cannot see).
"""

from __future__ import annotations

from .access import REPO, load_repo, load_repo_for_write
from .server import Ctx, Response
from .storage import Repo

DEFAULT_HARDWARE = "cpu-basic"
SLEEP_TIME = 172800  # the Hub's default gcTimeout (48 h) for free hardware


def space_runtime(repo: Repo) -> dict:
    """The SpaceRuntime JSON of a Space (the shape `huggingface_hub.SpaceRuntime` parses)."""
    stage = repo.meta.get("runtime", {}).get("stage", "RUNNING")
    running = stage not in ("PAUSED", "STOPPED")
    return {
        "stage": stage,
        "hardware": {"current": DEFAULT_HARDWARE if running else None, "requested": DEFAULT_HARDWARE},
        "storage": None,
        "gcTimeout": SLEEP_TIME,
        "replicas": {"current": 1 if running else 0, "requested": 1},
        "devMode": False,
        "domains": [{"domain": f"{repo.repo_id.replace('/', '-')}.hf.space", "stage": "READY"}],
    }


def _load_space(ctx: Ctx, *, write: bool) -> Repo:
    return load_repo_for_write(ctx) if write else load_repo(ctx)


def _set_stage(ctx: Ctx, stage: str) -> Response:
    repo = _load_space(ctx, write=True)
    with ctx.hub.store.lock:
        repo.meta.setdefault("runtime", {})["stage"] = stage
        repo.save()
    return Response.json(space_runtime(repo))


def runtime(ctx: Ctx) -> Response:
    return Response.json(space_runtime(_load_space(ctx, write=False)))


def pause(ctx: Ctx) -> Response:
    return _set_stage(ctx, "PAUSED")


def restart(ctx: Ctx) -> Response:
    return _set_stage(ctx, "RUNNING")


SPACE = r"/api/(?P<prefix>spaces)/" + REPO

ROUTES = [
    (("GET",), SPACE + r"/runtime", runtime),
    (("POST",), SPACE + r"/pause", pause),
    (("POST",), SPACE + r"/restart", restart),
]
