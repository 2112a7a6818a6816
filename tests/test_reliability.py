"""Kills and full disks inside a checkpoint save: resume picks the newest complete checkpoint, sets the torn one
aside, keeps metrics continuous; a disk-full run says so in one sentence and resumes once space is back.

Faults are injected at exact points of the save with the test-only STUDIO_TEST_DIE_AT hook
(trainers/callbacks.install_test_faults), so nothing here races the trainer against the clock."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import RECIPES, ROOT, read_metrics, read_summary, train

from trainers.run import checkpoint_problem, last_complete_checkpoint

STEPS = ["training.max_steps=12", "training.save_steps=4", "training.logging_steps=2"]
NO_EVAL = ["data.eval_source=null", "data.eval_size=0"]


def train_child(run_dir: Path, fault: str | None, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "trainers", "train", str(RECIPES / "demo-sft.yaml"), "--output-dir", str(run_dir)]
    for item in [*NO_EVAL, *STEPS, *extra]:
        cmd += ["--set", item]
    env = {**os.environ, "STUDIO_QUIET": "1"}
    env.pop("STUDIO_TEST_DIE_AT", None)
    if fault:
        env["STUDIO_TEST_DIE_AT"] = fault
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def assert_continuous(run_dir: Path, max_steps: int = 12, every: int = 2) -> None:
    steps = [r["step"] for r in read_metrics(run_dir) if "loss" in r]
    assert steps == list(range(every, max_steps + 1, every)), steps  # strictly increasing, none twice, none lost
    summary = read_summary(run_dir)
    assert summary["status"] == "succeeded" and summary["global_step"] == max_steps, summary


@pytest.mark.parametrize("phase", ["torn", "weights", "state", "optimizer"])
def test_kill_inside_a_checkpoint_save_resumes_from_the_previous_complete_one(home, tmp_path, phase):
    run_dir = tmp_path / "run"
    killed = train_child(run_dir, f"save:8:{phase}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    torn = run_dir / "checkpoints" / "checkpoint-8"
    assert torn.is_dir() and checkpoint_problem(torn) is not None  # the kill left half a checkpoint
    assert max(r["step"] for r in read_metrics(run_dir)) == 8  # metrics went past the last complete checkpoint

    assert train(run_dir / "config.yaml", None) == 0  # re-running the run's own config resumes in place
    log = (run_dir / "train.log").read_text()
    assert "Checkpoint checkpoint-8 is incomplete" in log
    assert "Resuming from " in log and "checkpoint-4 (step 4)" in log
    aside = list((run_dir / "checkpoints" / "incomplete").iterdir())
    assert [p.name.split("-2")[0] for p in aside] == ["checkpoint-8"]  # set aside, not deleted, not resumed
    assert checkpoint_problem(run_dir / "checkpoints" / "checkpoint-8") is None  # saved again, complete
    assert_continuous(run_dir)


def test_two_kills_in_a_row_and_a_full_fine_tune(home, tmp_path):
    """Full weights (model.safetensors), killed at the first save, then at the second: resume from scratch,
    then from checkpoint-4."""
    run_dir = tmp_path / "full"
    assert train_child(run_dir, "save:4:weights", "peft.type=none").returncode == -signal.SIGKILL
    assert last_complete_checkpoint(run_dir / "checkpoints", set_aside=False) is None
    assert train_child(run_dir, "save:8:optimizer", "peft.type=none").returncode == -signal.SIGKILL
    assert (run_dir / "checkpoints" / "checkpoint-4" / "model.safetensors").exists()
    assert last_complete_checkpoint(run_dir / "checkpoints", set_aside=False).endswith("checkpoint-4")
    assert train(run_dir / "config.yaml", None) == 0
    assert len(list((run_dir / "checkpoints" / "incomplete").iterdir())) == 2
    assert_continuous(run_dir)


def test_disk_full_during_a_save_is_one_sentence_and_resumes(home, tmp_path):
    run_dir = tmp_path / "full-disk"
    failed = train_child(run_dir, "save:8:optimizer:enospc")
    assert failed.returncode == 2
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error")]
    assert "Traceback" not in failed.stderr
    assert errors == ["error: The disk is full: delete old runs or checkpoints to free space, then resume the run."]
    summary = read_summary(run_dir)
    assert summary["status"] == "failed" and summary["exit_reason"] == "disk_full"
    assert train(run_dir / "config.yaml", None) == 0  # space freed (the fault is gone): it resumes
    assert "checkpoint-4 (step 4)" in (run_dir / "train.log").read_text()
    assert_continuous(run_dir)


def test_checkpoint_checks_on_handmade_folders(tmp_path):
    ckpt = tmp_path / "checkpoints" / "checkpoint-3"
    ckpt.mkdir(parents=True)
    assert "trainer_state" in checkpoint_problem(ckpt)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 3}))
    assert "weights" in checkpoint_problem(ckpt)
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    (ckpt / "adapter_model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 8)
    assert "weights are incomplete" in checkpoint_problem(ckpt)  # 8 of 16 bytes: a torn write
    (ckpt / "adapter_model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 16)
    assert "optimizer.pt" in checkpoint_problem(ckpt)
    assert checkpoint_problem(ckpt, need_optimizer=False) is None  # save_only_model checkpoints
    (ckpt / "optimizer.pt").write_bytes(b"PK not really a zip")
    assert "optimizer.pt" in checkpoint_problem(ckpt)


def test_a_failed_run_without_output_dir_leaves_no_empty_folder(home, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: sft\nmodel: {name_or_path: demo-tiny}\ndata: {source: /nonexistent/rows.jsonl}\n")
    before = set((home / "runs").iterdir()) if (home / "runs").exists() else set()
    assert train(bad, None) != 0
    after = set((home / "runs").iterdir()) if (home / "runs").exists() else set()
    assert after == before


def test_disk_full_through_the_queue_is_one_sentence_everywhere_and_resumes(home, monkeypatch, capsys):
    from jobs import monitor
    from jobs.__main__ import main as jobs_main
    from jobs.api import JobQueue
    from jobs.runner import Worker

    monkeypatch.setenv("STUDIO_TEST_DIE_AT", "save:8:optimizer:enospc")
    monkeypatch.setenv("STUDIO_CHILD_ENV", "STUDIO_TEST_DIE_AT")  # the child's environment is an allowlist
    queue = JobQueue(home)
    run_id = queue.submit(RECIPES / "demo-sft.yaml", overrides=NO_EVAL + STEPS)
    worker = Worker(home, poll_s=0.1)
    worker.run(until_empty=True)
    run = queue.get(run_id, "local")
    assert (run.status, run.exit_reason, run.error) == ("failed", "disk_full", monitor.DISK_FULL)
    capsys.readouterr()
    assert jobs_main(["status", run_id]) == 0
    assert capsys.readouterr().out.strip().endswith(f"— {monitor.DISK_FULL}")

    monkeypatch.delenv("STUDIO_TEST_DIE_AT")  # space freed
    assert queue.resume(run_id, "local") == "queued"
    worker.run(until_empty=True)
    run = queue.get(run_id, "local")
    assert run.status == "succeeded" and run.attempts == 2, (run.status, run.error)
    assert_continuous(Path(run.run_dir))
