"""Read routes: whoami, repo info, auth-check, tree listings, paths-info, refs, commits, downloads (resolve + CDN)."""

from __future__ import annotations

import hashlib
from urllib.parse import quote, unquote, urlencode

import yaml

from .access import API, WEB, load_repo, load_repo_for_write, resolve
from .server import Ctx, HubError, Response
from .storage import FileMeta, Repo


def whoami(ctx: Ctx) -> Response:
    user = ctx.user
    if user is None:
        raise HubError(401, "Invalid credentials in Authorization header")
    orgs = [{"type": "org", "name": org, "fullname": org.title(), "roleInOrg": "write"} for org in user.orgs]
    return Response.json(
        {
            "type": "user",
            "id": hashlib.sha1(user.name.encode()).hexdigest()[:24],
            "name": user.name,
            "fullname": user.name.title(),
            "email": f"{user.name}@example.com",
            "emailVerified": True,
            "canPay": False,
            "isPro": False,
            "periodEnd": None,
            "avatarUrl": f"{ctx.hub.url}/avatars/{user.name}.svg",
            "orgs": orgs,
            "auth": {
                "type": "access_token",
                "accessToken": {"displayName": "fakehub", "role": user.role, "createdAt": "2026-01-01T00:00:00.000Z"},
            },
        }
    )


def card_data(repo: Repo, sha: str) -> dict | None:
    """The YAML front matter of README.md, as the Hub returns it in `cardData`."""
    readme = repo.file_path(sha, "README.md")
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    try:
        data = yaml.safe_load(text.split("---", 2)[1])
    except (yaml.YAMLError, IndexError):
        return None
    return data if isinstance(data, dict) else None


def repo_info(ctx: Ctx) -> Response:
    repo = load_repo(ctx)
    sha = resolve(repo, ctx)
    blobs = ctx.flag("blobs")
    siblings = []
    for meta in repo.files(sha).values():
        sibling: dict = {"rfilename": meta.path}
        if blobs:
            sibling.update(size=meta.size, blobId=meta.blob_id)
            if meta.lfs:
                sibling["lfs"] = {"size": meta.size, "sha256": meta.sha256, "pointerSize": meta.pointer_size}
        siblings.append(sibling)
    info = {
        "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
        "id": repo.repo_id,
        "author": repo.namespace,
        "sha": sha,
        "lastModified": repo.commit_info(sha)["date"],
        "createdAt": repo.meta["created_at"],
        "private": repo.private,
        "gated": repo.gated,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
        "usedStorage": sum(m.size for m in repo.files(sha).values()),
    }
    if (card := card_data(repo, sha)) is not None:
        info["cardData"] = card
    if repo.repo_type == "model":
        info["modelId"] = repo.repo_id
    if repo.repo_type == "space":
        from .routes_spaces import space_runtime

        info["sdk"] = (card or {}).get("sdk")
        info["runtime"] = space_runtime(repo)
    return Response.json(info)


def auth_check(ctx: Ctx) -> Response:
    """`HfApi.auth_check`: 200 if the caller may download (write=False) or push to (.../write) the repo.
    Errors as on the other routes: RepoNotFound 401/404 (missing, or private and not readable), GatedRepo
    401/403 (read check of a gated repo without access), 401/403 without write rights (write check)."""
    if ctx.path.endswith("/write"):
        load_repo_for_write(ctx)
    else:
        load_repo(ctx, download=True)
    return Response.json({})


def _entry(repo: Repo, sha: str, path: str, meta: FileMeta | None, expand: bool) -> dict:
    if meta is None:  # a folder
        entry = {"type": "directory", "oid": hashlib.sha1(f"{sha}:{path}".encode()).hexdigest(), "size": 0}
    else:
        entry = {"type": "file", "oid": meta.blob_id, "size": meta.size}
        if meta.lfs:
            entry["lfs"] = {"oid": meta.sha256, "size": meta.size, "pointerSize": meta.pointer_size}
    entry["path"] = path
    if expand:
        info = repo.commit_info(sha)
        entry["lastCommit"] = {"id": sha, "title": info["title"], "date": info["date"]}
    return entry


def _folders(files: dict[str, FileMeta]) -> set[str]:
    return {path.rsplit("/", i)[0] for path in files for i in range(1, path.count("/") + 1)}


