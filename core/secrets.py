"""Secrets recognised by shape, not by equality with one known token.

A Hugging Face token looks like `hf_` followed by 30+ letters and digits (also the older `api_...` org
tokens); other common credentials have their own prefixes.  Any value under a key named like a secret
(token, secret, password, api_key, ...) counts as one too, whatever it looks like.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

TOKEN_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])("
    r"hf_[A-Za-z0-9]{30,}"  # Hugging Face user / fine-grained tokens
    r"|api_org_[A-Za-z0-9]{30,}"  # Hugging Face org API tokens (legacy)
    r"|sk-[A-Za-z0-9_-]{32,}"  # OpenAI-style keys
    r"|ghp_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{40,}"  # GitHub tokens
    r")(?![A-Za-z0-9])"
)
SECRET_KEY = re.compile(r"(^|_|-)(token|secret|password|passwd|api_?key|access_?key|private_?key|credentials?)$", re.I)
SPECIAL_TOKEN_KEY = re.compile(r"^(pad|eos|bos|unk|sep|cls|mask)_token$", re.I)  # a tokenizer's text, not a credential
PLACEHOLDERS = {None, "", False}


def looks_like_token(text: str) -> bool:
    return bool(TOKEN_SHAPES.search(text))


def secret_key(name: str) -> bool:
    """True for keys named like a secret: hub_token, token, api_key, OPENAI_API_KEY, password, ... (a special
    token's text such as pad_token or eos_token is not; a token-shaped value under it still is)."""
    return bool(SECRET_KEY.search(str(name))) and not SPECIAL_TOKEN_KEY.match(str(name))


def find_in(obj, path: str = "") -> Iterator[str]:
    """Dotted paths inside a parsed config (dicts, lists, strings) that hold a secret."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            where = f"{path}.{key}" if path else str(key)
            if secret_key(key) and value not in PLACEHOLDERS and value is not True:
                yield where
            else:
                yield from find_in(value, where)
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            yield from find_in(value, f"{path}[{i}]")
    elif isinstance(obj, str) and looks_like_token(obj):
        yield path or "(value)"


def files_with_tokens(folder: str | Path, max_bytes: int = 64 * 2**20) -> list[str]:
    """Relative paths of files under `folder` that contain a token-shaped string (binary files included:
    a pickled training_args.bin holds its strings in clear)."""
    folder = Path(folder)
    found = []
    pattern = re.compile(TOKEN_SHAPES.pattern.encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with open(path, "rb") as handle:
            tail = b""
            while chunk := handle.read(max_bytes):
                if pattern.search(tail + chunk):
                    found.append(str(path.relative_to(folder)))
                    break
                tail = chunk[-128:]
    return found
