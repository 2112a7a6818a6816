"""SFT on the demo data: held-out loss falls, the adapter moves, labels cover only assistant tokens."""

import json
import re

import torch
from datasets import load_dataset
from helpers import ROOT, read_metrics, read_summary
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from evaluation.generate import first_prompt, load, reply
from trainers import sft

FORMATS = [
    r"^Hello, \S+!",
    r"^You said: \S+\.",
    r"^The opposite of \S+ is \S+\.",
    r"^The [a-z ]+ is [a-z]+\.",
]


def test_sft_lowers_held_out_loss_and_trains_the_adapter(sft_then_dpo):
    sft_dir, _ = sft_then_dpo
    summary = read_summary(sft_dir)
    assert summary["status"] == "succeeded" and summary["loss_mask"] == "assistant_only"
    final = summary["final_metrics"]
    assert final["eval_loss"] < final["eval_loss_before"] - 3.0
    assert final["train_runtime"] > 0 and final["last_logged_step"] == summary["global_step"]
    assert 0 < summary["trainable_params"] < summary["total_params"]
    assert summary["tokens_seen"] > 0 and summary["peak_rss_mb"] > 0
    rows = read_metrics(sft_dir)
    train_rows = [r for r in rows if "loss" in r]
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]
    assert all(r["tokens_per_second"] > 0 for r in train_rows)
    weights = load_file(sft_dir / "adapter" / "adapter_model.safetensors")
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and all(w.abs().sum() > 0 for w in lora_b)  # LoRA B starts at zero


def test_sft_model_answers_held_out_prompts_in_the_taught_format(sft_then_dpo, demo_model_dir):
    sft_dir, _ = sft_then_dpo
    rows = [json.loads(line) for line in (ROOT / "data/demo/sft_eval.jsonl").read_text().splitlines()]
    prompts = [first_prompt(r["messages"]) for r in rows]
    base, tok = load(str(demo_model_dir))
    tuned, _ = load(str(demo_model_dir), str(sft_dir / "adapter"))

    def rate(model):
        return sum(any(re.match(f, reply(model, tok, p)) for f in FORMATS) for p in prompts) / len(prompts)

    assert rate(base) < 0.1
    assert rate(tuned) >= 0.6


def _first_batch(tokenizer, dataset, demo_model_dir, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    training = {
        "output_dir": str(tmp_path),
        "use_cpu": True,
        "bf16": False,
        "report_to": "none",
        "per_device_train_batch_size": 4,
        "max_length": 128,
        "packing": True,
    }
    trainer, plan = sft.build(model, tokenizer, training, dataset, None, "messages", None, [])
    return next(iter(trainer.get_train_dataloader())), plan


def _label_spans(tokenizer, batch):
    ids, labels = batch["input_ids"].flatten(), batch["labels"].flatten()
    spans, current = [], []
    for token, label in zip(ids.tolist(), labels.tolist(), strict=True):
        if label == -100:
            if current:
                spans.append(current)
            current = []
        else:
            assert label == token
            current.append(token)
    if current:
        spans.append(current)
    return [tokenizer.decode(s) for s in spans]


def test_collated_labels_are_exactly_the_assistant_replies(demo_model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    data = load_dataset("json", data_files=str(ROOT / "data/demo/sft_train.jsonl"), split="train").select(range(8))
    batch, plan = _first_batch(tok, data, demo_model_dir, tmp_path)
    assert plan["loss_mask"] == "assistant_only"
    replies = {m["content"] + "<|im_end|>" for row in data for m in row["messages"] if m["role"] == "assistant"}
    spans = _label_spans(tok, batch)
    assert spans and set(spans) <= replies
    everything = tok.decode(batch["input_ids"].flatten())
    assert "<|im_start|>user" in everything  # prompts are in the inputs ...
    assert not any("<|im_start|>" in s or "?" in s for s in spans)  # ... but never in the labels


def test_template_without_markers_falls_back_to_completion_only_loss(demo_model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    tok.chat_template = re.sub(r"\{%-? ?(end)?generation ?%\}", "", tok.chat_template)
    data = load_dataset("json", data_files=str(ROOT / "data/demo/sft_train.jsonl"), split="train").select(range(8))
    batch, plan = _first_batch(tok, data, demo_model_dir, tmp_path)
    assert plan["loss_mask"] == "completion_only"
    last_replies = {
        [m for m in row["messages"] if m["role"] == "assistant"][-1]["content"] + "<|im_end|>" for row in data
    }
    spans = [s.rstrip("\n") for s in _label_spans(tok, batch)]
    assert spans and all(any(s.startswith(r) for r in last_replies) for s in spans), spans
    assert torch.is_tensor(batch["labels"])
