"""Run a config off the Space on HF Jobs: the exact `hf jobs run` command, or a submission through
huggingface_hub's Jobs API (`HfApi.run_job`).

The job clones this app's code, installs requirements.txt, decodes the config from an environment variable,
trains (through `accelerate launch` when the config names a launch profile), and pushes the adapter to the
Hub with `python -m hub push`. The token travels as a Jobs secret (`--secrets HF_TOKEN`: the hf CLI reads its
value from your environment), never inline and never in the config.
"""

from __future__ import annotations

import base64
import os
import shlex
from pathlib import Path

import yaml

from core.errors import ConfigError
from core.paths import ROOT
from trainers import config as config_mod

HARDWARE = ROOT / "templates" / "hardware" / "spaces-2026-11.yaml"
IMAGE = "python:3.11"  # PyPI's torch wheels bring their own CUDA libraries; the host provides the driver
RUN_DIR = "/tmp/run"


def flavors() -> list[str]:
    return [t["name"] for t in yaml.safe_load(HARDWARE.read_text(encoding="utf-8"))["tiers"]]


def _portable(cfg) -> None:
    """Local paths must exist inside the cloned repo (e.g. data/demo/...); anything else must be on the Hub."""
    for section, key in (("data", "source"), ("data", "eval_source"), ("model", "name_or_path")):
        obj = getattr(cfg, section)
        value = getattr(obj, key)
        if not value or not Path(value).expanduser().exists():
            continue
        path = Path(value).expanduser().resolve()
        if not path.is_relative_to(ROOT):
            raise ConfigError(
                f"{section}.{key} is a local path ({value}) that a Job cannot see: upload it to a Hub "
                "dataset/model repo and use its id."
            )
        setattr(obj, key, path.relative_to(ROOT).as_posix())
    if cfg.init_from:
        raise ConfigError("init_from points at a local run: push that adapter to the Hub and use its repo id.")


def job_spec(config_path: str, flavor: str, push_to: str, code_repo: str | None = None, overrides=None) -> dict:
    """{image, command (argv), env, secrets (names only), flavor, script}: what the job runs."""
    cfg = config_mod.load(config_path, overrides or [])  # a missing or bad config is the first thing to say
    if flavor not in flavors():
        raise ConfigError(f"Unknown flavor {flavor!r}: choose one of {', '.join(flavors())}.")
    if not push_to or "/" not in push_to:
        raise ConfigError("--push-to needs NAMESPACE/NAME: the Job's disk is gone when it ends.")
    code_repo = code_repo or (
        f"https://huggingface.co/spaces/{os.environ['SPACE_ID']}" if os.environ.get("SPACE_ID") else None
    )
    if not code_repo:
        raise ConfigError("--code-repo is needed off a Space: a git URL of this app that the Job can clone.")
    _portable(cfg)
    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)
    encoded = base64.b64encode(text.encode()).decode()
    train = ["python", "-m", "trainers", "train"]
    if cfg.launch.profile:
        train = ["accelerate", "launch", "--config_file", f"templates/accelerate/{cfg.launch.profile}.yaml"]
        train += ["--num_processes", str(cfg.launch.num_processes), "-m", "trainers", "train"]
    steps = [
        ["git", "clone", "--depth", "1", code_repo, "/studio"],
        ["cd", "/studio"],
        ["pip", "install", "--quiet", "torch==2.13.0"],
        ["pip", "install", "--quiet", "-r", "requirements.txt"],
    ]
    script = " && ".join(shlex.join(s) for s in steps)
    script += ' && echo "$STUDIO_CONFIG" | base64 -d > /tmp/run.yaml'
    script += " && " + shlex.join([*train, "/tmp/run.yaml", "--output-dir", RUN_DIR])
    script += " && " + shlex.join(["python", "-m", "hub", "push", RUN_DIR, "--repo-id", push_to, "--private"])
    return {
        "image": IMAGE,
        "command": ["bash", "-c", script],
        "env": {"STUDIO_CONFIG": encoded},
        "secrets": ["HF_TOKEN"],
        "flavor": flavor,
    }


def cli_command(spec: dict, timeout: str = "2h") -> str:
    """The `hf jobs run` command line for a spec (the secret by name only)."""
    argv = ["hf", "jobs", "run", "--flavor", spec["flavor"], "--timeout", timeout]
    for name in spec["secrets"]:
        argv += ["--secrets", name]
    for key, value in spec["env"].items():
        argv += ["-e", f"{key}={value}"]
    return shlex.join([*argv, spec["image"], *spec["command"]])


def submit(spec: dict, token: str, timeout: str = "2h"):
    """Submit through huggingface_hub's Jobs API with the user's token as the job's HF_TOKEN secret."""
    from huggingface_hub import HfApi

    return HfApi(token=token).run_job(
        image=spec["image"],
        command=spec["command"],
        env=spec["env"],
        secrets={name: token for name in spec["secrets"]},
        flavor=spec["flavor"],
        timeout=timeout,
    )
