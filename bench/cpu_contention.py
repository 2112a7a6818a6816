"""Demo SFT idle vs beside a CPU hog the size of the app's Playground load, in one run.

    python bench/cpu_contention.py                 # managed threads (what the worker does), ~2 min on 2 cores
    python bench/cpu_contention.py --unmanaged 300 # also the old behaviour (torch defaults), capped at 300 s

The hog is what the app does while a run trains: torch inference in the app process with the app's thread
share (core.threads.app_share), in a loop.  The training child gets exactly the environment the worker gives it
(jobs.childenv.child_env with the worker's thread share).  Reported: process wall time and the trainer's
train_runtime of each run, and the contended/idle ratio.  Results: bench/out/cpu_contention.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import threads  # noqa: E402
from jobs.childenv import child_env  # noqa: E402

HOG = """
import os, sys, time
import torch
torch.set_num_threads(int(sys.argv[1]))
a, b = torch.randn(384, 384), torch.randn(384, 384)
while True:
    for _ in range(50):
        a = torch.tanh(a @ b)
"""


def train_once(home: Path, out: Path, steps: int, env: dict, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "trainers", "train", "templates/recipes/demo-sft.yaml", "--output-dir", str(out)]
    cmd += ["--set", f"training.max_steps={steps}", "--set", "data.eval_size=0"]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"wall_s": None, "timed_out_after_s": timeout}
    wall = time.perf_counter() - started
    if proc.returncode:
        sys.exit(f"training failed:\n{proc.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {
        "wall_s": round(wall, 2),
        "train_runtime_s": summary["final_metrics"].get("train_runtime"),
        "steps": summary["global_step"],
        "cpu_threads": summary.get("cpu_threads"),
    }


def with_hog(hog_threads: int, hog_env: dict, fn):
    hog = subprocess.Popen([sys.executable, "-c", HOG, str(hog_threads)], env=hog_env)
    try:
        time.sleep(3)  # the hog is past its imports and computing
        return fn()
    finally:
        hog.kill()
        hog.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--unmanaged", type=float, default=0, help="also run torch's defaults, capped at N s")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    home = work / "home"
    cores, share = threads.available_cores(), threads.app_share()
    managed = child_env(home, None, threads.child_threads(share, 1))
    hog_managed = {**managed, threads.HINT: str(share)}
    # warm-up: builds the demo model and the datasets cache, so both timed runs start alike
    train_once(home, work / "warmup", 5, managed, 900)
    results = {"cores": cores, "app_share": share, "steps": args.steps}
    results["idle"] = train_once(home, work / "idle", args.steps, managed, 900)
    results["contended"] = with_hog(
        share, hog_managed, lambda: train_once(home, work / "hog", args.steps, managed, 900)
    )
    results["ratio_wall"] = round(results["contended"]["wall_s"] / results["idle"]["wall_s"], 2)
    results["ratio_train_runtime"] = round(
        results["contended"]["train_runtime_s"] / results["idle"]["train_runtime_s"], 2
    )
    if args.unmanaged:
        plain = {k: v for k, v in managed.items() if not k.startswith("OMP_") and k != threads.HINT}
        plain["OMP_NUM_THREADS"] = str(cores)  # torch's default: every core
        plain["OMP_WAIT_POLICY"] = ""  # libgomp's default waits (spin, then sleep): what ran before
        plain_hog = {**plain}
        results["unmanaged_idle"] = train_once(home, work / "u-idle", args.steps, plain, args.unmanaged)
        results["unmanaged_contended"] = with_hog(
            cores, plain_hog, lambda: train_once(home, work / "u-hog", args.steps, plain, args.unmanaged)
        )
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cpu_contention.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
