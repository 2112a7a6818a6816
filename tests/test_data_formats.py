"""Every fixture format (imitating a public dataset) is detected, converted and trained a few steps."""

import json

import pytest
from helpers import RECIPES, ROOT, read_summary, train

from data import doctor, sources
from trainers import methods
from trainers.config import DataSection

FORMATS = ROOT / "tests" / "fixtures" / "formats"
CASES = {  # file -> (expected format, method)
    "messages_ultrachat.jsonl": ("messages", "sft"),
    "messages_system.jsonl": ("messages", "sft"),
    "sharegpt_vicuna.json": ("sharegpt", "sft"),
    "sharegpt_toolcall.jsonl": ("sharegpt", "sft"),
    "alpaca_tatsu.jsonl": ("alpaca", "sft"),
    "alpaca_history.jsonl": ("alpaca", "sft"),
    "prompt_completion_tldr.jsonl": ("prompt_completion", "sft"),
    "prompt_completion_conversational.jsonl": ("prompt_completion", "sft"),
    "text_tinystories.parquet": ("text", "sft"),
    "pair_gsm8k.csv": ("pair", "sft"),
    "pair_dolly.jsonl": ("pair", "sft"),
    "preference_orca.jsonl": ("preference", "dpo"),
    "preference_ultrafeedback_h4.jsonl": ("preference", "dpo"),
    "preference_explicit_messages.jsonl": ("preference", "dpo"),
    "implicit_hh_rlhf.jsonl": ("implicit_preference", "dpo"),
    "implicit_ultrafeedback_trl.jsonl": ("implicit_preference", "dpo"),
    "sharegpt_preference_llamafactory.jsonl": ("sharegpt_preference", "dpo"),
}


def examine(name, method, **options):
    section = DataSection(source=str(FORMATS / name), eval_size=0, **options)
    ds, report, _ = doctor.examine(sources.load(section.source), methods.get(method).task, section)
    return ds, report


@pytest.mark.parametrize("name", CASES)
def test_fixture_is_detected_converted_and_trains(name, tmp_path, demo_model_dir):
    expected, method = CASES[name]
    ds, report = examine(name, method)
    assert report.format == expected, report.evidence
    assert report.evidence and not report.errors
    assert report.rows_kept == report.rows, [f.message for f in report.findings]
    form = doctor.standard_form(ds.column_names)
    assert form == (
        "preference"
        if method == "dpo"
        else {"text": "text", "prompt_completion": "prompt_completion"}.get(expected, "messages")
    )
    recipe = RECIPES / ("demo-dpo.yaml" if method == "dpo" else "demo-sft.yaml")
    run_dir = tmp_path / "run"
    rc = train(
        recipe,
        run_dir,
        f"data.source={FORMATS / name}",
        "data.eval_source=null",
        "data.eval_size=2",
        "training.max_steps=2",
        "training.logging_steps=1",
        # a tools schema alone is ~300 tokens of the demo tokenizer (trained on chat text, not JSON)
        f"training.max_length={1024 if 'toolcall' in name else 256}",
    )
    assert rc == 0, (run_dir / "train.log").read_text()[-2000:]
    summary = read_summary(run_dir)
    assert summary["status"] == "succeeded" and summary["data"]["format"] == expected
    report_file = json.loads((run_dir / "data_report.json").read_text())
    assert report_file["reports"][0]["format"] == expected


def test_unpaired_feedback_is_named_and_refused_for_both_methods():
    for method in ("sft", "dpo"):
        _, report = examine("kto_mix.jsonl", method)
        assert report.format == "unpaired_preference"
        assert "unpaired feedback" in report.errors[0].message and "KTO" in report.errors[0].message


def _rows(name, method, **options):
    ds, report = examine(name, method, **options)
    return [{k: v for k, v in row.items() if not k.startswith("__")} for row in ds]


def test_conversions_keep_the_conversation_structure():
    alpaca = _rows("alpaca_history.jsonl", "sft")
    with_history = next(r for r in alpaca if len(r["messages"]) > 3)
    assert [m["role"] for m in with_history["messages"]][-4:] == ["user", "assistant", "user", "assistant"]
    hh = _rows("implicit_hh_rlhf.jsonl", "dpo")
    for row in hh:
        assert row["prompt"][-1]["role"] == "user"
        assert [m["role"] for m in row["chosen"]] == ["assistant"] and row["chosen"] != row["rejected"]
    assert any(len(r["prompt"]) > 1 for r in hh)  # multi-turn dialogues keep their history in the prompt
    h4 = _rows("preference_ultrafeedback_h4.jsonl", "dpo")
    assert all(r["prompt"][-1]["role"] == "user" and len(r["chosen"]) == 1 for r in h4)
    orca = _rows("preference_orca.jsonl", "dpo")
    assert any(r["prompt"][0]["role"] == "system" for r in orca)
    tools = _rows("sharegpt_toolcall.jsonl", "sft")
    roles = {m["role"] for r in tools for m in r["messages"]}
    assert roles <= {"system", "user", "assistant", "tool"} and "tool" in roles
    assert all(isinstance(r["tools"], str) for r in tools)
    vicuna = _rows("sharegpt_vicuna.json", "sft")
    assert all(r["messages"][-1]["role"] == "assistant" for r in vicuna)  # dangling last question dropped


def test_same_file_is_sft_data_for_sft_and_pairs_for_dpo():
    assert examine("preference_ultrafeedback_h4.jsonl", "sft")[1].format == "messages"
    assert examine("preference_ultrafeedback_h4.jsonl", "dpo")[1].format == "preference"


def test_user_mapped_columns_and_a_system_prompt_train(tmp_path, demo_model_dir):
    run_dir = tmp_path / "mapped"
    rc = train(
        RECIPES / "demo-sft.yaml",
        run_dir,
        f"data.source={ROOT / 'tests/fixtures/bad/wrong_columns.jsonl'}",
        "data.columns={prompt: foo, completion: bar}",
        "data.system_prompt=Answer briefly.",
        "data.eval_source=null",
        "data.eval_size=0",
        "training.max_steps=2",
    )
    assert rc == 0, (run_dir / "train.log").read_text()[-1500:]
    config = (run_dir / "config.yaml").read_text()
    assert "prompt: foo" in config and "system_prompt: Answer briefly." in config
    rows = _rows(
        str(ROOT / "tests/fixtures/bad/wrong_columns.jsonl"),
        "sft",
        columns={"prompt": "foo", "completion": "bar"},
        system_prompt="Answer briefly.",
    )
    assert rows[0]["prompt"][0] == {"role": "system", "content": "Answer briefly."}
