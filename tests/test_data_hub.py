"""Hub datasets through the real `datasets`/`huggingface_hub` clients against a loopback fake Hub."""

import pytest
from fakehub.fixture import ALICE
from helpers import RECIPES, ROOT, read_summary, train

from core.errors import DataError, user_message
from data import sources

SFT_ROWS = (ROOT / "data/demo/sft_train.jsonl").read_text().splitlines()
CARD = """---
configs:
- config_name: short
  data_files:
  - split: train
    path: short/train.jsonl
- config_name: full
  data_files:
  - split: train
    path: full/train.jsonl
  - split: test
    path: full/test.jsonl
---
# demo chats
"""


def _jsonl(rows):
    return ("\n".join(rows) + "\n").encode()


@pytest.fixture
def hub(fake_hub_env):
    hub = fake_hub_env
    hub.add_repo(
        "alice/chats", {"train.jsonl": _jsonl(SFT_ROWS[:60]), "test.jsonl": _jsonl(SFT_ROWS[60:70])}, "dataset"
    )
    hub.add_repo(
        "alice/chats",
        {"train.jsonl": _jsonl(SFT_ROWS[:30]), "test.jsonl": _jsonl(SFT_ROWS[60:70])},
        "dataset",
        revision="v2",
    )
    hub.add_repo(
        "alice/configs",
        {
            "README.md": CARD,
            "short/train.jsonl": _jsonl(SFT_ROWS[:20]),
            "full/train.jsonl": _jsonl(SFT_ROWS[:50]),
            "full/test.jsonl": _jsonl(SFT_ROWS[50:55]),
        },
        "dataset",
    )
    hub.add_repo("alice/secret", {"train.jsonl": _jsonl(SFT_ROWS[:20])}, "dataset", private=True)
    hub.add_repo("alice/gated", {"train.jsonl": _jsonl(SFT_ROWS[:20])}, "dataset", gated=True)
    return hub


def test_split_revision_and_subset(hub):
    assert len(sources.load("alice/chats", "train")) == 60
    assert len(sources.load("alice/chats", "test")) == 10
    assert len(sources.load("alice/chats", "train", revision="v2")) == 30
    assert len(sources.load("alice/configs", "train", subset="short")) == 20
    assert len(sources.load("alice/configs", "test", subset="full")) == 5


@pytest.mark.parametrize(
    "args,words",
    [
        (("alice/nothing-here", "train"), "was not found on the Hub, or it is private"),
        (("alice/chats", "validation"), "has no split 'validation'; it has: train, test"),
        (("alice/chats", "train", None, "no-such-branch"), "has no revision 'no-such-branch'"),
        (("alice/configs", "train", "medium"), "Set data.subset"),
        (("alice/secret", "train"), "or it is private"),
        (("alice/gated", "train"), "is gated"),
    ],
)
def test_hub_errors_are_one_sentence(hub, args, words):
    with pytest.raises(DataError) as err:
        sources.load(*args)
    message = user_message(err.value)
    assert words in message, message


def test_private_dataset_with_token_trains_and_the_token_lands_nowhere(hub, tmp_path, monkeypatch, demo_model_dir):
    monkeypatch.setenv("HF_TOKEN", ALICE)
    assert len(sources.load("alice/secret", "train")) == 20
    run_dir = tmp_path / "private"
    rc = train(
        RECIPES / "demo-sft.yaml",
        run_dir,
        "data.source=alice/secret",
        "data.eval_source=null",
        "data.eval_size=2",
        "training.max_steps=2",
    )
    assert rc == 0, (run_dir / "train.log").read_text()[-1500:]
    assert read_summary(run_dir)["data"]["source"] == "alice/secret"
    assert any(r.token == ALICE for r in hub.requests_to("/resolve/"))  # the token was used ...
    for path in run_dir.rglob("*"):  # ... and written nowhere
        if path.is_file():
            assert ALICE.encode() not in path.read_bytes(), path
