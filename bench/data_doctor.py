"""Benchmark (not a test): detection + conversion + data doctor over 100,000 rows.

    python bench/data_doctor.py [ROWS]

Writes a synthetic messages dataset (a mix of single- and multi-turn chats, some duplicates and a few
invalid rows) to bench/out/, then times `python -m data doctor FILE --model demo-tiny` in a child
process and reports its wall time and peak RSS.  The goal is under 60 s with bounded memory.
"""

import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
WORDS = (
    "the river model answer garden quickly explain small data train token city bright careful "
    "window question simple letter market forest engine story team often later"
).split()


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make(path: Path, rows: int) -> None:
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            turns = []
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                turns += [
                    {"role": "user", "content": sentence(rng, rng.randint(4, 30))},
                    {"role": "assistant", "content": sentence(rng, rng.randint(5, 120))},
                ]
            if i % 500 == 7:
                turns[-1]["content"] = ""  # a few invalid rows
            f.write(json.dumps({"messages": turns}) + "\n")


def main(rows: int = 100_000) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"doctor_{rows}.jsonl"
    if not path.exists():
        make(path, rows)
    sys.path.insert(0, str(ROOT))
    from trainers.models import resolve_model_path

    resolve_model_path("demo-tiny")  # build the demo model outside the timing
    cmd = [sys.executable, "-m", "data", "doctor", str(path), "--model", "demo-tiny", "--json", "--max-length", "512"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report = json.loads(proc.stdout)["reports"][0]
    result = {
        "rows": rows,
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(peak_mb),
        "rows_kept": report["rows_kept"],
        "tokens": report["tokens"],
        "findings": [f["code"] for f in report["findings"]],
        "exit_code": proc.returncode,
    }
    print(json.dumps(result, indent=2))
    (OUT / "data_doctor_results.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
