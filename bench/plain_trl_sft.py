"""Plain TRL baseline: the same LoRA SFT as our engine, written as a user would, without the engine.

    python bench/plain_trl_sft.py --mode same|trl-defaults --data D.jsonl --model DIR --out R.json [--count]

same: our engine's defaults (packing bfd => padding-free, assistant-only loss). trl-defaults: TRL's
defaults for padding (packing=False, padding_free=False), everything else the same. `--count` wraps the
collator to count, per batch, processed positions (input_ids.numel()), real tokens (attention_mask sum,
or non-pad input_ids when there is no mask, as transformers' "non_padding" does) and loss tokens
(labels != -100). bench/run.py reads the constants below (with ast) to write the engine's config.
"""

import time

STARTED = time.perf_counter()
import argparse  # noqa: E402
import json  # noqa: E402

import torch  # noqa: E402
from datasets import load_dataset  # noqa: E402
from peft import LoraConfig  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from trl import SFTConfig, SFTTrainer  # noqa: E402

LORA = {"r": 64, "lora_alpha": 64, "lora_dropout": 0.0, "target_modules": "all-linear"}  # templates/recipes/demo-sft
TRAINING = {"learning_rate": 5.0e-3, "per_device_train_batch_size": 8, "max_length": 512, "max_steps": -1}
# What the engine adds on its own (trainers/config.py TRAINING_DEFAULTS, trainers/run.py, trainers/sft.py).
ENGINE_DEFAULTS = {
    "num_train_epochs": 1,
    "logging_steps": 10,
    "save_strategy": "steps",
    "save_steps": 100,
    "save_total_limit": 2,
    "report_to": "none",
    "seed": 42,
    "assistant_only_loss": True,
    "include_num_input_tokens_seen": "non_padding",
    "disable_tqdm": True,
    "per_device_eval_batch_size": 8,
}
MODES = {
    # The engine feeds packed rows one per forward pass without FlashAttention (trainers/run.py
    # one_packed_row_per_pass): batch 8 becomes batch 1 x accumulation 8, the same optimizer step.
    "same": {
        "packing": True,
        "packing_strategy": "bfd",
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 8,
        "per_device_eval_batch_size": 1,
    },
    "trl-defaults": {"packing": False, "padding_free": False},
}


def counting(collate, pad_id, totals):
    def wrapped(examples):
        batch = collate(examples)
        ids = batch["input_ids"]
        real = batch["attention_mask"].sum() if "attention_mask" in batch else (ids != pad_id).sum()
        totals["processed_tokens"] += ids.numel()
        totals["real_tokens"] += int(real)
        totals["loss_tokens"] += int((batch["labels"] != -100).sum())
        return batch

    return wrapped


def main():
    p = argparse.ArgumentParser()
    for flag in ("--data", "--model", "--out", "--output-dir"):
        p.add_argument(flag, required=True)
    p.add_argument("--mode", choices=MODES, default="same")
    p.add_argument("--max-steps", type=int, default=TRAINING["max_steps"])
    p.add_argument("--count", action="store_true")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="extra SFTConfig value")
    a = p.parse_args()
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()  # as trainers/models.py hardware()
    hw = (
        {"bf16": bf16}
        if torch.cuda.is_available()
        else {"use_cpu": True, "bf16": False, "gradient_checkpointing": False}
    )
    tokenizer = AutoTokenizer.from_pretrained(a.model)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16 if bf16 else torch.float32)
    args = {**ENGINE_DEFAULTS, **TRAINING, "max_steps": a.max_steps, **MODES[a.mode], **hw}
    args.update({k: json.loads(v) for k, v in (item.split("=", 1) for item in a.set)})
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(output_dir=f"{a.output_dir}/checkpoints", **args),
        train_dataset=load_dataset("json", data_files=a.data, split="train"),
        processing_class=tokenizer,
        peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA),
    )
    totals = {}
    if a.count:
        totals = {"processed_tokens": 0, "real_tokens": 0, "loss_tokens": 0, "epoch_rows": len(trainer.train_dataset)}
        totals["epoch_loss_tokens"] = sum(sum(x != -100 for x in row) for row in trainer.train_dataset["labels"])
        trainer.data_collator = counting(trainer.data_collator, tokenizer.pad_token_id, totals)
    metrics = trainer.train().metrics
    trainer.save_model(f"{a.output_dir}/adapter")
    result = {"mode": a.mode, "args": args, "steps": trainer.state.global_step}
    result.update(tokens_seen=trainer.state.num_input_tokens_seen, train_loss=metrics["train_loss"])
    result["train_runtime"] = metrics["train_runtime"]
    result.update(script_wall_s=time.perf_counter() - STARTED, **totals)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
