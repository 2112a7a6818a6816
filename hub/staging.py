"""Staging a push: the shared steps of the adapter push (hub/push.py) and the merged-model push (hub/merge.py):
create or reuse the repo, copy the run's records (made public: no local paths), and the last guard against
tokens in any staged file."""

from __future__ import annotations

import json
import logging
import shutil
import stat
from pathlib import Path

import yaml

from core.secrets import files_with_tokens
from hub import model_card
from hub.errors import HubError, status_of, with_retries

log = logging.getLogger("hub.push")
RECORD_FILES = ("config.yaml", "metrics.jsonl", "summary.json", "data_report.json")


def _made_here(api, repo_id: str, repo_type: str = "model") -> bool:
    """True when the existing repo is empty or its card carries this app's tag."""
    from huggingface_hub import ModelCard

    files = with_retries(lambda: api.list_repo_files(repo_id, repo_type=repo_type), "list files")
    if not [f for f in files if f != ".gitattributes"]:
        return True
    if "README.md" not in files:
        return False
    try:
        card = ModelCard.load(repo_id, token=api.token, repo_type=repo_type)
    except Exception:  # noqa: BLE001 - unreadable card: treat as someone else's repo
        return False
    return model_card.APP_TAG in (card.data.tags or [])


def ensure_repo(api, repo_id: str, private: bool, overwrite: bool) -> str:
    """Create `repo_id` (user or org namespace); an existing repo only if made here or `overwrite`."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        url = with_retries(lambda: api.create_repo(repo_id, private=private, exist_ok=False), "create repo")
        log.info("Created %s repo %s", "private" if private else "public", url.repo_id)
        return url.repo_id
    except HfHubHTTPError as exc:
        if status_of(exc) != 409:
            raise
    if overwrite or _made_here(api, repo_id):
        log.info("Updating existing repo %s", repo_id)
        return repo_id
    raise HubError(
        f"{repo_id} already exists and was not pushed by Fine-Tune Studio: choose another repo id, "
        "or pass --overwrite (Overwrite in the app) to add this adapter to it; your run folder is unchanged."
    )


PUBLIC_RECORDS = {"config.yaml", "summary.json", "data_report.json", "report.json", "report.md"}


def _regular(src: Path) -> None:
    """Only regular files are pushed: a link (or a device, a pipe) in a run folder is refused."""
    mode = src.lstat().st_mode
    if not stat.S_ISREG(mode):
        raise HubError(
            f"Refusing to push: {src.name} in {src.parent} is a link or special file, not a regular file; "
            "replace it with the file itself (nothing was uploaded)."
        )


def copy_file(src: Path, dst: Path) -> None:
    _regular(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.name in PUBLIC_RECORDS:  # the record as published: no local paths, no run ids of local folders
        dst.write_text(_public_text(src), encoding="utf-8")
        return
    try:
        dst.hardlink_to(src)  # big weights: no second copy on disk
    except OSError:
        shutil.copy2(src, dst)


def _public_text(src: Path) -> str:
    text = src.read_text(encoding="utf-8")
    if src.suffix == ".json":
        return json.dumps(model_card.public(json.loads(text)), indent=2)
    if src.suffix in (".yaml", ".yml"):
        docs = [model_card.public(d) for d in yaml.safe_load_all(text)]  # comments (run ids) are dropped
        return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)
    return model_card.public(text)


def copy_present(src_dir: Path, names: tuple[str, ...], dst_dir: Path) -> None:
    """Copy those of `names` that exist in `src_dir` into `dst_dir` (regular files only; records made public)."""
    for name in names:
        if (src_dir / name).exists() or (src_dir / name).is_symlink():
            copy_file(src_dir / name, dst_dir / name)


def refuse_secret(staging: Path, token: str | None = None) -> None:
    """Last guard before any upload: no staged file may hold a token-shaped string (core.secrets, by shape, so
    any token counts, not only the pushing one) nor the pushing token itself."""
    found = set(files_with_tokens(staging))
    if token:
        needle = token.encode()
        found |= {str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file() and needle in p.read_bytes()}
    if found:
        names = ", ".join(sorted(found))
        raise HubError(
            f"Refusing to push: {names} {'holds' if len(found) == 1 else 'hold'} something that looks like a "
            "Hugging Face token; nothing was uploaded (remove it from the run folder, then push again)."
        )
