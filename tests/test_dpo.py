"""DPO: reward metrics logged, adapter moves, SFT->DPO starts from exactly the SFT adapter."""

import json

import torch
from helpers import ROOT, read_metrics, read_summary
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from evaluation.generate import load, reply
from trainers import models

SIGN_OFF = "Happy to help!"


def test_dpo_logs_rewards_and_moves_the_adapter(sft_then_dpo):
    sft_dir, dpo_dir = sft_then_dpo
    summary = read_summary(dpo_dir)
    assert summary["status"] == "succeeded" and summary["method"] == "dpo"
    rows = read_metrics(dpo_dir)
    train_rows = [r for r in rows if "loss" in r]
    for key in ("rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected"):
        assert all(key in r for r in train_rows), key
    assert train_rows[-1]["rewards/margins"] > train_rows[0]["rewards/margins"]
    assert summary["final_metrics"]["eval_rewards/accuracies"] >= 0.9
    before = load_file(sft_dir / "adapter" / "adapter_model.safetensors")
    after = load_file(dpo_dir / "adapter" / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_sft_then_dpo_starts_from_exactly_the_sft_adapter(sft_then_dpo, demo_model_dir):
    sft_dir, dpo_dir = sft_then_dpo
    assert read_summary(dpo_dir)["init_from"] == str(sft_dir / "adapter")
    # The policy before step 1 equals the reference (a frozen copy of the start): held-out rewards are all 0.
    step0 = read_metrics(dpo_dir)[0]
    assert step0["step"] == 0 and step0["eval_rewards/margins"] == 0.0 and step0["eval_rewards/chosen"] == 0.0
    # And that start is the SFT adapter, bit for bit.
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    model, source = models.apply_init_from(base, str(sft_dir), full_finetune=False)
    saved = load_file(sft_dir / "adapter" / "adapter_model.safetensors")
    loaded = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert len(loaded) == len(saved)
    for name, tensor in saved.items():
        key = name.replace(".weight", ".default.weight")
        assert torch.equal(loaded[key], tensor), name


def test_dpo_shifts_held_out_replies_toward_the_preferred_style(sft_then_dpo, demo_model_dir):
    sft_dir, dpo_dir = sft_then_dpo
    rows = [json.loads(line) for line in (ROOT / "data/demo/dpo_eval.jsonl").read_text().splitlines()]
    prompts = [r["prompt"] for r in rows]

    def sign_off_rate(run_dir):
        model, tok = load(str(demo_model_dir), str(run_dir / "adapter"))
        return sum(SIGN_OFF in reply(model, tok, p) for p in prompts) / len(prompts)

    sft_rate, dpo_rate = sign_off_rate(sft_dir), sign_off_rate(dpo_dir)
    assert dpo_rate >= sft_rate + 0.5, (sft_rate, dpo_rate)
