"""Who may name which local path: the one place the shared-Space path rules live (no gradio here).

On a shared Space (core.settings.multi_user()) every path a user names -- a data source, an eval source, a
model, init_from (and the paths inside an init_from recipe), a Playground adapter, the Data tab's path, an
upload -- must resolve (symlinks and `..` followed) inside one of:

- that user's own uploads, STUDIO_HOME/uploads/<owner>/ (the app copies each upload there);
- the run folders of that user's own runs (the store's owner column) and comparisons (meta.json's owner);
- the shipped demo data (data/demo), the templates (templates/) and the offline demo model the app builds.

A Hub id (`name` or `org/name` that is not an existing local path) is always allowed.  Off a Space (one user)
paths stay free.  `model.trust_remote_code` (anywhere in a config) is refused on a shared Space unless the Space
owner sets STUDIO_ALLOW_REMOTE_CODE=1.  A GRPO `python` reward (a user's own function) is refused on a shared Space;
a `reward_model` reward's model is a path like any other.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from core import settings
from core.errors import StudioError
from core.paths import ROOT

SHIPPED = (ROOT / "data" / "demo", ROOT / "templates")
DEMO_MODEL = ("models", "demo-tiny")  # built by trainers/demo_model.py under STUDIO_HOME; the same for everyone
LOCAL_ONLY = "Local paths on a shared Space are limited to your uploads and runs; use a Hub id."
REMOTE_CODE = (
    "trust_remote_code runs the model repo's own code on this shared Space, so it is off here: remove it, "
    "or ask the Space owner to set STUDIO_ALLOW_REMOTE_CODE=1."
)
PYTHON_REWARD = (
    "A python reward runs your own code on this shared Space, so it is off here: use the stock rewards "
    "(accuracy, regex, think_format, reward_model, ...), or train from the command line."
)
NO_OWNER = "Sign in with Hugging Face (button at the top) to use your runs; nothing is shown or changed without it."
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?")
# training: options whose value is a path the trainer reads or writes
TRAINING_PATH_KEYS = {
    "output_dir",
    "logging_dir",
    "resume_from_checkpoint",
    "deepspeed",
    "fsdp_config",
    "accelerator_config",
    "chat_template_path",
}
_MAX_DEPTH = 4  # init_from recipes naming recipes


class AccessError(StudioError):
    """A path or option this user may not use on a shared Space; the message says what to change."""


def require_owner(owner: str | None) -> str:
    """The owner of a request, or refuse: no owner never means "every owner"."""
    if not owner or not isinstance(owner, str):
        raise AccessError(NO_OWNER)
    return owner


def owner_folder_name(owner: str) -> str:
    """A folder name for `owner` (Hugging Face user names already are; anything else is hashed)."""
    if re.fullmatch(r"[A-Za-z0-9][\w\-]{0,95}", owner):
        return owner
    return "u-" + hashlib.sha256(owner.encode()).hexdigest()[:16]


def uploads_dir(home: str | Path, owner: str) -> Path:
    return Path(home) / "uploads" / owner_folder_name(require_owner(owner))


def _owned_comparisons(home: Path, owner: str) -> Iterable[Path]:
    root = home / "comparisons"
    if not root.is_dir():
        return []
    found = []
    for meta in root.glob("*/meta.json"):
        try:
            if json.loads(meta.read_text(encoding="utf-8")).get("owner") == owner:
                found.append(meta.parent)
        except (OSError, ValueError, AttributeError):
            continue
    return found


def allowed_roots(home: str | Path, owner: str, store) -> list[Path]:
    """The folders `owner` may name paths inside (resolved)."""
    home = Path(home)
    roots = [*SHIPPED, home.joinpath(*DEMO_MODEL), uploads_dir(home, owner)]
    roots += [Path(run.run_dir) for run in store.list(require_owner(owner)) if run.run_dir]
    roots += list(_owned_comparisons(home, owner))
    return [root.expanduser().resolve() for root in roots]


def is_hub_id(value: str) -> bool:
    """`name` or `org/name` that is not an existing local path (relative to the app or the repository root)."""
    if not _HUB_ID.fullmatch(value) or ".." in value.split("/"):
        return False
    return not any((base / value).exists() for base in (ROOT, Path.cwd()))


def _candidates(value: str) -> list[Path]:
    """Where `value` resolves: children run in the repository root, the app may run elsewhere."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return [path.resolve()]
    bases = [ROOT] + ([Path.cwd()] if Path.cwd().resolve() != ROOT else [])
    found = [(base / path).resolve() for base in bases if (base / path).exists()]
    return found or [(ROOT / path).resolve()]


def enforced() -> bool:
    return settings.multi_user()


def check_path(value, owner: str | None, home: str | Path, store) -> None:
    """Refuse a local path outside `owner`'s uploads, runs, comparisons and the shipped files (shared Space only)."""
    if not enforced() or not isinstance(value, str) or not value:
        return  # not a path (the config validation reports a wrong type)
    owner = require_owner(owner)
    if is_hub_id(value):
        return
    roots = allowed_roots(home, owner, store)
    for path in _candidates(value):
        if not any(path == root or path.is_relative_to(root) for root in roots):
            raise AccessError(LOCAL_ONLY)


