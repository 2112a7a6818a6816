"""Shared fixtures: an isolated STUDIO_HOME, the offline demo model, and in-process CLI runs."""

import json
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "templates" / "recipes"
os.environ["STUDIO_HOME"] = tempfile.mkdtemp(prefix="studio-test-")
os.environ["HF_HUB_CACHE"] = os.path.join(os.environ["STUDIO_HOME"], "hub-cache")  # before any HF import
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("STUDIO_QUIET", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: the suite's processes share the cores
PLANTED_TOKEN = "hf_planted_in_the_environment_0123456789"
os.environ["HF_TOKEN"] = PLANTED_TOKEN  # every run inherits it; none may write it anywhere (see below)

from fakehub.fixture import fake_hub, fake_hub_env  # noqa: E402, F401 - the loopback fake Hub, after the env is set


def train(config, out_dir, *overrides):
    """Run `python -m trainers train` in-process; returns the exit code."""
    from trainers.__main__ import main

    args = ["train", str(config)] + (["--output-dir", str(out_dir)] if out_dir else [])
    for item in overrides:
        args += ["--set", item]
    return main(args)


def read_metrics(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def read_summary(run_dir):
    return json.loads((Path(run_dir) / "summary.json").read_text())


@pytest.fixture(scope="session")
def demo_model_dir():
    from trainers.models import resolve_model_path

    return Path(resolve_model_path("demo-tiny"))


@pytest.fixture
def home(tmp_path, demo_model_dir, monkeypatch):
    """A fresh STUDIO_HOME for one test, reusing the session's demo model."""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "demo-tiny").symlink_to(demo_model_dir)
    monkeypatch.setenv("STUDIO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def sft_then_dpo(tmp_path_factory, demo_model_dir):
    """The shipped demo-sft-then-dpo recipe, run once: (sft_run_dir, dpo_run_dir)."""
    dpo_dir = tmp_path_factory.mktemp("runs") / "sft-then-dpo"
    assert train(RECIPES / "demo-sft-then-dpo.yaml", dpo_dir) == 0
    sft_dir = Path(read_summary(dpo_dir)["init_from"]).parent
    return sft_dir, dpo_dir


def fake_hub_model(model_dir, repo_id):
    """Place a model folder in the HF cache as if downloaded from the Hub (models--org--name layout)."""
    import shutil

    from huggingface_hub import constants

    sha = "0" * 40
    repo = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / sha
    if not snapshot.exists():
        shutil.copytree(model_dir, snapshot)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(sha)
    return repo_id


@pytest.fixture(scope="session", autouse=True)
def no_token_on_disk(tmp_path_factory):
    """After all tests, no file under STUDIO_HOME or any test's folder holds the planted token."""
    yield
    roots = [Path(os.environ["STUDIO_HOME"]), tmp_path_factory.getbasetemp()]
    leaks = [
        str(path)
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and PLANTED_TOKEN.encode() in path.read_bytes()
    ]
    assert not leaks, f"the HF token was written to {leaks[:5]}"
