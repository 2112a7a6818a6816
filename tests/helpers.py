"""Helpers the test modules import (`from helpers import ...`); the fixtures stay in conftest.py.

Importing this module sets nothing: tests/conftest.py sets the test environment (STUDIO_HOME, offline Hub, the
planted HF token) before any test module is imported."""

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "templates" / "recipes"
PLANTED_TOKEN = "hf_planted_in_the_environment_0123456789"  # conftest puts it in HF_TOKEN; no file may hold it


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


def fake_hub_model(model_dir, repo_id):
    """Place a model folder in the HF cache as if downloaded from the Hub (models--org--name layout)."""
    from huggingface_hub import constants

    sha = "0" * 40
    repo = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / sha
    if not snapshot.exists():
        shutil.copytree(model_dir, snapshot)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(sha)
    return repo_id


class StepBarrier:
    """The test's side of the trainer's test-only step barrier (trainers/callbacks.StepBarrier).

    A training process started with `barrier.env` in its environment pauses once it has finished global step
    `step` (that step's logging and checkpoint included): `wait()` returns then, the test acts on the paused
    run (SIGTERM, cancel, SIGKILL), and `release()` lets it go on.  No wall clock decides anything: the limit in
    `wait()` only bounds a hang.  A child started by the job worker needs STUDIO_CHILD_ENV=STUDIO_TEST_BARRIER
    too (its environment is an allowlist); `env` carries both."""

    def __init__(self, folder: Path, step: int):
        self.folder, self.step = Path(folder), step
        self.folder.mkdir(parents=True, exist_ok=True)
        self.env = {"STUDIO_TEST_BARRIER": f"{self.folder}:{step}", "STUDIO_CHILD_ENV": "STUDIO_TEST_BARRIER"}

    @property
    def reached(self) -> Path:
        return self.folder / f"reached-{self.step}"

    def wait(self, running: Callable[[], bool] = lambda: True, limit_s: float = 600.0) -> int:
        """Until the run is paused at the step; returns the paused process's pid.  `running` False: it ended."""
        deadline = time.time() + limit_s
        while not self.reached.exists():
            assert running(), f"the run ended before it reached step {self.step}"
            assert time.time() < deadline, f"the run did not reach step {self.step} (hung?)"
            time.sleep(0.05)
        return int(self.reached.read_text())  # written whole (tmp + rename)

    def release(self) -> None:
        (self.folder / f"release-{self.step}").touch()


def record_child_env(worker, monkeypatch) -> dict:
    """Make `worker` record the environment it gives each child: returns a dict whose "env" is the last one."""
    seen = {}
    launch = worker.launch

    def spy(run):
        seen["env"] = worker._env(run.id)
        launch(run)

    monkeypatch.setattr(worker, "launch", spy)
    return seen
