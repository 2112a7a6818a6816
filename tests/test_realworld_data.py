"""Real public datasets in their published shapes (tests/fixtures/realworld, see its MANIFEST.json) train as the user
meant, or are refused in one sentence: tool calls, feedback labels, message trees, content parts, media — and the
doctor's counts are exactly what the trainer keeps."""

import json

import pytest
from helpers import RECIPES, ROOT, read_summary, train
from transformers import AutoTokenizer

from core.paths import TEMPLATES
from data import doctor, sources, tokens
from data.splits import load_for_run
from trainers import methods
from trainers.config import TRAINING_DEFAULTS, DataSection

REAL = ROOT / "tests" / "fixtures" / "realworld"
PLAIN_CHATML = (TEMPLATES / "chat" / "chatml_generation.jinja").read_text()  # no tools, no reasoning


@pytest.fixture(scope="module")
def tok(demo_model_dir):
    return AutoTokenizer.from_pretrained(demo_model_dir)


def examine(name, method="sft", tokenizer=None, plan=None, **data):
    section = DataSection(source=str(REAL / name), eval_size=0, **data)
    return doctor.examine(
        sources.load(section.source), methods.get(method).task, section, "training", tokenizer, plan=plan
    )


def codes(report):
    return {f.code: f for f in report.findings}


# 1. feedback -------------------------------------------------------------------------------------------------------
def test_feedback_messages_with_labels_are_feedback_not_sft_and_keep_chosen_trains_only_the_good_replies():
    _, report, _ = examine("kto_en.json")
    assert report.format == "unpaired_preference"
    message = report.errors[0].message
    assert (
        "unpaired feedback" in message
        and "bad replies" in message
        and "data.keep: desirable" in message
        and "'label'" in message
    )
    ds, report, _ = examine("kto_en.json", keep="desirable")
    labels = [row["label"] for row in json.loads((REAL / "kto_en.json").read_text())]
    assert not report.errors and report.rows_kept == sum(labels) == 9
    assert {"prompt", "completion"} <= set(ds.column_names) and "label" not in ds.column_names
    bad = codes(report)["invalid_rows"]
    assert [r["row"] for r in bad.rows] == [i for i, good in enumerate(labels) if not good]


# 2. tool calls -----------------------------------------------------------------------------------------------------
def test_openai_tool_calls_keep_their_calls_ids_and_null_content(tok):
    ds, report, _ = examine("openai_toolcalls.jsonl", tokenizer=tok, plan=tokens.Plan(max_length=2048))
    assert report.format == "messages" and not report.errors and report.rows_kept == report.rows == 14
    raw = [json.loads(line) for line in (REAL / "openai_toolcalls.jsonl").read_text().splitlines()]
    for row, converted in zip(raw, ds, strict=True):
        calls = [m for m in row["messages"] if m.get("tool_calls")]
        got = [m for m in converted["messages"] if m.get("tool_calls")]
        assert len(got) == len(calls) and all(
            isinstance(c["function"]["arguments"], dict) for m in got for c in m["tool_calls"]
        )
        assert [c["id"] for m in got for c in m["tool_calls"]] == [c["id"] for m in calls for c in m["tool_calls"]]
        tool_turns = [m for m in converted["messages"] if m["role"] == "tool"]
        assert all(m["tool_call_id"] for m in tool_turns)
        assert json.loads(converted["tools"])[0]["function"]["name"]
    mixed = next(i for i, r in enumerate(raw) if any(m.get("tool_calls") and m.get("content") for m in r["messages"]))
    turn = next(m for m in ds[mixed]["messages"] if m.get("tool_calls"))
    assert turn["content"].strip() and turn["tool_calls"]


