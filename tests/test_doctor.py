"""The data doctor finds planted defects at the right row indices; its CLI exit code says trainable or not."""

import json

import pytest
from helpers import ROOT
from transformers import AutoTokenizer

from data import doctor, sources
from data.splits import load_for_run
from trainers import methods
from trainers.config import DataSection
from trainers.doctor_cli import main as data_main

DOCTOR = ROOT / "tests" / "fixtures" / "doctor"
PLANTED = json.loads((DOCTOR / "planted.json").read_text())


def _rows(finding, key="row"):
    return sorted(r[key] for r in finding.rows)


def _finding(report, code):
    found = [f for f in report.findings if f.code == code]
    assert found, f"no {code} finding in {[f.code for f in report.findings]}"
    return found[0]


@pytest.fixture(scope="module")
def planted(demo_model_dir):
    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    section = DataSection(source=str(DOCTOR / "doctor_planted.jsonl"), eval_source=str(DOCTOR / "doctor_eval.jsonl"))
    *_, reports = load_for_run(section, methods.get("sft").task, tok, max_length=512)
    return reports


def test_doctor_finds_invalid_rows_with_reasons(planted):
    train = planted[0]
    assert train.format == "messages" and train.rows == 40
    invalid = {r["row"]: r["reason"] for r in _finding(train, "invalid_rows").rows}
    expected = PLANTED["doctor_planted.jsonl"]["indices_by_type"]
    for kind in ("empty_assistant", "no_assistant_turn", "wrong_role_order", "non_string_content"):
        assert set(expected[kind]) <= set(invalid), kind
    assert set(invalid) == {
        i
        for k in ("empty_assistant", "no_assistant_turn", "wrong_role_order", "non_string_content")
        for i in expected[k]
    }
    assert "empty assistant reply" in invalid[5] and "no assistant reply" in invalid[11]
    assert "starts with a assistant turn" in invalid[14] or "instead of a user turn" in invalid[14]
    assert "two user turns" in invalid[18]
    assert "int content" in invalid[16] and "null" in invalid[23]
    assert train.rows_kept == 40 - len(invalid)


def test_doctor_finds_duplicates_near_duplicates_and_overlong_rows(planted):
    train = planted[0]
    exact = [(r["row"], r["same_as"]) for r in _finding(train, "duplicates").rows]
    assert exact == [(9, 2), (22, 7)]
    near = [(r["row"], r["same_as"]) for r in _finding(train, "near_duplicates").rows]
    assert near == [(13, 4), (25, 12)]
    overlong = _finding(train, "overlong")
    # 20 is the planted one; 34 (a clean 6-turn chat of 895 characters) is 517 demo-tokenizer tokens, also over 512
    assert overlong.rows == [20, 34] and "max_length 512" in overlong.message
    assert train.tokens["max"] > 512 and train.tokens["p50"] < 512


def test_doctor_finds_train_eval_leakage(planted):
    leak = _finding(planted[1], "leakage")
    pairs = [(r["train_row"], r["eval_row"]) for r in leak.rows]
    assert pairs == [(1, 1), (19, 4), (30, 8)]


def test_doctor_finds_bad_preference_pairs():
    section = DataSection(source=str(DOCTOR / "doctor_pref_planted.jsonl"), eval_size=0)
    _, report, _ = doctor.examine(sources.load(section.source), methods.get("dpo").task, section)
    invalid = {r["row"]: r["reason"] for r in _finding(report, "invalid_rows").rows}
    assert {i: invalid[i] for i in (6, 13)} == {
        6: "has chosen identical to rejected",
        13: "has chosen identical to rejected",
    }
    assert invalid[17] == "has an empty chosen reply" and len(invalid) == 3


def test_dedupe_and_strict_mode(demo_model_dir):
    source = str(DOCTOR / "doctor_planted.jsonl")
    _, report, _ = doctor.examine(
        sources.load(source), methods.get("sft").task, DataSection(source=source, dedupe=True)
    )
    assert report.rows_kept == 40 - 7 - 4  # invalid rows and both kinds of duplicates removed
    _, strict, _ = doctor.examine(
        sources.load(source), methods.get("sft").task, DataSection(source=source, drop_invalid=False)
    )
    assert strict.errors and "data.drop_invalid: true" in strict.errors[0].message


def test_cli_exit_codes_and_json(capsys, demo_model_dir):
    rc = data_main(
        [
            "doctor",
            str(DOCTOR / "doctor_planted.jsonl"),
            "--model",
            "demo-tiny",
            "--json",
            "--eval-source",
            str(DOCTOR / "doctor_eval.jsonl"),
            "--max-length",
            "512",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["trainable"] is True
    codes = {f["code"] for r in report["reports"] for f in r["findings"]}
    assert {"invalid_rows", "duplicates", "near_duplicates", "overlong", "leakage"} <= codes
    rc = data_main(["doctor", str(ROOT / "data/demo/sft_train.jsonl"), "--method", "dpo"])
    out = capsys.readouterr().out
    assert rc == 1 and "DPO needs preference pairs" in out and "NOT trainable" in out
    rc = data_main(["doctor", str(ROOT / "tests/fixtures/bad/broken_line.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "line 5" in err[0]


def test_python_dash_m_data_doctor_still_works():
    """`python -m data doctor` hands the process to `python -m trainers doctor` (data/ imports nothing above it)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "data", "doctor", str(ROOT / "data/demo/sft_train.jsonl")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "verdict: trainable" in done.stdout
