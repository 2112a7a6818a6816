"""QLoRA 4-bit, DoRA and full fine-tuning each train a few steps on CPU; re-running reproduces losses."""

import pytest
import torch
from helpers import RECIPES, read_metrics, read_summary, train
from safetensors.torch import load_file

FEW_STEPS = [
    "training.max_steps=4",
    "training.logging_steps=1",
    "training.save_steps=100",
    "data.eval_source=null",
    "data.eval_size=0",
]


@pytest.mark.parametrize(
    "variant,overrides",
    [
        ("qlora-4bit", ["model.quantization=4bit", "peft.type=lora"]),
        ("dora", ["peft.type=dora"]),
        ("full", ["peft.type=none", "training.learning_rate=1e-3"]),
    ],
)
def test_variant_trains_a_few_steps(variant, overrides, tmp_path, demo_model_dir):
    run_dir = tmp_path / variant
    assert train(RECIPES / "demo-sft.yaml", run_dir, *FEW_STEPS, *overrides) == 0
    summary = read_summary(run_dir)
    assert summary["status"] == "succeeded" and summary["global_step"] == 4
    losses = [r["loss"] for r in read_metrics(run_dir) if "loss" in r]
    assert len(losses) == 4 and all(loss == loss for loss in losses)
    files = sorted(p.name for p in (run_dir / "adapter").iterdir())
    if variant == "full":
        assert "model.safetensors" in files and summary["trainable_percent"] == 100.0
        tuned = load_file(run_dir / "adapter" / "model.safetensors")
        base = load_file(demo_model_dir / "model.safetensors")
        assert any(not torch.equal(tuned[k], base[k]) for k in base)
    else:
        assert "adapter_model.safetensors" in files and summary["trainable_percent"] < 100
        weights = load_file(run_dir / "adapter" / "adapter_model.safetensors")
        assert any(w.abs().sum() > 0 for k, w in weights.items() if "lora_B" in k)
        if variant == "dora":
            assert any("lora_magnitude_vector" in k for k in weights)


def test_rerunning_a_finished_runs_config_reproduces_its_losses(tmp_path, demo_model_dir):
    first = tmp_path / "first"
    assert train(RECIPES / "demo-sft.yaml", first, "training.max_steps=12", "training.logging_steps=3") == 0
    again = tmp_path / "again"
    assert train(first / "config.yaml", again) == 0
    losses = [[r["loss"] for r in read_metrics(d) if "loss" in r][:3] for d in (first, again)]
    assert len(losses[0]) == 3
    assert losses[0] == pytest.approx(losses[1], abs=1e-4)
    text = (first / "config.yaml").read_text()
    assert "max_steps: 12" in text and "output_dir" not in text