def test_tool_call_rows_train_the_calls_and_replies_not_the_tool_outputs(tok):
    ds, _, _ = examine("openai_toolcalls.jsonl", tokenizer=tok, plan=tokens.Plan(max_length=2048))
    row = ds[0]
    out = tok.apply_chat_template(
        row["messages"],
        tools=json.loads(row["tools"]),
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    trained = tok.decode([t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m])
    untrained = tok.decode([t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if not m])
    call = row["messages"][next(i for i, m in enumerate(row["messages"]) if m.get("tool_calls"))]["tool_calls"][0]
    tool_output = next(m["content"] for m in row["messages"] if m["role"] == "tool")
    assert f'"name": "{call["function"]["name"]}"' in trained and "<tool_call>" in trained
    assert row["messages"][-1]["content"] in trained
    assert tool_output not in trained and tool_output in untrained and "<tools>" in untrained


def test_glaive_function_calls_become_structured_tool_calls_and_tools_count_in_duplicates(tok):
    ds, report, _ = examine("glaive_toolcall.json", tokenizer=tok, plan=tokens.Plan(max_length=2048))
    assert report.format == "sharegpt" and not report.errors
    calls = [m for row in ds for m in row["messages"] if m.get("tool_calls")]
    assert calls and all(c["tool_calls"][0]["function"]["name"] for c in calls)
    assert not any(m["content"].lstrip().startswith('{"name"') for row in ds for m in row["messages"])
    duplicates = codes(report).get("duplicates")
    assert duplicates is None or 10 not in [d["row"] for d in duplicates.rows]  # same chat, different tools


def test_a_template_without_tool_support_refuses_tool_rows_in_one_sentence(tok):
    plan = tokens.Plan(max_length=2048, chat_template=PLAIN_CHATML)
    _, report, _ = examine("openai_toolcalls.jsonl", tokenizer=tok, plan=plan)
    message = report.errors[0].message
    assert report.errors[0].code == "no_tool_template" and "cannot render them" in message and message.count(". ") == 0


# 3. multimodal -----------------------------------------------------------------------------------------------------
def test_rows_with_images_are_refused_and_text_rows_train(tmp_path):
    ds, report, _ = examine("mllm_demo.json")
    raw = json.loads((REAL / "mllm_demo.json").read_text())
    text_only = [i for i, r in enumerate(raw) if not r["images"]]
    assert report.rows_kept == len(text_only) == 2 and sorted(ds["__index"]) == text_only
    assert "this studio trains text models" in codes(report)["invalid_rows"].message
    only_media = tmp_path / "media.json"
    only_media.write_text(json.dumps([r for r in raw if r["images"]]))
    section = DataSection(source=str(only_media), eval_size=0)
    _, report, _ = doctor.examine(sources.load(str(only_media)), methods.get("sft").task, section)
    assert report.errors[0].code == "multimodal" and "trains text models" in report.errors[0].message


# 4. message trees --------------------------------------------------------------------------------------------------
def test_oasst_flat_rows_rebuild_one_conversation_per_tree_along_the_best_ranked_replies():
    ds, report, _ = examine("oasst1_flat.jsonl")
    rows = [json.loads(line) for line in (REAL / "oasst1_flat.jsonl").read_text().splitlines()]
    roots = [r for r in rows if r["parent_id"] is None]
    assert report.format == "message_tree" and "pre-training" not in report.evidence
    assert report.rows == len(rows) and report.rows_kept == len(roots) == 5
    first = next(r for r in ds if r["messages"][0]["content"] == roots[0]["text"])
    best = min(
        (r for r in rows if r["parent_id"] == roots[0]["message_id"] and not r["deleted"]),
        key=lambda r: (r["rank"] is None, r["rank"] or 0),
    )
    assert first["messages"][1] == {"role": "assistant", "content": best["text"]}
    assert all(m["role"] in ("user", "assistant") for r in ds for m in r["messages"])


# 5. preference data under SFT --------------------------------------------------------------------------------------
def test_sharegpt_preference_under_sft_is_named_and_keep_chosen_trains_the_chosen_replies():
    _, report, _ = examine("dpo_en.json")
    assert report.format == "sharegpt_preference"
    assert "preference data" in report.errors[0].message and "data.keep: chosen" in report.errors[0].message
    ds, report, _ = examine("dpo_en.json", keep="chosen")
    raw = json.loads((REAL / "dpo_en.json").read_text())
    assert report.rows_kept == len(raw) == 12
    assert [r["completion"][0]["content"] for r in ds] == [r["chosen"]["value"] for r in raw]


# 6. content parts --------------------------------------------------------------------------------------------------
def test_type_value_content_parts_train_and_reasoning_goes_to_the_thinking_field(tok, tmp_path):
    ds, report, _ = examine("content_parts.json", tokenizer=tok, plan=tokens.Plan(max_length=2048))
    raw = json.loads((REAL / "content_parts.json").read_text())
    with_reasoning = [
        i for i, r in enumerate(raw) for m in r["messages"] if any(p["type"] == "reasoning" for p in m["content"])
    ]
    assert not report.errors and report.rows_kept == report.rows - 1  # the image row is refused
    row = next(r for r in ds if r["__index"] == with_reasoning[0])
    thought = next(m["reasoning_content"] for m in row["messages"] if m.get("reasoning_content"))
    out = tok.apply_chat_template(row["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    trained = tok.decode([t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m])
    assert f"<think>\n{thought}" in trained and "reasoning_dropped" not in codes(report)
    # a template with no thinking field (and no tools: the file's tool row is left out) says what happens
    text_rows = [
        r
        for r in raw
        if not r.get("tools") and all(p["type"] != "image_url" for m in r["messages"] for p in m["content"])
    ]
    path = tmp_path / "parts.json"
    path.write_text(json.dumps(text_rows))
    section = DataSection(source=str(path), eval_size=0)
    plan = tokens.Plan(max_length=2048, chat_template=PLAIN_CHATML)
    _, plain, _ = doctor.examine(sources.load(str(path)), methods.get("sft").task, section, "training", tok, plan=plan)
    dropped = codes(plain)["reasoning_dropped"]
    assert len(set(dropped.rows)) == len({i for i in with_reasoning if not raw[i].get("tools")})
    assert "only the replies train" in dropped.message and not plain.errors


# 7. rows with no reply token ---------------------------------------------------------------------------------------
def test_rows_that_keep_no_reply_token_are_dropped_and_counted_and_none_left_is_one_sentence(tok, tmp_path):
    long_system = "You are a careful assistant who follows the house style guide. " * 40
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(8)
    ]
    rows += [
        {
            "messages": [
                {"role": "system", "content": long_system},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
            ]
        }
    ] * 3
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    section = DataSection(source=str(path), eval_size=0)
    _, report, _ = doctor.examine(sources.load(str(path)), methods.get("sft").task, section, "training", tok, 64)
    dropped = codes(report)["no_loss_tokens"]
    assert report.rows_kept == 8 and dropped.rows == [8, 9, 10] and dropped.level == "warning"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[8:]))
    _, report, _ = doctor.examine(sources.load(str(path)), methods.get("sft").task, section, "training", tok, 64)
    assert report.errors[0].code == "no_loss_tokens" and report.errors[0].message.startswith("No training rows keep")