def _trust_remote_code(obj) -> bool:
    if isinstance(obj, dict):
        return any(
            (str(k) == "trust_remote_code" and bool(v) and v not in ("false", "False", "0")) or _trust_remote_code(v)
            for k, v in obj.items()
        )
    if isinstance(obj, list | tuple):
        return any(_trust_remote_code(v) for v in obj)
    return False


def _pathlike(value: str) -> bool:
    return value.startswith(("/", "~", "./", "../")) or "/../" in value or value.endswith("/..")


def _training_paths(training) -> Iterable[str]:
    """Path-bearing values under training: the named path options, and any string shaped like a path."""

    def walk(obj, key=""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from walk(v, str(k))
        elif isinstance(obj, list | tuple):
            for v in obj:
                yield from walk(v, key)
        elif isinstance(obj, str) and (key in TRAINING_PATH_KEYS or _pathlike(obj)):
            yield obj

    yield from walk(training or {})


def check_config(config, owner: str | None, home: str | Path, store, _depth: int = 0) -> None:
    """Check a parsed RunConfig mapping (or a list of them: the documents of one YAML) for a shared Space:
    every path-bearing key, init_from (a recipe's own paths too), and trust_remote_code."""
    if not enforced():
        return
    owner = require_owner(owner)
    docs = config if isinstance(config, list | tuple) else [config]
    for doc in docs:
        if not isinstance(doc, dict):
            continue  # the config validation says what is wrong with it
        if _trust_remote_code(doc) and not settings.remote_code_allowed():
            raise AccessError(REMOTE_CODE)
        model = doc.get("model")
        check_path(model.get("name_or_path") if isinstance(model, dict) else model, owner, home, store)
        data = doc.get("data")
        if isinstance(data, dict):
            for key in ("source", "eval_source"):
                check_path(data.get(key), owner, home, store)
        elif data is not None:
            check_path(data, owner, home, store)
        for value in _training_paths(doc.get("training")):
            check_path(value, owner, home, store)
        _check_rewards(doc.get("rewards"), owner, home, store)
        init_from = doc.get("init_from")
        if init_from in (None, "", "previous"):
            continue
        check_path(init_from, owner, home, store)
        if isinstance(init_from, str) and init_from.endswith((".yaml", ".yml")) and not is_hub_id(init_from):
            check_recipe(init_from, owner, home, store, _depth + 1)


def _check_rewards(rewards, owner: str, home: str | Path, store) -> None:
    """GRPO's rewards: no python reward (the user's own code); a reward model's path follows the path rules."""
    for entry in rewards if isinstance(rewards, list) else []:
        if not isinstance(entry, dict):
            continue  # the config validation says what is wrong with it
        if entry.get("name") == "python":
            raise AccessError(PYTHON_REWARD)
        if entry.get("name") == "reward_model":
            check_path(entry.get("model"), owner, home, store)


def check_recipe(path: str, owner: str, home: str | Path, store, _depth: int = 1) -> None:
    """An init_from recipe (already known to be inside the allowed folders): its own paths follow the rules."""
    if _depth > _MAX_DEPTH:
        raise AccessError("init_from recipes nest too deeply: point init_from at a finished run of yours instead.")
    for candidate in _candidates(path):
        try:
            docs = [d for d in yaml.safe_load_all(candidate.read_text(encoding="utf-8")) if d is not None]
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # a missing or broken recipe is reported by the run itself
        check_config(docs, owner, home, store, _depth)


def check_comparison(cfg: dict, owner: str | None, home: str | Path, store) -> None:
    """A validated comparison config: its base model and every data section (the report child reads them)."""
    if not enforced():
        return
    owner = require_owner(owner)
    if _trust_remote_code(cfg) and not settings.remote_code_allowed():
        raise AccessError(REMOTE_CODE)
    model = cfg.get("model")
    check_path(model.get("name_or_path") if isinstance(model, dict) else model, owner, home, store)
    for section in ("data", "sft_data", "preference_data"):
        data = cfg.get(section)
        if isinstance(data, dict):
            for key in ("source", "eval_source"):
                check_path(data.get(key), owner, home, store)
    for key in ("training", "sft_training", "dpo_training"):
        for value in _training_paths(cfg.get(key)):
            check_path(value, owner, home, store)
    for value in (cfg.get("existing") or {}).values() if isinstance(cfg.get("existing"), dict) else []:
        check_path(value, owner, home, store)


def keep_upload(home: str | Path, owner: str | None, src: str | Path) -> Path:
    """Copy an uploaded file (from gradio's cache, which every user shares) into the owner's own uploads folder;
    the copy is the only path that counts as theirs.  Regular files only."""
    import shutil

    src = Path(src)
    if src.is_symlink() or not src.is_file():
        raise AccessError("The upload is not a regular file: upload the data file itself.")
    folder = uploads_dir(home, owner)
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.\-]", "_", src.name).lstrip(".") or "upload"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:10]
    target = folder / name
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest()[:10] != digest:
        target = folder / f"{Path(name).stem}-{digest}{Path(name).suffix}"
    if not target.exists():
        tmp = folder / f".{target.name}.{os.getpid()}.tmp"
        shutil.copyfile(src, tmp)
        tmp.replace(target)
    return target
