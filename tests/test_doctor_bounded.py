"""A huge row (megabytes of text) is reported as overlong without tokenizing all of it: the tokenizer only ever
sees a bounded prefix, and the report says "at least N tokens"."""

import json

from transformers import AutoTokenizer

from data import doctor, sources
from trainers import methods
from trainers.config import DataSection


class Recording:
    """The real tokenizer, recording the length of every text it is asked to tokenize (a conversation's
    length is the characters of its turns)."""

    def __init__(self, tokenizer):
        self._tok, self.longest, self.calls = tokenizer, 0, 0

    def __call__(self, texts, **kw):
        self.calls += 1
        self.longest = max([self.longest, *(len(t) for t in ([texts] if isinstance(texts, str) else texts))])
        return self._tok(texts, **kw)

    def apply_chat_template(self, conversation, **kw):
        self.calls += 1
        self.longest = max(self.longest, sum(len(m.get("content") or "") for m in conversation))
        return self._tok.apply_chat_template(conversation, **kw)

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
    ds, report, _ = doctor.examine(
        sources.load(str(path)), methods.get("sft").task, section, "training", tok, max_length
    )

    # clipping keeps at most `limit` characters per string and stops adding turns once `limit` is reached
    assert tok.calls and tok.longest <= 2 * doctor.measure_limit(max_length) == 64 * max_length
    overlong = [f for f in report.findings if f.code == "overlong"]
    assert len(overlong) == 1 and overlong[0].rows == [7], report.findings
    assert "at least" in overlong[0].message and f"over {32 * max_length} characters" in overlong[0].message
    assert report.tokens["capped_rows"] == 1 and report.tokens["max"] >= max_length
    assert report.rows_kept == 61 and not report.errors


def test_without_max_length_measuring_is_bounded_too(tmp_path, demo_model_dir):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"text": "x " * (doctor.MEASURE_CHARS // 2 + 5000)}) + "\n")
    tok = Recording(AutoTokenizer.from_pretrained(demo_model_dir))
    _, report, _ = doctor.examine(
        sources.load(str(path)), methods.get("sft").task, DataSection(source=str(path)), "training", tok, None
    )
    # the text is clipped to MEASURE_CHARS; the EOS TRL appends to plain text adds its few characters
    assert tok.longest <= doctor.MEASURE_CHARS + 16 and report.tokens["capped_rows"] == 1


def _rendered_ids(tokenizer, row, max_length, keep):
    ids = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=False)
    return ids[:max_length] if keep == "start" else ids[-max_length:]


def test_rows_too_long_to_measure_are_clipped_without_changing_the_kept_tokens(tmp_path, demo_model_dir):
    """A row the doctor could not measure whole reaches the trainer clipped to the measured characters; the
    tokens the trainer keeps after truncation (start or end) are exactly those of the unclipped row."""
    from data.splits import load_for_run

    max_length = 64
    limit = doctor.measure_limit(max_length)
    long_user = {"role": "user", "content": "why " * (3 * limit)}
    rows = [
        {"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]}
        for i in range(30)
    ]
    rows[3] = {"messages": [{"role": "user", "content": "go"}, {"role": "assistant", "content": "word " * limit}]}
    rows[5] = {"messages": [long_user, {"role": "assistant", "content": "short"}, long_user, long_user]}
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    section = DataSection(source=str(path), eval_size=0)
    whole, _, _, info, _ = load_for_run(
        section, methods.get("sft").task, tok, max_length, None
    )  # the trainer keeps every token
    assert "clipped_rows" not in info and sum(len(m["content"]) for m in whole[5]["messages"]) > 8 * limit
    for keep in ("start", "end"):
        train, _, _, info, reports = load_for_run(section, methods.get("sft").task, tok, max_length, keep)
        # keeping the start, row 5's prompt alone fills max_length: its prompt is shortened from the start instead
        # (so its reply trains) and only row 3 is clipped; keeping the end, both are clipped
        clipped_rows = (3,) if keep == "start" else (3, 5)
        assert f"{len(clipped_rows)} rows" in info["clipped_rows"], info
        for i in clipped_rows:
            clipped = train[i]
            assert sum(len(m["content"]) for m in clipped["messages"]) <= 2 * limit
            assert _rendered_ids(tok, clipped, max_length, keep) == _rendered_ids(tok, whole[i], max_length, keep)
        if keep == "start":
            shortened = [f for f in reports[0].findings if f.code == "shortened_prompts"]
            assert shortened and shortened[0].rows == [5], reports[0].findings
            short = train[5]["messages"]
            assert short[-1] == {"role": "assistant", "content": "short"} and short[0]["content"].startswith("…")
            assert len(_rendered_ids(tok, {"messages": short}, 10_000, keep)) <= max_length
        assert train[0] == whole[0]  # rows that were measured whole are untouched
