"""Auto-fit: a config predicted over a memory budget becomes one under it (largest per-device batch, same effective
batch, then activation checkpointing); what changed and why is written into the config; when nothing fits, the
notes suggest what would."""

import pytest
import yaml

from trainers import autofit
from trainers import config as config_mod
from trainers.__main__ import main

RAW = {
    "method": "sft",
    "model": {"name_or_path": "demo-tiny"},
    "peft": {"type": "lora", "r": 8, "lora_alpha": 16},
    "data": {"source": "data/demo/sft_train.jsonl"},
    "training": {
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 2,
        "max_length": 2048,
        "packing": False,
    },
}


def cpu_budget(gb: float) -> autofit.Target:
    return autofit.Target(f"{gb:.3f} GB RAM", gb, gpu=False)


def test_a_config_over_a_small_budget_is_fitted_under_it_keeping_the_effective_batch(demo_model_dir):
    cfg = config_mod.from_dict(RAW)
    before = autofit.predicted_gb(cfg, cpu_budget(1))
    floor = autofit.predicted_gb(autofit._with(cfg, 1, 16, False), cpu_budget(1))
    assert floor < before
    budget = (before + floor) / 2 / autofit.MARGIN  # the config does not fit it, batch 1 does
    new, changes = autofit.fit(cfg, cpu_budget(budget))
    t = new.training
    assert t["per_device_train_batch_size"] < 8
    assert t["per_device_train_batch_size"] * t["gradient_accumulation_steps"] == 16  # same effective batch
    assert autofit.predicted_gb(new, cpu_budget(budget)) <= budget * autofit.MARGIN
    assert any("per_device_train_batch_size 8 ->" in line for line in changes)
    assert new.autofit[0].startswith("target ") and new.autofit[1:] == changes
    assert cfg.training["per_device_train_batch_size"] == 8  # the input config is left as it was


def test_checkpointing_comes_only_after_the_batch_and_nothing_fitting_gives_suggestions(demo_model_dir):
    cfg = config_mod.from_dict(RAW)
    floor = autofit.predicted_gb(autofit._with(cfg, 1, 16, False), cpu_budget(1))
    ckpt = autofit.predicted_gb(autofit._with(cfg, 1, 16, True), cpu_budget(1))
    assert ckpt < floor
    new, changes = autofit.fit(cfg, cpu_budget((ckpt + floor) / 2 / autofit.MARGIN))
    assert new.training["activation_checkpointing"] is True and new.training["per_device_train_batch_size"] == 1
    assert any(line.startswith("activation_checkpointing on") for line in changes)
    result = autofit.plan(cfg, cpu_budget(0.3))  # under the process baseline: nothing fits
    assert result["fits"] is False
    assert any(line.startswith("suggestion:") for line in result["changes"])


def test_a_config_that_fits_is_left_alone(demo_model_dir):
    cfg = config_mod.from_dict(RAW)
    new, changes = autofit.fit(cfg, cpu_budget(100))
    assert new.training == cfg.training and changes[0].startswith("fits as configured")


def test_fit_cli_writes_the_changes_into_config_yaml(tmp_path, demo_model_dir, capsys):
    src, out = tmp_path / "in.yaml", tmp_path / "out.yaml"
    src.write_text(yaml.safe_dump(RAW))
    cfg = config_mod.from_dict(RAW)
    budget = autofit.predicted_gb(autofit._with(cfg, 1, 16, False), cpu_budget(1)) / autofit.MARGIN * 1.01
    assert main(["fit", str(src), "--memory-gb", f"{budget:.4f}", "--cpu", "-o", str(out)]) == 0
    fitted = config_mod.load(out)
    assert fitted.training["per_device_train_batch_size"] == 1
    assert any("same effective batch 16" in note for note in fitted.autofit)
    assert "Auto-fit for" in out.read_text().splitlines()[0]
    assert main(["fit", str(src), "--target", "no-such-tier"]) == 2
    assert "Unknown target 'no-such-tier'" in capsys.readouterr().err


def test_a_tier_target_reads_its_memory_and_kind():
    t4 = autofit.target("t4-small")
    assert (t4.memory_gb, t4.gpu) == (16.0, True)
    assert autofit.target("cpu-basic").gpu is False
    with pytest.raises(autofit.FitError, match="greater than 0"):
        autofit.target(memory_gb=0)