def _dpo_kept_by_trl(tok, demo_model_dir, ds, max_length, out_dir):
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(output_dir=str(out_dir), max_length=max_length, use_cpu=True, bf16=False, report_to="none")
    model = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    trainer = DPOTrainer(model=model, args=args, train_dataset=doctor.strip_internal(ds), processing_class=tok)
    return len(trainer.train_dataset)


# 8. DPO: exactly what TRL keeps ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dpo_en.json", "dpo_zh.json"])
def test_the_doctor_predicts_exactly_the_pairs_trl_keeps_and_shortening_keeps_them_all(
    tok, demo_model_dir, name, tmp_path
):
    training = {**TRAINING_DEFAULTS["common"], **TRAINING_DEFAULTS["dpo"], "max_length": 256}
    plan = methods.get("dpo").build_module().token_plan(tok, training, "start")
    unshortened = tokens.Plan(max_length=256, shorten_prompts=False)
    ds, report, _ = examine(name, "dpo", tok, unshortened)
    raw, _, _ = examine(name, "dpo")
    assert report.rows_kept < len(raw), "the fixture's long prompts fill max_length"
    assert _dpo_kept_by_trl(tok, demo_model_dir, raw, 256, tmp_path) == report.rows_kept  # TRL's own filter agrees
    ds, report, _ = examine(name, "dpo", tok, plan)
    assert report.rows_kept == report.rows and "shortened_prompts" in codes(report)
    assert _dpo_kept_by_trl(tok, demo_model_dir, ds, 256, tmp_path) == report.rows_kept
    shortened = codes(report)["shortened_prompts"].rows
    for i in shortened:  # cut from its start: what is kept is the end of the prompt (what the reply answers)
        kept, whole = ds[i]["prompt"][-1]["content"], raw[i]["prompt"][-1]["content"]
        assert kept == whole or (kept.startswith("…") and len(kept) > 10 and whole.endswith(kept[1:])), (kept, whole)


def test_a_dpo_run_reports_the_rows_it_trained_and_a_held_out_loss(tmp_path):
    run_dir = tmp_path / "run"
    rc = train(
        RECIPES / "demo-dpo.yaml",
        run_dir,
        f"data.source={REAL / 'dpo_zh.json'}",
        "data.eval_source=null",
        "data.eval_size=3",
        "training.max_steps=2",
        "training.max_length=256",
        "training.eval_strategy=steps",
        "training.eval_steps=2",
    )
    assert rc == 0, (run_dir / "train.log").read_text()[-2000:]
    summary = read_summary(run_dir)
    report = json.loads((run_dir / "data_report.json").read_text())["reports"][0]
    assert summary["data"]["train_rows"] + summary["data"]["eval_rows"] == report["rows_kept"] == 12
    assert summary["data"]["eval_rows"] == 3
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_loss" in row for row in evals)


