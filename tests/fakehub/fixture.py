"""Point the real Hub clients at a FakeHub, in this process (`use_fake_hub`) or in a child (`subprocess_env`).

`huggingface_hub` and `datasets` read HF_ENDPOINT / HF_HUB_OFFLINE / cache paths once, at import time, and copy
them into module globals; setting environment variables afterwards changes nothing. Module-level HfApi instances
(huggingface_hub's own, transformers' shared one, gradio's) keep the endpoint they were built with. `use_fake_hub`
therefore sets the variables (for children and later imports) AND patches every import-time copy found in the
installed sources (huggingface_hub 2.4, datasets 5.2, transformers 5.24, gradio 6.31) — see `_patch_*` below.

    def test_download(fake_hub_env):                  # fixture: env + constants patched, fresh caches
        fake_hub_env.add_repo("alice/tiny", {"config.json": b"{}"})
        hf_hub_download("alice/tiny", "config.json")
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .server import FakeHub

# Tokens of the session server: alice writes to alice/*, bob is another user, carol belongs to the "acme" org.
ALICE, ALICE_READ, BOB, CAROL = "hf_alice_write", "hf_alice_read", "hf_bob_write", "hf_carol_acme"
DEFAULT_TOKENS = {
    ALICE: "alice",
    ALICE_READ: {"name": "alice", "role": "read"},
    BOB: "bob",
    CAROL: {"name": "carol", "orgs": ["acme"]},
}
_UNSET = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
          "HUGGINGFACE_CO_STAGING", "HF_HUB_ENABLE_HF_TRANSFER")  # fmt: skip


def hub_env_vars(url: str, cache_dir: str | Path) -> dict[str, str]:
    cache = Path(cache_dir)
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1,localhost"]))  # never proxy the fake
    return {
        "HF_ENDPOINT": url,
        "HF_HUB_DISABLE_XET": "1",  # the fake serves the Git LFS upload protocol, not Xet
        "HF_HOME": str(cache / "home"),
        "HF_HUB_CACHE": str(cache / "hub"),
        "HF_DATASETS_CACHE": str(cache / "datasets"),
        "HF_TOKEN_PATH": str(cache / "home" / "token"),  # never pick up a developer's saved token
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_UPDATE_DOWNLOAD_COUNTS": "0",  # datasets would HEAD an S3 url on every load
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }


def subprocess_env(url: str, cache_dir: str | Path | None = None, base: dict | None = None) -> dict[str, str]:
    """An environment for a child process that talks to the fake hub (offline flags and tokens removed)."""
    env = dict(os.environ if base is None else base)
    for name in _UNSET:
        env.pop(name, None)
    env.update(hub_env_vars(url, cache_dir or tempfile.mkdtemp(prefix="fakehub-cache-")))
    return env


def use_fake_hub(url: str, monkeypatch: pytest.MonkeyPatch, cache_dir: str | Path | None = None) -> Path:
    """Make this process talk to `url`: env vars + every import-time constant, undone by `monkeypatch`.
    Returns the cache folder (hub/ and datasets/ caches inside, fresh if `cache_dir` is new)."""
    cache = Path(cache_dir or tempfile.mkdtemp(prefix="fakehub-cache-"))
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)
    env = hub_env_vars(url, cache)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _patch_huggingface_hub(url, env, monkeypatch)
    if "datasets.config" in sys.modules:  # not imported yet: it will read the variables set above
        _patch_datasets(url, env, monkeypatch)
    return cache


@contextlib.contextmanager
def patched_hub(url: str, cache_dir: str | Path | None = None):
    """Context-manager form of `use_fake_hub`, for code outside a test function."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield use_fake_hub(url, monkeypatch, cache_dir)


def _patch_huggingface_hub(url: str, env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfFileSystem, constants, hf_api, hf_file_system
    from huggingface_hub.utils import _cache_manager, _git_credential, _http

    host = urlsplit(url).hostname
    for name, value in {
        "ENDPOINT": url,
        "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": constants.HF_URL_HOSTS | {host},
        "HF_HUB_OFFLINE": False,  # is_offline_mode() (used by transformers too) reads this
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_CACHE": env["HF_HUB_CACHE"],
        "HUGGINGFACE_HUB_CACHE": env["HF_HUB_CACHE"],
        "HF_TOKEN_PATH": env["HF_TOKEN_PATH"],
        "HF_STORED_TOKENS_PATH": str(Path(env["HF_TOKEN_PATH"]).parent / "stored_tokens"),
        "HF_HUB_DISABLE_TELEMETRY": True,
    }.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(hf_api.api, "endpoint", url)  # module-level HfApi behind huggingface_hub.whoami & co
    monkeypatch.setattr(_http, "_HUB_ORIGINS", _http._HUB_ORIGINS | {_http._url_origin(url)})
    monkeypatch.setattr(_cache_manager, "HF_HUB_CACHE", env["HF_HUB_CACHE"])  # scan_cache_dir() default
    monkeypatch.setattr(_git_credential, "ENDPOINT", url)
    if "huggingface_hub.cli.auth" in sys.modules:
        monkeypatch.setattr(sys.modules["huggingface_hub.cli.auth"], "ENDPOINT", url)
    HfFileSystem.clear_instance_cache()  # cached instances keep listings (dircache) of earlier tests
    if any(os.environ.get(name) for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")):
        _http.close_session()  # the shared httpx client read the proxy settings when it was created
    monkeypatch.setattr(hf_file_system, "hffs", HfFileSystem(endpoint=url))  # `from huggingface_hub import hffs`
    # HfApi instances cached by other libraries keep the endpoint they were created with:
    if "transformers.utils.hub" in sys.modules:  # lazily created shared instance (tokenizer template listing...)
        monkeypatch.setattr(sys.modules["transformers.utils.hub"], "_hf_api", None)
    if "gradio.workflow" in sys.modules:
        monkeypatch.setattr(sys.modules["gradio.workflow"]._hf_api, "endpoint", url)


def _patch_datasets(url: str, env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets import config

    datasets_cache = Path(env["HF_DATASETS_CACHE"])
    downloads = datasets_cache / config.DOWNLOADED_DATASETS_DIR
    for name, value in {
        "HF_ENDPOINT": url,
        "HUB_DATASETS_URL": url + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_HUB_OFFLINE": False,
        "HF_DATASETS_OFFLINE": False,
        "HF_DATASETS_CACHE": datasets_cache,
        "DOWNLOADED_DATASETS_PATH": downloads,
        "EXTRACTED_DATASETS_PATH": downloads / config.EXTRACTED_DATASETS_DIR,
        "HF_UPDATE_DOWNLOAD_COUNTS": False,
    }.items():
        monkeypatch.setattr(config, name, value)


@pytest.fixture(scope="session")
def fake_hub(tmp_path_factory):
    """One FakeHub for the session (root in a tmp folder), with DEFAULT_TOKENS."""
    with FakeHub(tmp_path_factory.mktemp("fakehub"), tokens=DEFAULT_TOKENS) as hub:
        yield hub


@pytest.fixture
def fake_hub_env(fake_hub, monkeypatch, tmp_path):
    """The session FakeHub with this process pointed at it, fresh caches, an empty request log and no faults."""
    use_fake_hub(fake_hub.url, monkeypatch, tmp_path / "hf-cache")
    fake_hub.clear_requests()
    fake_hub.clear_faults()
    return fake_hub
