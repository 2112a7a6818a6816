"""The Data tab's handlers: the loss-mask view shows exactly the tokens the method's trainer trains on, the
histogram and findings table say what the doctor found (with row links), a checked dataset is carried to
training, signed-out visitors are refused, and an unreachable Hub fails at once in the tab's own words."""

import json

import gradio as gr
import pytest
from helpers import ROOT

from core.errors import StudioError
from data import doctor, formats, tokens
from data.splits import load_for_run
from trainers import methods
from ui import data_tab
from ui.context import DEMO_DPO, DEMO_SFT, AppContext


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _trained(spans):
    return [text for text, label in spans if label == tokens.TRAINED]


def _expected(state, row: int, reply: str = "chosen"):
    """The trained spans of row `row` as the doctor hands it to training (load_for_run with the method's plan)."""
    method = methods.get(state["method"])
    tok = data_tab._tokenizer(state["model"])
    plan = data_tab.token_plan(method, tok, state["max_length"])
    train, _, form, _, _ = load_for_run(data_tab._section(state), method.task, tok, plan=plan)
    return _trained(tokens.token_spans(tok, train[row], form, plan, reply))


def _check(source, method="sft", mapping="", max_length=1024, **kw):
    return data_tab.inspect_data(str(source), None, "", "train", method, "demo-tiny", mapping, max_length, **kw)


@pytest.fixture
def ctx(tmp_path):
    return AppContext(home=tmp_path / "home", online=False)


def test_loss_mask_view_highlights_exactly_the_trained_tokens(demo_model_dir, tmp_path):
    sft = _check(DEMO_SFT)
    text, spans = data_tab.row_view(sft, 0)
    assert _trained(spans) == _expected(sft, 0) and _trained(spans) and "assistant replies only" in text
    assert [t for t, b in tokens.loss_spans(data_tab._tokenizer("demo-tiny"), *_row(sft, 0)) if b] == _trained(spans)

    dpo = _check(DEMO_DPO, "dpo")
    text, spans = data_tab.row_view(dpo, 1)
    cut = next(i for i, (t, _) in enumerate(spans) if "rejected:" in t)
    assert _trained(spans[:cut]) == _expected(dpo, 1, "chosen") and _trained(spans[cut:]) == _expected(
        dpo, 1, "rejected"
    )
    assert "chosen and the rejected reply" in text

    rows = [{"question": f"What is {i} plus {i}?", "answer": f"It is {2 * i}."} for i in range(12)]
    pc = _check(_jsonl(tmp_path / "qa.jsonl", rows), mapping="prompt=question, completion=answer")
    text, spans = data_tab.row_view(pc, 2)
    assert _trained(spans) == _expected(pc, 2) and "".join(_trained(spans)).startswith("It is 4.")
    assert "What is 2 plus 2?" in "".join(t for t, label in spans if label is None)  # the prompt: context only


def _row(state, index):
    method = methods.get(state["method"])
    tok = data_tab._tokenizer(state["model"])
    plan = data_tab.token_plan(method, tok, state["max_length"])
    from data import sources

    raw = sources.load(state["source"])
    row, _ = doctor.converted_row(raw, index, state["format"], method.task, data_tab._section(state))
    return row, doctor.standard_form(list(row)), plan


def test_cut_and_untrained_rows_are_shown_and_said(demo_model_dir, tmp_path):
    def row(i, reply):
        return {
            "prompt": [{"role": "user", "content": f"Say hi {i}."}],
            "completion": [{"role": "assistant", "content": reply}],
        }

    long_reply = " ".join(["the weather is fine today"] * 30)
    state = _check(
        _jsonl(tmp_path / "long.jsonl", [row(i, "Hi!") for i in range(6)] + [row(6, long_reply)]), max_length=24
    )
    text, spans = data_tab.row_view(state, 6)
    assert any(label == tokens.CUT for _, label in spans) and "in red are cut" in text
    assert _trained(spans) == _expected(state, 6)  # what survives truncation trains

    sft = _check(DEMO_SFT, max_length=4)  # no demo prompt fits in 4 tokens: nothing trains
    assert not sft["trainable"] and sft["carry"] is None and "Max length" in sft["error"]
    text, spans = data_tab.row_view(sft, 0)
    assert "trains on nothing: 0 of its" in text and not _trained(spans)


