"""Write routes: repo create/delete, branches, README validation, preupload, NDJSON commits and the Git LFS
"basic" transfer (batch -> signed PUT -> verify). Xet uploads are not served: clients need HF_HUB_DISABLE_XET=1."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from urllib.parse import unquote, urlencode

import yaml

from .access import API as API_REPO
from .access import URL_PREFIX, WEB, load_repo_for_write, repo_web_url, require_writer, resolve
from .server import Ctx, HubError, Response
from .storage import GITATTRIBUTES, is_lfs


def create_repo(ctx: Ctx) -> Response:
    body = ctx.json()
    repo_type = body.get("type") or "model"
    if ctx.user is None:
        raise HubError(401, "You must be authenticated to create a repo (use a write token).")
    namespace = body.get("organization") or ctx.user.name
    repo_id = f"{namespace}/{body['name']}"
    require_writer(ctx, namespace)
    private = body.get("visibility", "private" if body.get("private") else "public") != "public"
    store = ctx.hub.store
    with store.lock:
        existing = store.get(repo_type, repo_id)
        if existing is not None:
            url = repo_web_url(ctx, existing)
            return Response.json({"error": f"You already created this {repo_type} repo", "url": url}, 409)
        repo = store.create(repo_type, repo_id, private=private)
        store.commit(repo, "main", {".gitattributes": GITATTRIBUTES.encode()}, title="initial commit")
    return Response.json({"url": repo_web_url(ctx, repo), "name": repo_id, "id": repo_id})


def delete_repo(ctx: Ctx) -> Response:
    body = ctx.json()
    ctx.params.update(prefix=f"{body.get('type') or 'model'}s", repo=f"{body.get('organization')}/{body['name']}")
    ctx.hub.store.delete(load_repo_for_write(ctx))
    return Response.json({})


def create_branch(ctx: Ctx) -> Response:
    repo = load_repo_for_write(ctx)
    branch = unquote(ctx.params["branch"])
    if ctx.method == "DELETE":
        with ctx.hub.store.lock:
            if branch == "main" or repo.branches.pop(branch, None) is None:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            repo.save()
        return Response.json({})
    if branch in repo.branches:
        raise HubError(409, f"Reference already exists: refs/heads/{branch}")
    start = ctx.json().get("startingPoint") or "main"
    sha = repo.resolve(start)
    if sha is None:
        raise HubError(404, f"Invalid rev id: {start}", "RevisionNotFound")
    with ctx.hub.store.lock:
        repo.branches[branch] = sha
        repo.save()
    return Response.json({})


def validate_yaml(ctx: Ctx) -> Response:
    content = ctx.json().get("content", "")
    if content.startswith("---"):
        try:
            yaml.safe_load(content.split("---", 2)[1])
        except (yaml.YAMLError, IndexError) as e:
            return Response.json({"errors": [{"message": f"Invalid YAML: {e}"}], "warnings": []}, 400)
    return Response.json({"errors": [], "warnings": []})


def _writable_branch(ctx: Ctx):
    if ctx.flag("create_pr"):
        raise HubError(400, "FakeHub does not support create_pr")
    repo = load_repo_for_write(ctx)
    return repo, resolve(repo, ctx)


def preupload(ctx: Ctx) -> Response:
    repo, sha = _writable_branch(ctx)
    existing = repo.files(sha)
    out = []
    for item in ctx.json().get("files", []):
        path, size = item["path"], int(item["size"])
        lfs = is_lfs(path, size, base64.b64decode(item.get("sample", "")))
        entry = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
        if (meta := existing.get(path)) is not None and meta.lfs == lfs:
            entry["oid"] = meta.sha256 if lfs else meta.blob_id
        out.append(entry)
    return Response.json({"files": out, "commitOid": sha})


def commit(ctx: Ctx) -> Response:
    repo, head = _writable_branch(ctx)
    branch = unquote(ctx.params["rev"]).removeprefix("refs/heads/")
    if repo.resolve(branch) != head or branch == head:
        raise HubError(400, f"Can only commit to a branch, not to {branch}")
    header, additions, deletions = {}, {}, []
    for line in ctx.body.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        key, value = item["key"], item["value"]
        if key != "header" and not _safe_path(value["path"]):
            raise HubError(400, f"Invalid path in repo: {value['path']!r}")
        if key == "header":
            header = value
        elif key == "file":
            content = value["content"]
            additions[value["path"]] = (
                base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
            )
        elif key == "lfsFile":
            additions[value["path"]] = _lfs_source(ctx, repo, head, value["oid"])
        elif key in ("deletedFile", "deletedFolder"):
            path = value["path"].strip("/")
            if key == "deletedFolder":
                path += "/"
            elif path not in repo.files(head):
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            deletions.append(path)
        else:
            raise HubError(400, f"FakeHub does not support commit operation {key!r}")
    parent = header.get("parentCommit")
    if parent and parent != head:
        raise HubError(412, "A commit has happened since. Please refresh and try again.")
    with ctx.hub.store.lock:
        if repo.resolve(branch) != head:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        title, description = header.get("summary", "Upload files"), header.get("description", "")
        sha = ctx.hub.store.commit(repo, branch, additions, tuple(deletions), title=title, description=description)
    url = f"{repo_web_url(ctx, repo)}/commit/{sha}"
    return Response.json(
        {"success": True, "commitOid": sha, "commitUrl": url, "hookOutput": "", "pullRequestUrl": None}
    )


def _safe_path(path: str) -> bool:
    parts = path.strip("/").split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and ".git" not in parts and all(parts)


def _lfs_source(ctx: Ctx, repo, head: str, oid: str) -> Path:
    """An LFS object for a commit: uploaded just before, or already in the repo (copies, re-uploads)."""
    uploaded = ctx.hub.store.lfs_object(oid)
    if uploaded.is_file():
        return uploaded
    for meta in repo.files(head).values():
        if meta.lfs and meta.sha256 == oid:
            return repo.file_path(head, meta.path)
    raise HubError(422, f"LFS object {oid} was not uploaded")


def lfs_batch(ctx: Ctx) -> Response:
    repo = load_repo_for_write(ctx)
    body = ctx.json()
    if body.get("operation") != "upload":
        raise HubError(400, "FakeHub only serves LFS uploads (downloads go through /resolve)")
    objects = []
    for obj in body.get("objects", []):
        oid, size = obj["oid"], int(obj["size"])
        entry = {"oid": oid, "size": size, "authenticated": True}
        if not ctx.hub.store.lfs_object(oid).is_file():
            upload = f"{ctx.hub.url}/_lfs/upload/{oid}?{urlencode({'size': size, 'sig': ctx.hub.sign(oid)})}"
            verify = f"{ctx.hub.url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}.git/info/lfs/objects/verify"
            entry["actions"] = {"upload": {"href": upload}, "verify": {"href": verify}}
        objects.append(entry)
    return Response.json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"})


def lfs_upload(ctx: Ctx) -> Response:
    """The signed 'S3' PUT: no Authorization header is sent (or needed); content must match the oid."""
    oid = ctx.params["oid"]
    if ctx.q("sig") != ctx.hub.sign(oid):
        raise HubError(403, "Request has expired or signature does not match")
    if hashlib.sha256(ctx.body).hexdigest() != oid or len(ctx.body) != int(ctx.q("size", "-1")):
        raise HubError(400, "Uploaded content does not match the announced oid/size")
    target = ctx.hub.store.lfs_object(oid)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{oid}.{id(ctx)}")
    tmp.write_bytes(ctx.body)
    tmp.replace(target)
    return Response(200, b"", {"ETag": f'"{hashlib.md5(ctx.body).hexdigest()}"'})


def lfs_verify(ctx: Ctx) -> Response:
    load_repo_for_write(ctx)
    body = ctx.json()
    target = ctx.hub.store.lfs_object(body["oid"])
    if not target.is_file() or target.stat().st_size != int(body["size"]):
        raise HubError(404, f"LFS object {body['oid']} not found")
    return Response.json({"success": True})


def no_xet(ctx: Ctx) -> Response:
    raise HubError(400, "FakeHub does not serve Xet storage: set HF_HUB_DISABLE_XET=1 (see fixture.use_fake_hub)")


ROUTES = [
    (("POST",), r"/api/repos/create", create_repo),
    (("POST", "DELETE"), r"/api/repos/delete", delete_repo),
    (("POST",), r"/api/validate-yaml", validate_yaml),
    (("POST", "DELETE"), API_REPO + r"/branch/(?P<branch>.+)", create_branch),
    (("POST",), API_REPO + r"/preupload/(?P<rev>[^/]+)", preupload),
    (("POST",), API_REPO + r"/commit/(?P<rev>[^/]+)", commit),
    (("POST",), WEB + r"\.git/info/lfs/objects/batch", lfs_batch),
    (("POST",), WEB + r"\.git/info/lfs/objects/verify", lfs_verify),
    (("PUT",), r"/_lfs/upload/(?P<oid>[0-9a-f]{64})", lfs_upload),
    (("GET", "POST"), API_REPO + r"/xet-(?:read|write)-token/.*", no_xet),
]