def tree(ctx: Ctx) -> Response:
    repo = load_repo(ctx)
    sha = resolve(repo, ctx)
    files = repo.files(sha)
    folders = _folders(files)
    base = unquote(ctx.params.get("path", "")).strip("/")
    if base and base not in folders:
        raise HubError(404, f"Entry not found: {base}", "EntryNotFound", {"X-Repo-Commit": sha})
    prefix = f"{base}/" if base else ""
    recursive, expand = ctx.flag("recursive"), ctx.flag("expand")

    def wanted(path: str) -> bool:
        return path.startswith(prefix) and (recursive or "/" not in path[len(prefix) :])

    entries = [(p, None) for p in sorted(folders) if wanted(p)] + [(p, m) for p, m in files.items() if wanted(p)]
    page_size = min(ctx.hub.tree_page_size, 50) if expand else ctx.hub.tree_page_size
    start = int(ctx.q("cursor") or 0)
    page = [_entry(repo, sha, path, meta, expand) for path, meta in entries[start : start + page_size]]
    headers = {}
    if start + page_size < len(entries):
        query = urlencode({"recursive": recursive, "expand": expand, "cursor": start + page_size})
        headers["Link"] = f'<{ctx.hub.url}{ctx.path}?{query}>; rel="next"'
    return Response.json(page, headers=headers)


def paths_info(ctx: Ctx) -> Response:
    repo = load_repo(ctx)
    sha = resolve(repo, ctx)
    files, form = repo.files(sha), ctx.form()
    folders = _folders(files)
    expand = (form.get("expand") or ["false"])[0].lower() in ("1", "true")
    out = []
    for path in form.get("paths", []):
        path = path.strip("/")
        if path in files or path in folders:
            out.append(_entry(repo, sha, path, files.get(path), expand))
    return Response.json(out)


def refs(ctx: Ctx) -> Response:
    repo = load_repo(ctx)
    branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in sorted(repo.branches.items())]
    return Response.json({"branches": branches, "converts": [], "tags": []})


def commits(ctx: Ctx) -> Response:
    repo = load_repo(ctx)
    sha, out = resolve(repo, ctx), []
    while sha:
        info = repo.commit_info(sha)
        author = {"user": repo.namespace}
        out.append({"id": sha, "title": info["title"], "message": info["description"], "date": info["date"],
                    "authors": [author]})  # fmt: skip
        sha = info["parent"]
    return Response.json(out)


def resolve_file(ctx: Ctx) -> Response:
    repo = load_repo(ctx, download=True)
    sha = resolve(repo, ctx)
    path = unquote(ctx.params["path"])
    meta = repo.files(sha).get(path)
    if meta is None:
        raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
    headers = {"X-Repo-Commit": sha, "ETag": f'"{meta.blob_id}"', "Accept-Ranges": "bytes"}
    if meta.lfs:  # like the Hub: redirect to a signed CDN url, with the real size and sha256 in X-Linked-*
        location = f"{ctx.hub.cdn_url}/_cdn/{meta.sha256}?{urlencode({'sig': ctx.hub.sign(meta.sha256)})}"
        location += f"&repo={quote(repo.repo_type + 's/' + repo.repo_id)}&rev={sha}&path={quote(path)}"
        headers.update({"Location": location, "X-Linked-Etag": f'"{meta.sha256}"', "X-Linked-Size": str(meta.size)})
        return Response(302, b"", headers)
    headers["Content-Disposition"] = f'inline; filename="{path.rsplit("/", 1)[-1]}"'
    return Response(200, repo.file_path(sha, path), headers)


def cdn(ctx: Ctx) -> Response:
    """Signed LFS downloads: no auth needed (and none is sent by the client), a bad signature gets 403."""
    oid = ctx.params["oid"]
    if ctx.q("sig") != ctx.hub.sign(oid):
        raise HubError(403, "Request has expired or signature does not match")
    repo_type, repo_id = unquote(ctx.q("repo", "")).split("s/", 1)
    repo = ctx.hub.store.get(repo_type, repo_id)
    file = repo.file_path(ctx.q("rev"), unquote(ctx.q("path"))) if repo else None
    if file is None or not file.is_file():
        raise HubError(404, "NoSuchKey")
    headers = {
        "ETag": f'"{oid}"',
        "X-Repo-Commit": ctx.q("rev"),
        "Content-Disposition": f'inline; filename="{file.name}"',
    }
    return Response(200, file, headers)  # X-Repo-Commit: for a same-host "CDN" (cdn_host=None)


ROUTES = [
    (("GET",), r"/api/whoami-v2", whoami),
    (("GET",), API, repo_info),
    (("GET",), API + r"/revision/(?P<rev>[^/]+)", repo_info),
    (("GET",), API + r"/auth-check(?:/write)?", auth_check),
    (("GET",), API + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", tree),
    (("POST",), API + r"/paths-info/(?P<rev>[^/]+)", paths_info),
    (("GET",), API + r"/refs", refs),
    (("GET",), API + r"/commits/(?P<rev>[^/]+)", commits),
    (("GET", "HEAD"), WEB + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)", resolve_file),
    (("GET", "HEAD"), r"/_cdn/(?P<oid>[0-9a-f]{64})", cdn),
]
