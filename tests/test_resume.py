"""A run killed with SIGKILL right after a checkpoint resumes on re-run, with no duplicated metrics."""

import os
import signal
import subprocess
import sys

from helpers import RECIPES, ROOT, StepBarrier, read_metrics, read_summary, train


def test_sigkilled_run_resumes_from_its_last_checkpoint(tmp_path, demo_model_dir):
    run_dir = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "trainers",
        "train",
        str(RECIPES / "demo-sft.yaml"),
        "--output-dir",
        str(run_dir),
        "--set",
        "training.max_steps=300",
        "--set",
        "training.save_steps=40",
        "--set",
        "training.logging_steps=10",
    ]
    barrier = StepBarrier(tmp_path / "barrier", 80)  # paused after step 80's log line and checkpoint
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "STUDIO_QUIET": "1", **barrier.env},
    )
    try:
        assert barrier.wait(running=lambda: proc.poll() is None) == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = run_dir / "checkpoints" / "checkpoint-80" / "trainer_state.json"
    assert state.exists(), "no checkpoint before the kill"
    assert read_summary(run_dir)["status"] == "running"  # killed: nobody wrote an end state
    killed_at = max(r["step"] for r in read_metrics(run_dir))
    assert killed_at == 80 < 300

    # Re-running the run's own config.yaml resumes in place (no --output-dir).
    assert train(run_dir / "config.yaml", None) == 0
    summary = read_summary(run_dir)
    assert summary["status"] == "succeeded" and summary["global_step"] == 300
    log = (run_dir / "train.log").read_text()
    resumed = int(log.split("Resuming from ")[1].split("(step ")[1].split(")")[0])
    assert resumed == 80  # the last checkpoint before the kill
    steps = [r["step"] for r in read_metrics(run_dir) if "loss" in r]
    assert steps == sorted(set(steps)), "duplicated or out-of-order steps"
    assert steps == list(range(10, 301, 10))
