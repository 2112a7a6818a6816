"""Protocol details of the fake Hub: metadata headers, Range reads, streaming, folder adoption, same-host LFS."""

import json
from pathlib import Path

import datasets
import pytest
from huggingface_hub import HfApi, HfFileSystem, get_hf_file_metadata, hf_hub_download, hf_hub_url

from .fixture import ALICE, use_fake_hub
from .server import FakeHub
from .storage import git_blob_sha1


def test_file_metadata_headers(fake_hub_env):
    weights = b"\0" * 4096
    sha = fake_hub_env.add_repo("alice/meta", {"config.json": "{}", "model.safetensors": weights})
    regular = get_hf_file_metadata(hf_hub_url("alice/meta", "config.json"))
    assert (regular.commit_hash, regular.etag, regular.size) == (sha, git_blob_sha1(b"{}"), 2)
    lfs = get_hf_file_metadata(hf_hub_url("alice/meta", "model.safetensors"))
    assert lfs.commit_hash == sha and lfs.size == len(weights) and len(lfs.etag) == 64  # sha256
    assert "/_cdn/" in lfs.location and lfs.location.startswith(fake_hub_env.cdn_url)


def test_range_reads_and_streaming(fake_hub_env):
    lines = [{"text": f"row {i}"} for i in range(50)]
    body = "".join(json.dumps(row) + "\n" for row in lines)
    fake_hub_env.add_repo("alice/stream", {"train.jsonl": body}, "dataset")
    fs = HfFileSystem()
    with fs.open("datasets/alice/stream/train.jsonl", block_size=16) as f:
        f.seek(10)
        assert f.read(20) == body[10:30].encode()
    assert any("range" in r.headers for r in fake_hub_env.requests_to("/resolve/", "GET"))
    streamed = datasets.load_dataset("alice/stream", split="train", streaming=True)
    assert [row["text"] for row in streamed.take(3)] == ["row 0", "row 1", "row 2"]


def test_plain_folder_is_adopted_with_a_stable_sha(tmp_path, monkeypatch):
    folder = tmp_path / "root" / "models" / "acme" / "dropped"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"dropped": true}')
    with FakeHub(tmp_path / "root") as hub:
        use_fake_hub(hub.url, monkeypatch, tmp_path / "cache")
        path = hf_hub_download("acme/dropped", "config.json")
        assert json.loads(Path(path).read_text()) == {"dropped": True}
        first_sha = hub.sha("acme/dropped")
    other = tmp_path / "other" / "models" / "acme" / "dropped"
    other.mkdir(parents=True)
    (other / "config.json").write_text('{"dropped": true}')
    assert FakeHub(tmp_path / "other").sha("acme/dropped") == first_sha  # same content, same sha


def test_same_host_lfs_when_no_cdn_host(tmp_path, monkeypatch):
    with FakeHub(tmp_path / "root", tokens={"hf_x": "alice"}, cdn_host=None) as hub:
        use_fake_hub(hub.url, monkeypatch, tmp_path / "cache")
        hub.add_repo("alice/weights", {"model.safetensors": b"\1" * 100})
        assert Path(hf_hub_download("alice/weights", "model.safetensors", token="hf_x")).read_bytes() == b"\1" * 100
        assert hub.requests_to("/_cdn/")[0].host == hub.url.removeprefix("http://")


def test_create_commit_copy_of_lfs_file_and_parent_check(fake_hub_env):
    from huggingface_hub import CommitOperationAdd, CommitOperationCopy
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=ALICE)
    first = fake_hub_env.add_repo("alice/ops", {"w.bin": b"\0\1\2" * 10, "a.txt": "a"})
    info = api.create_commit(
        "alice/ops",
        [CommitOperationCopy("w.bin", "copy/w.bin"), CommitOperationAdd("b.txt", b"b")],
        commit_message="copy",
        parent_commit=first,
    )
    assert sorted(api.list_repo_files("alice/ops")) == ["a.txt", "b.txt", "copy/w.bin", "w.bin"]
    assert Path(hf_hub_download("alice/ops", "copy/w.bin", revision=info.oid)).read_bytes() == b"\0\1\2" * 10
    with pytest.raises(HfHubHTTPError) as stale:  # the branch moved since `first`
        api.create_commit("alice/ops", [CommitOperationAdd("c.txt", b"c")], commit_message="x", parent_commit=first)
    assert stale.value.response.status_code == 412