# 9. held-out shape compared after conversion -----------------------------------------------------------------------
def test_held_out_data_in_another_format_of_the_same_shape_is_accepted(tok):
    alpaca = DataSection(source=str(ROOT / "data/demo/sft_train.jsonl"), eval_source=str(REAL / "alpaca_en.json"))
    *_, info, reports = load_for_run(alpaca, methods.get("sft").task, tok, 256)
    assert [r.format for r in reports] == ["messages", "alpaca"] and info["eval_rows"] == 20
    pref = DataSection(source=str(ROOT / "data/demo/dpo_train.jsonl"), eval_source=str(REAL / "dpo_en.json"))
    *_, info, reports = load_for_run(pref, methods.get("dpo").task, tok, 256)
    assert reports[1].format == "sharegpt_preference" and info["eval_rows"] == 12
    text = DataSection(source=str(ROOT / "data/demo/sft_train.jsonl"), eval_source=str(REAL / "c4_demo.jsonl"))
    with pytest.raises(Exception, match="same shape"):
        load_for_run(text, methods.get("sft").task, tok, 256)


# lesser ------------------------------------------------------------------------------------------------------------
def test_placeholders_empty_system_turns_and_well_known_shapes():
    _, identity, _ = examine("identity.json")
    assert codes(identity)["placeholders"].rows and "{{name}}" in codes(identity)["placeholders"].message
    ds, _, _ = examine("slimorca.jsonl")
    assert all(m["content"].strip() for r in ds for m in r["messages"] if m["role"] == "system")
    raw = [json.loads(line) for line in (REAL / "slimorca.jsonl").read_text().splitlines()]
    assert sum(r["messages"][0]["role"] == "system" for r in ds) == sum(
        bool(r["conversations"][0]["value"]) for r in raw
    )
    ds, capybara, _ = examine("capybara.jsonl")
    assert capybara.format == "io_turns" and capybara.rows_kept == capybara.rows
    ds, pku, _ = examine("pku_saferlhf.jsonl", "dpo")
    raw = [json.loads(line) for line in (REAL / "pku_saferlhf.jsonl").read_text().splitlines()]
    assert pku.format == "ranked_responses"
    assert [r["chosen"][0]["content"] for r in ds] == [r[f"response_{r['better_response_id']}"] for r in raw]
    ds, hh, _ = examine("hh_rlhf.jsonl", keep="chosen")
    assert hh.format == "implicit_preference" and hh.rows_kept and "completion" in ds.column_names


def test_every_published_shape_gets_a_verdict_and_the_doctor_cli_lists_methods_and_rows(capsys):
    from trainers.doctor_cli import main

    manifest = json.loads((REAL / "MANIFEST.json").read_text())
    entries = manifest if isinstance(manifest, list) else manifest["files"]
    files = [str(REAL / e["file"]) for e in entries]
    rc = main(["doctor", *files, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert len(out["files"]) == len(files) and rc == (0 if all(e["trainable"] for e in out["files"]) else 1)
    for entry in out["files"]:
        assert entry["methods"], entry["source"]
        trainable = [m for m in entry["methods"].values() if m["trainable"]]
        refused = [m for m in entry["methods"].values() if not m["trainable"]]
        assert all(m["rows_kept"] is not None for m in trainable)
        assert all(m["error"] and "Traceback" not in m["error"] for m in refused)
    by_name = {e["source"].rsplit("/", 1)[-1]: e for e in out["files"]}
    assert not by_name["kto_en.json"]["methods"]["SFT"]["trainable"]
    assert by_name["kto_en.json"]["methods"]["SFT with data.keep: desirable"]["rows_kept"] == 9
    assert by_name["dpo_en.json"]["method"] == "dpo"


def test_the_doctor_shows_a_tool_call_row_with_its_label_mask(capsys, demo_model_dir):
    from trainers.doctor_cli import main

    rc = main(
        ["doctor", str(REAL / "openai_toolcalls.jsonl"), "--model", "demo-tiny", "--max-length", "1024", "--show", "1"]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "SFT trains 14 of 14 rows" in out
    shown = out.split("--- row 0:", 1)[1].split("== training data", 1)[0]
    trained = "".join(part.split("⟧")[0] for part in shown.split("⟦")[1:])
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lisbon"}}' in trained
    assert "<tool_response>" in shown and "<tool_response>" not in trained and "<tools>" not in trained


def test_a_file_no_method_can_read_is_one_sentence_not_one_per_method(capsys):
    from trainers.doctor_cli import main

    assert main(["doctor", str(REAL / "alpaca_en.json"), "--map", "prompt=question"]) == 1
    out = capsys.readouterr().out
    assert out.count("data.columns names 'question'") == 2  # the methods line and the report's error, not 8 times
    assert "methods: none — data.columns names 'question', which the dataset does not have" in out
