"""A huge row (megabytes of text) is reported as overlong without tokenizing all of it: the tokenizer only ever
sees a bounded prefix, and the report says "at least N tokens"."""

import json

from transformers import AutoTokenizer

from data import doctor, sources
from trainers.config import DataSection


class Recording:
    """The real tokenizer, recording the length of every text it is asked to tokenize."""

    def __init__(self, tokenizer):
        self._tok, self.longest, self.calls = tokenizer, 0, 0

    def __call__(self, texts, **kw):
        self.calls += 1
        self.longest = max([self.longest, *(len(t) for t in ([texts] if isinstance(texts, str) else texts))])
        return self._tok(texts, **kw)

    def __getattr__(self, name):
        return getattr(self._tok, name)


def test_a_huge_row_is_measured_on_a_bounded_prefix(tmp_path, demo_model_dir):
    path = tmp_path / "rows.jsonl"
    huge = "lorem ipsum dolor " * 300_000  # 5.4 MB in one assistant reply
    rows = [
        {"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]}
        for i in range(60)
    ]
    rows.insert(
        7, {"messages": [{"role": "user", "content": "tell me everything"}, {"role": "assistant", "content": huge}]}
    )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tok = Recording(AutoTokenizer.from_pretrained(demo_model_dir))
    max_length = 128
    section = DataSection(source=str(path))
    ds, report, _ = doctor.examine(sources.load(str(path)), "sft", section, "training", tok, max_length)

    assert tok.calls and tok.longest <= doctor.measure_limit(max_length) == 32 * max_length
    overlong = [f for f in report.findings if f.code == "overlong"]
    assert len(overlong) == 1 and overlong[0].rows == [7], report.findings
    assert "at least" in overlong[0].message and f"over {32 * max_length} characters" in overlong[0].message
    assert report.tokens["capped_rows"] == 1 and report.tokens["max"] >= max_length
    assert report.rows_kept == 61 and not report.errors


def test_without_max_length_measuring_is_bounded_too(tmp_path, demo_model_dir):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"text": "x " * (doctor.MEASURE_CHARS // 2 + 5000)}) + "\n")
    tok = Recording(AutoTokenizer.from_pretrained(demo_model_dir))
    _, report, _ = doctor.examine(sources.load(str(path)), "sft", DataSection(source=str(path)), "training", tok, None)
    assert tok.longest <= doctor.MEASURE_CHARS and report.tokens["capped_rows"] == 1
