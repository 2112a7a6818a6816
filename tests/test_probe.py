"""'Check on this hardware': a few real optimizer steps in a child process, measured peak memory and tokens/s beside
the estimate, every tier's corrected time and cost; nothing left behind; the shared-Space path rules first."""

import pytest
import yaml

from jobs import probe as jobs_probe
from jobs.access import AccessError
from jobs.api import JobQueue

DEMO = {
    "method": "sft",
    "model": {"name_or_path": "demo-tiny"},
    "peft": {"type": "lora", "r": 8, "lora_alpha": 16},
    "data": {"source": "data/demo/sft_train.jsonl"},
    # full 512-token rows at batch 8: training needs clearly more RAM than loading the data did
    "training": {"per_device_train_batch_size": 8, "max_length": 512, "packing_strategy": "wrapped"},
}


def test_check_on_this_hardware_measures_beside_the_estimate_and_leaves_nothing(home):
    report = jobs_probe.check_on_this_hardware(home, yaml.safe_dump(DEMO), "alice", steps=4)
    assert "**Measured on this machine**" in report
    assert "**Peak memory:** measured" in report and "estimate" in report and "vs measured" in report
    assert "**Tokens/s:** measured" in report
    assert "| cpu-basic |" in report and "| a100-large |" in report
    assert " * |" in report  # the CPU tiers are corrected by the measured speed
    assert not any((home / "tmp").rglob("*.yaml")) and not (home / "runs").exists()  # no run folder behind
    assert JobQueue(home).list("alice") == []


def test_the_probe_report_has_the_figures(home):
    from trainers.probe import measure, report

    raw = home / "cfg.yaml"
    raw.write_text(yaml.safe_dump(DEMO))
    result = report(str(raw), [], measure(str(raw), [], 3, home / "probe-run"))
    m = result["measured"]
    assert m["device"] == "cpu" and 1 <= m["steps"] <= 3
    assert m["measured_peak_gb"] > 0 and result["predicted_peak_gb"] > 0
    assert m["baseline_rss_mb"] > 0 and m["tokens_per_second"] > 0
    assert {t["name"] for t in result["tiers"] if t["corrected"]} == {"cpu-basic", "cpu-upgrade"}
    assert not (home / "probe-run" / "adapter").exists() and not any((home / "probe-run").rglob("checkpoint-*"))


def test_another_users_path_is_refused_before_anything_runs(home, monkeypatch):
    monkeypatch.setenv("STUDIO_MULTI_USER", "1")
    other = home / "uploads" / "bob" / "data.jsonl"
    other.parent.mkdir(parents=True)
    other.write_text('{"text": "x"}\n')
    with pytest.raises(AccessError):
        jobs_probe.check_on_this_hardware(home, {**DEMO, "data": {"source": str(other)}}, "alice")
    assert not (home / "tmp").exists()


def test_bad_requests_get_one_sentence(home):
    with pytest.raises(jobs_probe.ProbeError, match="between 1 and 100"):
        jobs_probe.check_on_this_hardware(home, DEMO, "alice", steps=0)
    with pytest.raises(jobs_probe.ProbeError, match="no config to check"):
        jobs_probe.check_on_this_hardware(home, "", "alice")
    with pytest.raises(AccessError):
        jobs_probe.check_on_this_hardware(home, DEMO, "")


def test_the_gpu_check_is_ready_to_run_and_its_plan_is_valid_without_a_gpu(tmp_path):
    """bench/gpu_run.sh parses; bench/gpu_check.py --dry checks every config it would run and writes its JSON."""
    import json
    import subprocess
    import sys

    from helpers import ROOT

    assert subprocess.run(["bash", "-n", str(ROOT / "bench" / "gpu_run.sh")], check=False).returncode == 0
    cmd = [sys.executable, str(ROOT / "bench" / "gpu_check.py"), str(tmp_path), "--dry"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["mode"] == "dry"
    parts = result["parts"]
    assert {"probe: llama3.1-8b qlora 4bit", "padding-free (engine choice)", "plain TRL (overhead)"} <= set(parts)
