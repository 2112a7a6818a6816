"""Bad data inputs end in one clear sentence, never a traceback, and leave no artifacts behind."""

import json

import pytest
from helpers import RECIPES, ROOT, train

from trainers import methods

BAD = ROOT / "tests" / "fixtures" / "bad"
FAST = ["data.eval_source=null", "data.eval_size=0", "training.max_steps=1"]

CASES = {  # case -> (overrides, words the one line must contain)
    "empty file": ([f"data.source={BAD / 'empty.jsonl'}"], "is empty"),
    "whitespace only": ([f"data.source={BAD / 'whitespace_only.jsonl'}"], "is empty"),
    "invalid JSON": ([f"data.source={BAD / 'invalid_json.json'}"], "not valid JSON"),
    "one broken JSONL line": ([f"data.source={BAD / 'broken_line.jsonl'}"], "line 5 is not valid JSON"),
    "lines that are not objects": ([f"data.source={BAD / 'scalar_lines.jsonl'}"], "not an object"),
    "non-UTF-8 bytes": ([f"data.source={BAD / 'non_utf8.jsonl'}"], "not UTF-8"),
    "UTF-16 file": ([f"data.source={BAD / 'utf16.jsonl'}"], "looks like UTF-16"),
    "empty parquet": ([f"data.source={BAD / 'empty_parquet.parquet'}"], "has no rows"),
    "corrupt parquet": ([f"data.source={BAD / 'corrupt.parquet'}"], "not a readable Parquet"),
    "unsupported extension": ([f"data.source={BAD / 'unsupported.xlsx'}"], "Unsupported file type"),
    "folder without data": ([f"data.source={BAD / 'directory_without_data'}"], "holds no data files"),
    "CSV header only": ([f"data.source={BAD / 'header_only.csv'}"], "has no rows"),
    "ragged CSV": ([f"data.source={BAD / 'ragged.csv'}"], "Expected 2 fields in line 4"),
    "empty JSON array": ([f"data.source={BAD / 'empty_array.json'}"], "has no rows"),
    "unknown columns": ([f"data.source={BAD / 'wrong_columns.jsonl'}"], "match no known format"),
    "CSV without header": ([f"data.source={BAD / 'no_header.csv'}"], "match no known format"),
    "zero rows after filtering": ([f"data.source={BAD / 'all_invalid.jsonl'}"], "No training rows are left"),
    "unknown roles everywhere": ([f"data.source={BAD / 'roles_unknown.jsonl'}"], "No training rows are left"),
    "mixed types, strict": (
        [f"data.source={BAD / 'mixed_types.jsonl'}", "data.drop_invalid=false"],
        "row 2 completion is int, not text",
    ),
    "missing file": (["data.source=./nowhere/data.jsonl"], "does not exist"),
    "split of a single file": (["data.split=test"], "has one split (train)"),
    "mapping a missing column": (["data.columns={prompt: question}"], "does not have"),
    "unknown forced format": (["data.format=csv-ish"], "data.format 'csv-ish' is unknown"),
    "DPO on SFT data": (["method=dpo"], "DPO needs preference pairs"),
    "eval carve too large": (["data.eval_size=5000"], "leaves no training rows"),
    "Hub dataset offline": (["data.source=nobody/no-such-dataset"], "could not be reached"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_ends_in_one_clear_sentence(case, tmp_path, capsys, demo_model_dir):
    overrides, words = CASES[case]
    run_dir = tmp_path / "run"
    fast = [o for o in FAST if not any(o.split("=")[0] == x.split("=")[0] for x in overrides)]
    rc = train(RECIPES / "demo-sft.yaml", run_dir, *fast, *overrides)
    err = capsys.readouterr().err
    assert rc != 0
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and words in last, last
    assert last.count(". ") <= 2 and len(last) < 700  # one sentence-ish line, not a dump
    leftovers = {p.name for p in run_dir.iterdir()}
    assert leftovers <= {"config.yaml", "train.log", "summary.json", "data_report.json"}, leftovers
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"


def test_tolerable_inputs_load_and_report(tmp_path, demo_model_dir):
    from data import doctor, sources
    from trainers.config import DataSection

    for name, rows in (
        ("quoted_newlines.csv", 4),
        ("bom_utf8.jsonl", 6),
        ("bom_utf8.csv", 5),
        ("json_lines_in_json.json", 5),
        ("top_level_object.json", 4),
        ("semicolon.csv", 4),
        ("messages_as_string.jsonl", 6),
        ("nested_content_parts.jsonl", 5),
    ):
        section = DataSection(source=str(BAD / name))
        ds, report, _ = doctor.examine(sources.load(section.source), methods.get("sft").task, section)
        assert not report.errors and report.rows == rows, (name, report.findings)
        assert report.rows_kept == rows, (name, [f.message for f in report.findings])
    mixed = DataSection(source=str(BAD / "mixed_types.jsonl"))
    _, report, _ = doctor.examine(sources.load(mixed.source), methods.get("sft").task, mixed)
    assert [r["row"] for r in report.findings[0].rows] == [2, 4]


def test_enormous_row_loads_and_is_flagged(tmp_path, demo_model_dir):
    import importlib.util

    from transformers import AutoTokenizer

    from data import doctor, sources
    from trainers.config import DataSection

    spec = importlib.util.spec_from_file_location("make_enormous", BAD / "make_enormous.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "enormous.jsonl"
    module.write(path, size_mb=5)
    section = DataSection(source=str(path))
    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    _, report, _ = doctor.examine(
        sources.load(str(path)), methods.get("sft").task, section, tokenizer=tok, max_length=1024
    )
    overlong = [f for f in report.findings if f.code == "overlong"]
    assert overlong and overlong[0].rows == [1]