def test_histogram_counts_the_rows_past_max_length(demo_model_dir):
    tok = data_tab._tokenizer("demo-tiny")
    lengths = [
        len(tok.apply_chat_template(json.loads(line)["messages"], tokenize=True, return_dict=True)["input_ids"])
        for line in DEMO_SFT.read_text().splitlines()
    ]
    cut = sorted(lengths)[len(lengths) // 2]
    state = _check(DEMO_SFT, max_length=cut)
    hist = state["histogram"]
    assert hist["over"] == sum(n > cut for n in lengths) > 0 and sum(hist["counts"]) == len(lengths)
    frame = data_tab.histogram_frame(hist)
    assert frame[frame["where"] == "cut past max length"]["rows"].sum() == hist["over"]
    assert f"{hist['over']} longer than max length {cut}" in data_tab._histogram_title(hist)


def test_findings_table_links_to_the_rows(demo_model_dir, tmp_path):
    lines = DEMO_SFT.read_text().splitlines()[:30]
    lines[3] = json.dumps({"messages": [{"role": "user", "content": "no reply here"}]})  # invalid: no answer
    lines[5] = lines[1]  # an exact duplicate of row 1
    state = _check(_jsonl(tmp_path / "planted.jsonl", [json.loads(x) for x in lines]))
    table = {line[1]: line for line in state["findings"]}
    assert table["invalid rows"][2] == 1 and table["invalid rows"][3] == 3
    assert table["duplicates"][3] == 5
    headers = data_tab.FINDING_HEADERS
    position = list(table).index("duplicates")
    clicked = gr.SelectData(None, {"index": [position, headers.index("row 1")], "value": 5})
    assert data_tab._example_row(state, clicked) == 5
    clicked = gr.SelectData(None, {"index": [list(table).index("invalid rows"), 0], "value": "error"})
    assert data_tab._example_row(state, clicked) == 3
    text, spans = data_tab.row_view(state, 3)
    assert "Row 3 is invalid" in text and not spans


def test_check_then_carry_gives_the_saved_upload_and_mapping(demo_model_dir, tmp_path, ctx):
    rows = [{"question": f"Name a colour {i}.", "answer": f"Colour {i} is blue."} for i in range(10)]
    upload = _jsonl(tmp_path / "colours.jsonl", rows)
    state = data_tab.inspect_data(
        "", str(upload), "", "train", "sft", "demo-tiny", "prompt=question, completion=answer", 256, ctx=ctx
    )
    saved = ctx.home / "uploads" / "local" / "colours.jsonl"
    assert saved.is_file() and state["trainable"]
    assert data_tab.carry(state) == {
        "source": str(saved),
        "subset": None,
        "split": "train",
        "columns": {"prompt": "question", "completion": "answer"},
        "kind": formats.INSTRUCTION,
        "method": "sft",
    }
    bad = _check(ROOT / "tests/fixtures/bad/wrong_columns.jsonl")
    with pytest.raises(StudioError, match="trainable first"):
        data_tab.carry(bad)


def test_signed_out_visitors_cannot_check_or_carry(monkeypatch, ctx):
    monkeypatch.setenv("SPACE_ID", "org/studio")
    monkeypatch.setenv("OAUTH_CLIENT_ID", "x")
    with gr.Blocks() as demo:
        data_tab.build(ctx, True)
    fns = {f.fn.__name__: f.fn for f in demo.fns.values() if f.fn is not None}
    for name, args in (
        ("run_check", [str(DEMO_SFT), None, "", "train", "sft", "demo-tiny", "", 1024]),
        ("use_data", [{"carry": {"source": str(DEMO_SFT)}}]),
    ):
        with pytest.raises(gr.Error, match="Sign in with Hugging Face"):
            fns[name](*args, profile=None, oauth=None)


def test_mapping_advice_names_the_tabs_field(demo_model_dir):
    state = _check(ROOT / "tests/fixtures/bad/wrong_columns.jsonl")
    assert "Column mapping" in state["error"] and "prompt=my_question, completion=my_answer" in state["error"]
    assert "data.columns" not in state["error"] + state["report"]


def test_offline_hub_id_fails_at_once_without_a_network_call(monkeypatch, tmp_path):
    import datasets
    from huggingface_hub import constants

    def no_network(*args, **kwargs):
        raise AssertionError("the Hub was called although it is unreachable")

    monkeypatch.setattr(datasets, "load_dataset", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(StudioError, match="could not be reached from here and 'nobody/no-such-set'") as refused:
        _check("nobody/no-such-set")
    assert "upload it, or give its path" in str(refused.value)

    # no offline flag, but nothing answers at HF_ENDPOINT: the reachability probe says so
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]  # closed once the block ends: connections are refused
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{dead}")
    with pytest.raises(StudioError, match="could not be reached"):
        _check("nobody/no-such-set")
    # the page already knows it is offline (ctx.online False): no probe either
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(StudioError, match="could not be reached"):
        _check("nobody/no-such-set", ctx=AppContext(home=tmp_path / "home", online=False))
