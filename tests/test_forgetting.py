"""The forgetting check (evaluation/forgetting.py): stock lm-evaluation-harness on the offline demo model with the
shipped local task templates/lm_eval/demo_general.yaml, base vs a LoRA arm, item by item; and its refusals."""

import sys
import time

import pytest

from evaluation.forgetting import NOT_INSTALLED, forgetting_check

TASK = "demo_general"
ITEMS = 40  # templates/lm_eval/demo_general.jsonl


def one_sentence(message: str) -> bool:
    return "\n" not in message and message.endswith(".") and ". " not in message.rstrip(".")


@pytest.fixture(scope="module")
def lora_adapter(tmp_path_factory, demo_model_dir):
    """A LoRA adapter on the demo model with random A and B (peft's init_lora_weights=False), so it changes the
    model without training: cheaper than a training run, and as real an adapter folder to lm-eval's `peft=`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    out = tmp_path_factory.mktemp("forgetting") / "adapter"
    get_peft_model(model, config).save_pretrained(out)
    return out


def test_base_and_a_lora_arm_are_scored_on_the_same_items(demo_model_dir, lora_adapter, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the task's relative data_files resolve against its YAML's folder, not here
    started = time.monotonic()
    result = forgetting_check(str(demo_model_dir), {"base": None, "lora": str(lora_adapter)})
    # Measured on 2 CPU cores: 3.2-6.8 s here (base + LoRA, 2 x 160 log-likelihoods; torch, transformers and peft
    # already imported by the fixture); 18-21 s for the same call as the first thing in a fresh process (lm-eval's,
    # transformers' and peft's imports, the local task index, two model loads).
    wall_s = time.monotonic() - started
    print(f"forgetting check, base + 1 LoRA arm on {TASK}: {wall_s:.1f} s")

    assert list(result["tasks"]) == [TASK]  # the demo model's default: the shipped local task
    task = result["tasks"][TASK]
    assert task["metric"] == "acc_norm" and task["local"] and task["num_fewshot"] == 0
    assert task["n"] == ITEMS and task["doc_ids"] == list(range(ITEMS))
    assert list(result["arms"]) == ["base", "lora"]
    assert result["arms"]["base"]["adapter"] is None and result["arms"]["lora"]["adapter"] == str(lora_adapter)
    for arm in result["arms"].values():
        scored = arm["tasks"][TASK]
        for metric in ("acc", "acc_norm"):
            items = scored["items"][metric]
            assert len(items) == ITEMS and set(items) <= {0, 1}
            assert scored[metric] == pytest.approx(sum(items) / ITEMS)  # lm-eval's mean is over these very items
        assert scored["correct"] == scored["items"]["acc_norm"] and scored["value"] == scored["acc_norm"]
    base, lora = (result["arms"][name]["tasks"][TASK]["items"] for name in ("base", "lora"))
    assert base != lora  # lm-eval loaded the adapter (peft=): another model, other answers on some items
    assert result["settings"]["lm_eval_version"] == "0.4.13" and result["wall_time_s"] > 0


def test_limit_scores_the_first_items(demo_model_dir):
    result = forgetting_check(str(demo_model_dir), {"base": None}, tasks=[TASK], limit=8)
    assert result["tasks"][TASK]["n"] == 8 and result["tasks"][TASK]["doc_ids"] == list(range(8))
    assert len(result["arms"]["base"]["tasks"][TASK]["correct"]) == 8


def test_unknown_task_and_an_unreachable_hub_task_are_one_sentence_each(demo_model_dir):
    # Both look the name up in lm-eval's full task index (~20 s to build on 2 cores, once per process).
    with pytest.raises(Exception) as unknown:
        forgetting_check(str(demo_model_dir), {"base": None}, tasks=["arc_eazy"])
    message = str(unknown.value)
    assert one_sentence(message) and "arc_eazy" in message and "did you mean arc_easy" in message, message
    assert type(unknown.value).__name__ == "ConfigError"

    with pytest.raises(Exception) as offline:  # tests run with HF_HUB_OFFLINE=1: ARC-Easy's data is on the Hub
        forgetting_check(str(demo_model_dir), {"base": None}, tasks=["arc_easy"])
    message = str(offline.value)
    assert one_sentence(message) and "arc_easy" in message and "demo_general" in message, message
    assert "run where the Hub is reachable" in message


def test_a_generation_task_from_include_path_is_refused_before_any_model_loads(tmp_path, monkeypatch):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "rows.jsonl").write_text('{"q": "Say hi.", "a": "hi"}\n', encoding="utf-8")
    (tasks / "say.yaml").write_text(
        "task: tiny_say\ndataset_path: json\ndataset_kwargs: {data_files: {test: rows.jsonl}}\ntest_split: test\n"
        "output_type: generate_until\ndoc_to_text: '{{q}}'\ndoc_to_target: '{{a}}'\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path.parent)
    with pytest.raises(Exception) as refused:  # no model: the base path does not even exist
        forgetting_check(str(tmp_path / "no-model"), {"base": None}, tasks=["tiny_say"], include_path=str(tasks))
    assert one_sentence(str(refused.value)) and "tiny_say is not multiple choice" in str(refused.value)


def test_without_lm_eval_it_is_one_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # `import lm_eval` raises ImportError
    with pytest.raises(Exception) as missing:
        forgetting_check("demo-tiny", {"base": None})
    assert str(missing.value) == NOT_INSTALLED and one_sentence(NOT_INSTALLED)
