"""Latency of /run_status while a run trains, seen by a script in another process (gradio_client).

    python bench/run_status_latency.py [--calls 200] [--max-steps 3000]

Starts the app in this process (offline demo model, its own temporary STUDIO_HOME, the run worker thread),
queues a demo SFT through /submit_run, waits until it logs its first metrics, then a separate Python process
(gradio_client) makes --calls sequential /run_status calls (after 5 untimed warm-up calls) and reports each
call's wall time.  The run is cancelled afterwards.  Prints JSON and writes bench/out/run_status_latency.json.
Goal: p95 < 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
GOAL_P95_MS = 300.0
WARMUP = 5

# The measuring process: argv = url, run id, calls; prints one JSON object.
CLIENT = """
import json, sys, time
from gradio_client import Client

url, run_id, calls, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t0 = time.perf_counter()
client = Client(url, verbose=False)
connect_ms = (time.perf_counter() - t0) * 1000
for _ in range(warmup):
    client.predict(run_id, api_name="/run_status")
ms, states = [], []
for _ in range(calls):
    t0 = time.perf_counter()
    state = client.predict(run_id, api_name="/run_status")
    ms.append((time.perf_counter() - t0) * 1000)
    states.append((state["status"], state["step"]))
client.close()
print(json.dumps({"connect_ms": connect_ms, "ms": ms, "states": states}))
"""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--max-steps", type=int, default=3000, help="long enough to train through the measurement")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="studio-bench-latency-"))
    os.environ.update(
        STUDIO_HOME=str(home),
        HF_HUB_CACHE=str(home / "hub-cache"),
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_XET="1",
        STUDIO_QUIET="1",
        TOKENIZERS_PARALLELISM="false",
    )
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)  # the demo recipe's data paths are relative to the repo
    import yaml
    from gradio_client import Client

    import app
    from trainers.models import resolve_model_path

    resolve_model_path("demo-tiny")  # build the offline demo model now, not inside the measured run
    ctx = app.make_context()
    stop = threading.Event()
    worker = threading.Thread(target=ctx.worker.run, kwargs={"stop": stop.is_set}, daemon=True)
    worker.start()
    demo = app.build(ctx)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    url = demo.local_url

    config = yaml.safe_load((ROOT / "templates" / "recipes" / "demo-sft.yaml").read_text(encoding="utf-8"))
    config["training"].update(max_steps=args.max_steps, logging_steps=5, save_steps=args.max_steps)
    config["data"].update(eval_source=None, eval_size=0)
    submitter = Client(url, verbose=False)
    run_id = submitter.predict(yaml.safe_dump(config, sort_keys=False), api_name="/submit_run").strip()
    try:
        deadline = time.time() + 300
        while True:
            state = submitter.predict(run_id, api_name="/run_status")
            if state["step"] > 0 and state["status"] == "running":
                break
            if state["status"] not in ("queued", "running") or time.time() > deadline:
                raise SystemExit(f"the run did not start training: {state}")
            time.sleep(0.5)
        before = state
        t0 = time.time()
        proc = subprocess.run(
            [sys.executable, "-c", CLIENT, url, run_id, str(args.calls), str(WARMUP)],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
        )
        wall_s = time.time() - t0
        if proc.returncode:
            raise SystemExit(f"the client process failed:\n{proc.stderr[-4000:]}")
        measured = json.loads(proc.stdout.strip().splitlines()[-1])
        after = submitter.predict(run_id, api_name="/run_status")
    finally:
        ctx.queue.cancel(run_id, "local")
        deadline = time.time() + 90
        while ctx.queue.get(run_id, "local").status in ("queued", "running", "cancelling") and time.time() < deadline:
            time.sleep(0.5)
        stop.set()
        submitter.close()
        demo.close()

    ms = measured["ms"]
    statuses = {status for status, _ in measured["states"]}
    steps = [step for _, step in measured["states"]]
    result = {
        "calls": len(ms),
        "warmup_calls": WARMUP,
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "max_ms": round(max(ms), 1),
        "mean_ms": round(sum(ms) / len(ms), 1),
        "min_ms": round(min(ms), 1),
        "goal_p95_ms": GOAL_P95_MS,
        "meets_goal": percentile(ms, 95) < GOAL_P95_MS,
        "client_connect_ms": round(measured["connect_ms"], 1),
        "measurement_wall_s": round(wall_s, 1),
        "run": {
            "max_steps": args.max_steps,
            "statuses_seen": sorted(statuses),
            "trained_throughout": statuses == {"running"},
            "step_first_call": steps[0],
            "step_last_call": steps[-1],
            "step_before": before["step"],
            "step_after": after["step"],
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "client": "gradio_client in a separate process, sequential calls, one Client",
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "run_status_latency.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0 if result["run"]["trained_throughout"] else 1


if __name__ == "__main__":
    sys.exit(main())
