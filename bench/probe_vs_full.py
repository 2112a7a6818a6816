"""The probe's measured peak vs the true peak of the full run, on CPU (and auto-fit checked by a real run).

    python bench/probe_vs_full.py            # ~15 min on 2 busy cores: per configuration one probe + one full epoch
    python bench/probe_vs_full.py --table    # re-print the table from bench/out/probe_vs_full.json

For each configuration: `python -m trainers probe CONFIG --json` (at most 10 steps, stops once the peak is flat),
then the full run, `python -m trainers train CONFIG` for one whole epoch of bench/out/data.jsonl. Both measure the
same quantity in the same way (trainers.probe.cpu_peak_above_baseline_mb, from summary.json): the peak RSS since
the model started loading (the engine resets the kernel's peak mark there) above the RSS at that moment. Last,
auto-fit: a configuration predicted over a RAM budget is fitted (`python -m trainers fit --memory-gb X --cpu`) and the fitted config's full run's whole-process
peak RSS is compared with the budget.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from estimate_memory import DATA, config_doc, mid_model  # noqa: E402

from trainers.probe import cpu_peak_above_baseline_mb  # noqa: E402

OUT = ROOT / "bench" / "out" / "probe_vs_full"
RESULTS = ROOT / "bench" / "out" / "probe_vs_full.json"
# (name, model, peft, r, batch, max_length, packing strategy)
CONFIGS = [
    ("demo lora r64 b8 L128 wrapped", "demo-tiny", "lora", 64, 8, 128, "wrapped"),
    ("demo lora r64 b8 L512 bfd", "demo-tiny", "lora", 64, 8, 512, "bfd"),
    ("mid lora r8 b4 L256 wrapped", "mid", "lora", 8, 4, 256, "wrapped"),
    ("mid lora r8 b4 L512 wrapped", "mid", "lora", 8, 4, 512, "wrapped"),
    ("mid lora r16 b8 L512 bfd", "mid", "lora", 16, 8, 512, "bfd"),
    ("mid dora r16 b4 L256 wrapped", "mid", "dora", 16, 4, 256, "wrapped"),
    ("mid full b4 L256 wrapped", "mid", "none", 8, 4, 256, "wrapped"),
]
FIT = ("mid lora r8 b8 L512 wrapped", "mid", "lora", 8, 8, 512, "wrapped")
FIT_BUDGET_GB = 1.9  # whole-process RAM: the config above is predicted over it


def doc_for(model_path: str, peft: str, r: int, batch: int, max_length: int, strategy: str) -> dict:
    doc = config_doc(model_path, peft, r, batch, max_length)
    training = doc["training"]
    training.update(packing_strategy=strategy, max_steps=-1, num_train_epochs=1, logging_steps=5)
    return doc


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "STUDIO_QUIET": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, check=False)


def probe_and_full(name: str, config: Path) -> dict:
    started = time.time()
    probe = run([sys.executable, "-m", "trainers", "probe", str(config), "--json"])
    if probe.returncode != 0:
        raise SystemExit(f"probe failed for {name}: {probe.stderr[-2000:]}")
    report = json.loads(probe.stdout)
    probe_s = time.time() - started
    run_dir = OUT / "runs" / config.stem
    started = time.time()
    full = run([sys.executable, "-m", "trainers", "train", str(config), "--output-dir", str(run_dir)])
    if full.returncode != 0:
        raise SystemExit(f"full run failed for {name}: {full.stderr[-2000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    true_gb = cpu_peak_above_baseline_mb(summary) * 2**20 / 1e9
    m = report["measured"]
    return {
        "name": name,
        "probe_steps": m["steps"],
        "probe_s": round(probe_s, 1),
        "probe_peak_gb": m["measured_peak_gb"],
        "estimate_gb": report["predicted_peak_gb"],
        "full_steps": summary["global_step"],
        "full_s": round(time.time() - started, 1),
        "full_peak_gb": round(true_gb, 3),
        "full_peak_rss_gb": round(summary["peak_rss_mb"] * 2**20 / 1e9, 3),
        "probe_tokens_per_s": m["tokens_per_second"],
        "full_tokens_per_s": summary["tokens_seen"] / summary["final_metrics"]["train_runtime"],
        "error": round((m["measured_peak_gb"] - true_gb) / true_gb, 3),
    }


def measure(names: list[str] | None, with_fit: bool) -> list[dict]:
    import yaml

    models = {"demo-tiny": "demo-tiny", "mid": str(mid_model())}
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, model, *rest in CONFIGS:
        if names and name not in names:
            continue
        config = OUT / f"{name.replace(' ', '-')}.yaml"
        config.write_text(yaml.safe_dump(doc_for(models[model], *rest)))
        rows.append(probe_and_full(name, config))
        print(json.dumps(rows[-1]), flush=True)
    if not with_fit:
        return rows
    name, model, *rest = FIT
    config = OUT / "fit-before.yaml"
    config.write_text(yaml.safe_dump(doc_for(models[model], *rest)))
    fitted = OUT / "fit-after.yaml"
    fit = run([sys.executable, "-m", "trainers", "fit", str(config), "--memory-gb", str(FIT_BUDGET_GB), "--cpu"] + ["-o", str(fitted)])  # fmt: skip
    row = probe_and_full(f"{name} fitted to {FIT_BUDGET_GB} GB", fitted)
    row.update(fit_exit=fit.returncode, fit_notes=fit.stderr.strip().splitlines(), budget_gb=FIT_BUDGET_GB)
    rows.append(row)
    print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> None:
    print("| configuration | probe steps | probe peak | full-run steps | full-run peak | probe vs full | estimate |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['name']} | {r['probe_steps']} | {r['probe_peak_gb']:.3f} GB | {r['full_steps']} | "
            f"{r['full_peak_gb']:.3f} GB | {100 * r['error']:+.1f} % | {r['estimate_gb']:.3f} GB |"
        )
    for r in rows:
        if "budget_gb" in r:
            print(
                f"\nauto-fit: budget {r['budget_gb']} GB; fitted run's whole-process peak RSS {r['full_peak_rss_gb']:.2f} GB"
            )
            print("\n".join(f"  {line}" for line in r["fit_notes"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", action="store_true", help="re-print the table from the saved results")
    parser.add_argument("--only", action="append", help="measure only this configuration (repeatable); merged")
    parser.add_argument("--no-fit", action="store_true", help="leave out the auto-fit run")
    args = parser.parse_args()
    if not args.table:
        if not DATA.exists():
            subprocess.run([sys.executable, str(ROOT / "bench" / "make_data.py")], check=True)
        new = measure(args.only, not args.no_fit)
        old = json.loads(RESULTS.read_text()) if args.only and RESULTS.exists() else []
        names = {r["name"] for r in new}
        RESULTS.write_text(json.dumps([r for r in old if r["name"] not in names] + new, indent=1))
    table(json.loads(RESULTS.read_text()))


if __name__ == "__main__":
    main()
