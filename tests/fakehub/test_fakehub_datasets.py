"""`datasets.load_dataset` over HTTP against the fake Hub: jsonl, parquet, configs, revisions, errors, auth."""

import io
import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets.exceptions import DatasetNotFoundError

from .fixture import ALICE, BOB


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def parquet(rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def rows(prefix: str, n: int) -> list[dict]:
    return [{"text": f"{prefix} {i}", "label": i % 2} for i in range(n)]


CONFIGS_README = """---
configs:
- config_name: en
  default: true
  data_files:
  - split: train
    path: en/train.jsonl
  - split: test
    path: en/test.jsonl
- config_name: fr
  data_files:
  - split: train
    path: fr/*.jsonl
---
# Two languages
"""


def test_jsonl_splits_and_revision(fake_hub_env):
    hub = fake_hub_env
    hub.add_repo("alice/chat", {"train.jsonl": jsonl(rows("a", 3)), "test.jsonl": jsonl(rows("b", 2))}, "dataset")
    hub.add_repo("alice/chat", {"train.jsonl": jsonl(rows("v2", 5))}, "dataset", revision="v2")
    train = datasets.load_dataset("alice/chat", split="train")
    assert train["text"] == ["a 0", "a 1", "a 2"] and train.features["label"].dtype == "int64"
    assert datasets.load_dataset("alice/chat")["test"].num_rows == 2
    assert datasets.load_dataset("alice/chat", split="train", revision="v2")["text"][-1] == "v2 4"
    assert datasets.get_dataset_split_names("alice/chat") == ["train", "test"]
    assert datasets.get_dataset_split_names("alice/chat", revision="v2") == ["train"]
    with pytest.raises(ValueError, match='Unknown split "validation"'):
        datasets.load_dataset("alice/chat", split="validation")
    with pytest.raises(DatasetNotFoundError, match="Revision 'nope' doesn't exist"):
        datasets.load_dataset("alice/chat", revision="nope")


def test_parquet_shards(fake_hub_env):
    files = {
        "data/train-00000-of-00002.parquet": parquet(rows("p", 4)),
        "data/train-00001-of-00002.parquet": parquet(rows("q", 3)),
        "data/test-00000-of-00001.parquet": parquet(rows("t", 2)),
    }
    fake_hub_env.add_repo("alice/shards", files, "dataset")
    loaded = datasets.load_dataset("alice/shards")
    assert {name: split.num_rows for name, split in loaded.items()} == {"train": 7, "test": 2}
    # parquet files are LFS files: served through the CDN redirect
    assert fake_hub_env.requests_to("/_cdn/", "GET")


def test_configs_from_readme(fake_hub_env):
    files = {
        "README.md": CONFIGS_README,
        "en/train.jsonl": jsonl(rows("en", 4)),
        "en/test.jsonl": jsonl(rows("en-test", 1)),
        "fr/part-0.jsonl": jsonl(rows("fr", 2)),
        "fr/part-1.jsonl": jsonl(rows("fr", 3)),
    }
    fake_hub_env.add_repo("alice/multi", files, "dataset")
    assert datasets.get_dataset_config_names("alice/multi") == ["en", "fr"]
    assert datasets.get_dataset_split_names("alice/multi", "fr") == ["train"]
    assert datasets.load_dataset("alice/multi", split="train")["text"][0] == "en 0"  # default config
    assert datasets.load_dataset("alice/multi", "fr", split="train").num_rows == 5
    with pytest.raises(ValueError, match="BuilderConfig 'de' not found"):
        datasets.load_dataset("alice/multi", "de")


def test_missing_private_and_gated(fake_hub_env):
    hub = fake_hub_env
    with pytest.raises(DatasetNotFoundError, match="doesn't exist on the Hub or cannot be accessed"):
        datasets.load_dataset("alice/never-created")
    hub.add_repo("alice/private-ds", {"train.jsonl": jsonl(rows("s", 2))}, "dataset", private=True)
    with pytest.raises(DatasetNotFoundError, match="doesn't exist on the Hub or cannot be accessed"):
        datasets.load_dataset("alice/private-ds")
    with pytest.raises(DatasetNotFoundError):
        datasets.load_dataset("alice/private-ds", token=BOB)
    assert datasets.load_dataset("alice/private-ds", split="train", token=ALICE).num_rows == 2
    sent = {r.token for r in hub.requests_to("/private-ds/")}
    assert sent == {None, BOB, ALICE}

    hub.add_repo("alice/gated-ds", {"train.jsonl": jsonl(rows("g", 2))}, "dataset", gated="auto")
    with pytest.raises(DatasetNotFoundError, match="gated dataset on the Hub. You must be authenticated"):
        datasets.load_dataset("alice/gated-ds")
    with pytest.raises(DatasetNotFoundError, match="gated dataset on the Hub. Visit the dataset page"):
        datasets.load_dataset("alice/gated-ds", token=BOB)
    hub.grant_access("alice/gated-ds", "bob", "dataset")
    assert datasets.load_dataset("alice/gated-ds", split="train", token=BOB).num_rows == 2


def test_push_to_hub_round_trip(fake_hub_env):
    data = datasets.Dataset.from_list(rows("pushed", 6))
    data.push_to_hub("alice/pushed", token=ALICE, private=True)
    again = datasets.load_dataset("alice/pushed", split="train", token=ALICE)
    assert again["text"] == data["text"]
