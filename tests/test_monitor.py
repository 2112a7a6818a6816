"""The monitor reads run folders incrementally and names each failure in one sentence."""

import json
import signal

import pytest

from jobs import monitor


def test_read_new_waits_for_a_half_written_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2')
    lines, offset = monitor.read_new(path, 0)
    assert lines == ['{"step": 1}'] and offset == len('{"step": 1}\n')
    with open(path, "a") as f:
        f.write(', "loss": 1.0}\n{"step": 3}\n')
    lines, offset = monitor.read_new(path, offset)
    assert [json.loads(x)["step"] for x in lines] == [2, 3]
    assert monitor.read_new(path, offset) == ([], offset)
    rows, _ = monitor.metrics_since(tmp_path, after_step=1)
    assert [r["step"] for r in rows] == [2, 3]


def _run(tmp_path, summary=None, log=""):
    if summary is not None:
        (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "train.log").write_text(log)
    return tmp_path


@pytest.mark.parametrize(
    "summary,log,code,reason,words",
    [
        ({"status": "succeeded"}, "", 0, "completed", None),
        (
            {"status": "failed", "error": "The GPU ran out of memory: lower ...", "exit_reason": "OutOfMemoryError"},
            "",
            2,
            "out_of_memory",
            "ran out of memory",
        ),
        (
            {"status": "failed", "error": "The data file x.jsonl is empty: point ...", "exit_reason": "DataError"},
            "",
            2,
            "DataError",
            "is empty",
        ),
        (
            {"status": "running"},
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate",
            -9,
            "out_of_memory",
            "ran out of memory",
        ),
        ({"status": "running"}, "huggingface_hub.errors.GatedRepoError: 403", 1, "gated_model", "gated"),
        ({"status": "running"}, "OSError: [Errno 28] No space left on device", 1, "disk_full", "disk is full"),
        ({"status": "running"}, "step 10", -signal.SIGKILL, "killed", "killed (SIGKILL)"),
        ({"status": "running"}, "step 10", -signal.SIGSEGV, "killed", "SIGSEGV"),
    ],
)
def test_classify(tmp_path, summary, log, code, reason, words):
    status, got_reason, message = monitor.classify(code, _run(tmp_path, summary, log))
    assert got_reason == reason
    assert (message is None) if words is None else (words in message and status == "failed")
