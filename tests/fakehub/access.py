"""Visibility, gating and write rules, with the Hub's error codes (what `hf_raise_for_status` maps to exceptions).

- private repo, or no such repo: 401 (anonymous) / 404 (signed in), X-Error-Code RepoNotFound
- gated repo file downloads: 401 (anonymous) / 403 (no access granted), X-Error-Code GatedRepo
- unknown revision: 404 RevisionNotFound; unknown file: 404 EntryNotFound (with X-Repo-Commit)
- invalid token: 401 "Invalid credentials in Authorization header" on every route (see server.py)
"""

from __future__ import annotations

from urllib.parse import unquote

from .server import Ctx, HubError
from .storage import Repo

TYPE_OF_PREFIX = {"models": "model", "datasets": "dataset", "spaces": "space", None: "model"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
REPO = r"(?P<repo>[^/]+/[^/]+)"
API = r"/api/(?P<prefix>models|datasets|spaces)/" + REPO
WEB = r"/(?:(?P<prefix>datasets|spaces)/)?" + REPO


def repo_type_of(ctx: Ctx) -> str:
    return TYPE_OF_PREFIX[ctx.params.get("prefix")]


def repo_web_url(ctx: Ctx, repo: Repo) -> str:
    return f"{ctx.hub.url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"


def repo_not_found(ctx: Ctx) -> HubError:
    if ctx.user is None:
        return HubError(401, "Invalid username or password.", "RepoNotFound")
    return HubError(404, "Repository not found", "RepoNotFound")


def can_read(repo: Repo, ctx: Ctx) -> bool:
    return not repo.private or (ctx.user is not None and ctx.user.owns(repo.namespace))


def load_repo(ctx: Ctx, *, download: bool = False) -> Repo:
    """The repo named by the route, if this caller may see it (and download from it, for gated repos)."""
    repo = ctx.hub.store.get(repo_type_of(ctx), unquote(ctx.params["repo"]))
    if repo is None or not can_read(repo, ctx):
        raise repo_not_found(ctx)
    if download and repo.gated and not has_gated_access(repo, ctx):
        kind = repo.repo_type
        if ctx.user is None:
            message = (
                f"Access to {kind} {repo.repo_id} is restricted. You must have access to it and be authenticated "
                "to access it. Please log in."
            )
            raise HubError(401, message, "GatedRepo")
        message = (
            f"Access to {kind} {repo.repo_id} is restricted and you are not in the authorized list. "
            f"Visit {repo_web_url(ctx, repo)} to ask for access."
        )
        raise HubError(403, message, "GatedRepo")
    return repo


def has_gated_access(repo: Repo, ctx: Ctx) -> bool:
    user = ctx.user
    return user is not None and (user.owns(repo.namespace) or user.name in repo.meta["gated_users"])


def resolve(repo: Repo, ctx: Ctx) -> str:
    revision = unquote(ctx.params.get("rev", "main"))
    sha = repo.resolve(revision)
    if sha is None:
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
    return sha


def require_writer(ctx: Ctx, namespace: str) -> None:
    """Write routes: 401 without a token, 403 for a read token or a namespace the user does not own."""
    if ctx.user is None:
        raise HubError(401, "You must be authenticated to do this (use a write token).")
    if ctx.user.role != "write":
        raise HubError(403, "This action requires a token with write access.")
    if not ctx.user.owns(namespace):
        raise HubError(403, f"You don't have the rights to write in the namespace {namespace}.")


def load_repo_for_write(ctx: Ctx) -> Repo:
    if ctx.user is None:
        raise HubError(401, "You must be authenticated to do this (use a write token).", "RepoNotFound")
    repo = load_repo(ctx)
    require_writer(ctx, repo.namespace)
    return repo
