"""The shipped demo task is clean and learnable: after the demo SFT the model gives the taught answers to held-out
questions (and to the Playground's default question), and a demo model built from older demo data is rebuilt."""

import json
import shutil

from helpers import ROOT

from data.demo.build import DEFAULT_QUESTION, SIGN_OFF
from evaluation.generate import load, reply
from evaluation.judges.verifiable import check
from trainers import demo_model

DEMO = ROOT / "data" / "demo"


def _rows(name):
    return [json.loads(line) for line in (DEMO / name).read_text(encoding="utf-8").splitlines()]


def _questions(row):
    turns = row.get("messages") or row.get("prompt") or []
    return {m["content"] for m in turns if m["role"] == "user"}


def test_demo_files_have_no_repeated_rows_and_no_held_out_question_in_training():
    for path in sorted(DEMO.glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(set(lines)) == len(lines), path.name
    for kind in ("sft", "dpo", "kto"):
        held = set().union(*map(_questions, _rows(f"{kind}_eval.jsonl")))
        for train in ("sft_train.jsonl", "dpo_train.jsonl", "kto_train.jsonl"):
            assert not held & set().union(*map(_questions, _rows(train))), (kind, train)
    assert any(DEFAULT_QUESTION in _questions(row) for row in _rows("sft_eval.jsonl"))


def _taught_rate(model, tok, rows):
    hits = 0
    for row in rows:
        prompt, answer = row["messages"][:-1], row["messages"][-1]["content"]
        said = reply(model, tok, prompt)
        hits += bool(check(said, answer) or check(said, answer + SIGN_OFF))
    return hits / len(rows)


def test_demo_sft_gives_the_taught_answers_to_held_out_questions(sft_then_dpo, demo_model_dir):
    sft_dir, _ = sft_then_dpo
    rows = _rows("sft_eval.jsonl")
    base, tok = load(str(demo_model_dir))
    tuned, _ = load(str(demo_model_dir), str(sft_dir / "adapter"))
    assert _taught_rate(base, tok, rows) == 0.0
    assert _taught_rate(tuned, tok, rows) >= 0.3  # measured 19 of 40 (0.475); the base gets 0
    answer = next(r["messages"][-1]["content"] for r in rows if _questions(r) == {DEFAULT_QUESTION})
    said = reply(tuned, tok, [{"role": "user", "content": DEFAULT_QUESTION}])
    assert check(said, answer), said  # and it stops there: no repeated sentence


def test_a_demo_model_built_from_other_data_is_rebuilt(demo_model_dir, tmp_path):
    old = tmp_path / "demo-tiny"
    shutil.copytree(demo_model_dir, old)
    (old / demo_model.FINGERPRINT).unlink()  # built before fingerprints existed
    (old / "tokenizer.json").write_text("{}", encoding="utf-8")  # ... from another corpus
    assert demo_model.built_fingerprint(old) is None
    demo_model.ensure(old)
    assert demo_model.built_fingerprint(old) == demo_model.fingerprint()
    assert (old / "tokenizer.json").read_bytes() == (demo_model_dir / "tokenizer.json").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-tiny"]  # no temporary folder left
    before = (old / "model.safetensors").stat().st_mtime_ns
    demo_model.ensure(old)  # up to date: not rebuilt
    assert (old / "model.safetensors").stat().st_mtime_ns == before
