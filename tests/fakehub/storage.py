"""On-disk repos of the fake Hub.

Layout under the root folder::

    <root>/models/<org>/<name>/repo.json              visibility, gating, branches, commit log
    <root>/models/<org>/<name>/snapshots/<sha>/...    the full file tree of each commit
    <root>/datasets/<org>/<name>/...                  same for datasets (and spaces/)
    <root>/_lfs/<sha256>                              LFS objects uploaded but not committed yet

A plain folder dropped at <root>/models/<org>/<name>/ (no repo.json) is adopted on first access: its files
become the `main` branch. Commit shas are derived from the parent commit and the file contents, so the same
content always gets the same sha.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO_TYPES = ("model", "dataset", "space")
LFS_THRESHOLD = 10 * 1024 * 1024
LFS_SUFFIXES = {
    ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".gguf", ".gz", ".h5", ".joblib", ".model", ".msgpack", ".npy",
    ".npz", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".pt", ".pth", ".safetensors", ".tar", ".tflite",
    ".tgz", ".xz", ".zip", ".zst",
}  # fmt: skip
GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in sorted(LFS_SUFFIXES))


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def is_lfs(path: str, size: int, head: bytes) -> bool:
    """The Hub's rule, roughly: big files, binary-looking suffixes and files with NUL bytes go to LFS."""
    return size >= LFS_THRESHOLD or Path(path).suffix.lower() in LFS_SUFFIXES or b"\0" in head[:8000]


@dataclass(frozen=True)
class FileMeta:
    path: str
    size: int
    blob_id: str  # git blob sha1 (of the pointer file for LFS files)
    sha256: str
    lfs: bool
    pointer_size: int = 0

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id


def file_meta(path: str, file: Path) -> FileMeta:
    sha1, sha256, size, head = hashlib.sha1(), hashlib.sha256(), file.stat().st_size, b""
    sha1.update(b"blob %d\0" % size)
    with open(file, "rb") as f:
        while chunk := f.read(1 << 20):
            head = head or chunk
            sha1.update(chunk)
            sha256.update(chunk)
    if not is_lfs(path, size, head):
        return FileMeta(path, size, sha1.hexdigest(), sha256.hexdigest(), lfs=False)
    pointer = lfs_pointer(sha256.hexdigest(), size)
    return FileMeta(path, size, git_blob_sha1(pointer), sha256.hexdigest(), lfs=True, pointer_size=len(pointer))


class Repo:
    """One repo: metadata in repo.json, one snapshot folder per commit."""

    def __init__(self, store: RepoStore, repo_type: str, repo_id: str, folder: Path, meta: dict):
        self.store, self.repo_type, self.repo_id, self.folder, self.meta = store, repo_type, repo_id, folder, meta
        self._files: dict[str, dict[str, FileMeta]] = {}

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/")[0]

    @property
    def private(self) -> bool:
        return bool(self.meta["private"])

    @property
    def gated(self) -> str | bool:
        return self.meta["gated"]

    @property
    def branches(self) -> dict[str, str]:
        return self.meta["refs"]

    def save(self) -> None:
        tmp = self.folder / f"repo.json.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(self.meta, indent=2))
        os.replace(tmp, self.folder / "repo.json")

    def resolve(self, revision: str) -> str | None:
        """Branch name (or refs/heads/<name>) or commit sha -> commit sha."""
        revision = revision.removeprefix("refs/heads/")
        if revision in self.branches:
            return self.branches[revision]
        if len(revision) == 40 and revision in self.meta["commits"]:
            return revision
        return None

    def commit_info(self, sha: str) -> dict:
        return self.meta["commits"][sha]

    def snapshot(self, sha: str) -> Path:
        return self.folder / "snapshots" / sha

    def files(self, sha: str) -> dict[str, FileMeta]:
        """path -> FileMeta for every file of a commit (sorted by path, cached: snapshots never change)."""
        if sha not in self._files:
            root = self.snapshot(sha)
            paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
            self._files[sha] = {path: file_meta(path, root / path) for path in paths}
        return self._files[sha]

    def file_path(self, sha: str, path: str) -> Path:
        return self.snapshot(sha) / path


class RepoStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._repos: dict[tuple[str, str], Repo] = {}

    def folder(self, repo_type: str, repo_id: str) -> Path:
        if repo_type not in REPO_TYPES:
            raise ValueError(f"repo_type must be one of {REPO_TYPES}, got {repo_type!r}")
        if repo_id.count("/") != 1 or ".." in repo_id or not all(repo_id.split("/")):
            raise ValueError(f"repo_id must look like 'org/name', got {repo_id!r}")
        return self.root / f"{repo_type}s" / repo_id

    def lfs_object(self, oid: str) -> Path:
        return self.root / "_lfs" / oid

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        with self.lock:
            key = (repo_type, repo_id)
            if key not in self._repos:
                folder = self.folder(repo_type, repo_id)
                if (folder / "repo.json").is_file():
                    meta = json.loads((folder / "repo.json").read_text())
                    self._repos[key] = Repo(self, repo_type, repo_id, folder, meta)
                elif folder.is_dir() and any(folder.iterdir()):
                    self._repos[key] = self._adopt_plain_folder(repo_type, repo_id, folder)
            return self._repos.get(key)

    def _adopt_plain_folder(self, repo_type: str, repo_id: str, folder: Path) -> Repo:
        staging = folder.parent / f".{folder.name}.{uuid.uuid4().hex}"
        folder.rename(staging)
        repo = self.create(repo_type, repo_id)
        self.commit(repo, "main", {p.relative_to(staging).as_posix(): p for p in staging.rglob("*") if p.is_file()})
        shutil.rmtree(staging)
        return repo

    def create(self, repo_type: str, repo_id: str, *, private: bool = False, gated: str | bool = False) -> Repo:
        with self.lock:
            folder = self.folder(repo_type, repo_id)
            (folder / "snapshots").mkdir(parents=True, exist_ok=True)
            meta = {"private": private, "gated": gated, "gated_users": [], "created_at": now_iso(),
                    "refs": {}, "commits": {}}  # fmt: skip
            repo = Repo(self, repo_type, repo_id, folder, meta)
            repo.save()
            self._repos[(repo_type, repo_id)] = repo
            return repo

    def delete(self, repo: Repo) -> None:
        with self.lock:
            self._repos.pop((repo.repo_type, repo.repo_id), None)
            shutil.rmtree(repo.folder)

    def commit(
        self,
        repo: Repo,
        branch: str,
        additions: dict[str, bytes | Path],
        deletions: tuple[str, ...] = (),
        *,
        title: str = "Upload files",
        description: str = "",
        replace: bool = False,
        parent: str | None = None,
    ) -> str:
        """Create a commit on `branch` (created from `parent` or main if new) and return its sha.

        `replace=True` drops every file of the parent commit first (the tree becomes exactly `additions`).
        `deletions` holds file paths, or folder paths ending with "/".
        """
        with self.lock:
            parent = repo.branches.get(branch) or parent or repo.branches.get("main")
            staging = repo.folder / "snapshots" / f".tmp-{uuid.uuid4().hex}"
            staging.mkdir(parents=True)
            if parent and not replace:
                for path in repo.files(parent):
                    if path not in additions and not _deleted(path, deletions):
                        _link_or_copy(repo.file_path(parent, path), staging / path)
            for path, content in additions.items():
                target = staging / path
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, Path):
                    shutil.copyfile(content, target)
                else:
                    target.write_bytes(content)
            metas = {}
            for file in sorted(p for p in staging.rglob("*") if p.is_file()):
                rel = file.relative_to(staging).as_posix()
                metas[rel] = file_meta(rel, file)
            tree = [(path, meta.blob_id) for path, meta in sorted(metas.items())]
            unchanged = parent and tree == [(path, meta.blob_id) for path, meta in repo.files(parent).items()]
            sha = parent if unchanged else hashlib.sha1(json.dumps([parent, tree]).encode()).hexdigest()
            if repo.snapshot(sha).exists():  # same tree as the parent (or an identical earlier commit): no new commit
                shutil.rmtree(staging)
            else:
                staging.rename(repo.snapshot(sha))
                repo._files[sha] = dict(sorted(metas.items()))
                info = {"parent": parent, "title": title, "description": description, "date": now_iso()}
                repo.meta["commits"][sha] = info
            repo.branches[branch] = sha
            repo.save()
            return sha


def _deleted(path: str, deletions: tuple[str, ...]) -> bool:
    return any(path == d or (d.endswith("/") and path.startswith(d)) for d in deletions)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
