"""The fake Hub against the real clients: model downloads, auth errors, uploads, and the env/constant patching.

Every Hub library is imported here, at module import, i.e. after tests/conftest.py set HF_HUB_OFFLINE=1 and
before any fixture runs: the tests passing proves `use_fake_hub` patches the import-time constants.
"""

import os
import subprocess
import sys
from pathlib import Path

import datasets  # noqa: F401 - imported early on purpose (see docstring)
import huggingface_hub
import pytest
import transformers  # noqa: F401
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .fixture import ALICE, ALICE_READ, BOB, CAROL, use_fake_hub

IMPORT_TIME_ENDPOINT = huggingface_hub.constants.ENDPOINT
IMPORT_TIME_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Llama and the repo's demo tokenizer, saved with save_pretrained."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainers.demo_model import build_tokenizer

    out = tmp_path_factory.mktemp("tiny-model")
    tokenizer = build_tokenizer(vocab_size=300)
    config = LlamaConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         vocab_size=300, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def files_of(folder) -> dict[str, bytes]:
    root = Path(folder)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_snapshot_download_and_from_pretrained(fake_hub_env, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hub = fake_hub_env
    sha = hub.add_repo("alice/tiny-llama", tiny_model_dir)
    local = snapshot_download("alice/tiny-llama")
    assert Path(local).name == sha and files_of(local) == files_of(tiny_model_dir)

    tokenizer = AutoTokenizer.from_pretrained("alice/tiny-llama")
    model = AutoModelForCausalLM.from_pretrained("alice/tiny-llama")
    ids = tokenizer("hello there", return_tensors="pt").input_ids
    assert tokenizer.decode(ids[0]) == "hello there"
    assert model(ids).logits.shape == (1, ids.shape[1], 300)
    # model.safetensors is an LFS file: HEAD -> 302 to the "CDN" host, which gets no Authorization header
    assert [r.status for r in hub.requests_to("/model.safetensors", "HEAD")] == [302]
    assert all(r.host.startswith("localhost") for r in hub.requests_to("/_cdn/"))
    # transformers' own cached HfApi lists chat templates: it must reach the fake too (no retries to the real Hub)
    assert hub.requests_to("/tree/main/additional_chat_templates")


def test_token_sent_to_hub_but_not_to_cdn(fake_hub_env, tiny_model_dir):
    hub = fake_hub_env
    hub.add_repo("alice/tiny-llama", tiny_model_dir)
    hf_hub_download("alice/tiny-llama", "model.safetensors", token=ALICE)
    hf_hub_download("alice/tiny-llama", "config.json")  # no token configured anywhere -> anonymous
    head = hub.requests_to("/resolve/main/model.safetensors", "HEAD")[0]
    assert head.authorized and head.token == ALICE
    assert [r.authorized for r in hub.requests_to("/_cdn/")] == [False]
    assert not any(r.authorized for r in hub.requests_to("config.json"))


def test_download_errors(fake_hub_env):
    hub = fake_hub_env
    hub.add_repo("alice/errors", {"config.json": "{}"})
    with pytest.raises(EntryNotFoundError):  # RemoteEntryNotFoundError
        hf_hub_download("alice/errors", "missing.json")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("alice/errors", "config.json", revision="nope")
    with pytest.raises(RevisionNotFoundError):
        snapshot_download("alice/errors", revision="nope")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/does-not-exist", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("alice/does-not-exist")


def test_private_repo(fake_hub_env):
    hub = fake_hub_env
    hub.add_repo("alice/secret", {"config.json": '{"x": 1}'}, private=True)
    with pytest.raises(RepositoryNotFoundError) as anonymous:
        hf_hub_download("alice/secret", "config.json")
    with pytest.raises(RepositoryNotFoundError) as other_user:
        hf_hub_download("alice/secret", "config.json", token=BOB)
    assert (anonymous.value.response.status_code, other_user.value.response.status_code) == (401, 404)
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("alice/secret")
    assert Path(hf_hub_download("alice/secret", "config.json", token=ALICE)).read_text() == '{"x": 1}'
    assert HfApi(token=ALICE).model_info("alice/secret").private is True
    assert [r.token for r in hub.requests_to("/alice/secret/resolve/", "HEAD")] == [None, BOB, ALICE]


def test_gated_repo(fake_hub_env):
    hub = fake_hub_env
    hub.add_repo("alice/gated", {"config.json": "{}"}, gated=True)
    with pytest.raises(GatedRepoError) as anonymous:
        hf_hub_download("alice/gated", "config.json")
    with pytest.raises(GatedRepoError) as not_granted:
        hf_hub_download("alice/gated", "config.json", token=BOB)
    assert (anonymous.value.response.status_code, not_granted.value.response.status_code) == (401, 403)
    assert HfApi().model_info("alice/gated").gated == "manual"  # the repo page/info stays public
    hub.grant_access("alice/gated", "bob")
    assert Path(hf_hub_download("alice/gated", "config.json", token=BOB)).read_text() == "{}"


def test_whoami(fake_hub_env):
    me = HfApi().whoami(token=ALICE)
    assert me["name"] == "alice" and me["auth"]["accessToken"]["role"] == "write"
    assert huggingface_hub.whoami(token=CAROL)["orgs"][0]["name"] == "acme"  # module-level HfApi is patched too
    with pytest.raises(HfHubHTTPError, match="Invalid user token") as bad:
        HfApi().whoami(token="hf_bad")
    assert bad.value.response.status_code == 401
    assert fake_hub_env.requests_to("/api/whoami-v2")[-1].token == "hf_bad"


def test_bad_token_on_download_is_401(fake_hub_env):
    fake_hub_env.add_repo("alice/public", {"config.json": "{}"})
    with pytest.raises(HfHubHTTPError) as bad:
        HfApi().model_info("alice/public", token="hf_bad")
    assert bad.value.response.status_code == 401 and not isinstance(bad.value, RepositoryNotFoundError)


def test_repo_info_and_paginated_tree(fake_hub_env, monkeypatch):
    hub = fake_hub_env
    files = {f"shards/part-{i}.txt": f"{i}" for i in range(5)} | {"README.md": "---\nlicense: mit\n---\nhi\n"}
    sha = hub.add_repo("alice/listing", files | {"weights.bin": b"\0\1" * 10})
    api = HfApi()
    info = api.model_info("alice/listing", files_metadata=True)
    assert info.sha == sha and info.card_data.license == "mit"
    lfs = {s.rfilename: s.lfs for s in info.siblings}
    assert lfs["weights.bin"].size == 20 and lfs["README.md"] is None
    monkeypatch.setattr(hub, "tree_page_size", 2)
    tree = list(api.list_repo_tree("alice/listing", recursive=True))
    assert sorted(e.path for e in tree) == sorted(["shards", "weights.bin", *files])
    assert len(hub.requests_to("/tree/main")) == 4  # 8 entries, 2 per page
    assert sorted(api.list_repo_files("alice/listing")) == sorted([*files, "weights.bin"])
    assert [e.path for e in api.get_paths_info("alice/listing", ["shards", "README.md", "nope"])] == [
        "shards",
        "README.md",
    ]


def test_create_repo_and_upload_folder_with_lfs(fake_hub_env, tmp_path):
    hub = fake_hub_env
    api = HfApi(token=ALICE)
    url = api.create_repo("push-target")
    assert url.repo_id == "alice/push-target"
    with pytest.raises(HfHubHTTPError) as exists:
        api.create_repo("alice/push-target")
    assert exists.value.response.status_code == 409
    assert api.create_repo("alice/push-target", exist_ok=True).repo_id == "alice/push-target"

    folder = tmp_path / "out"
    (folder / "ckpt").mkdir(parents=True)
    (folder / "meta.json").write_text('{"step": 1}')
    big = os.urandom(11 * 1024 * 1024)
    (folder / "ckpt" / "blob.dat").write_bytes(big)  # > 10 MB: must take the LFS path
    info = api.upload_folder(repo_id="alice/push-target", folder_path=folder, commit_message="ckpt")
    assert info.oid == hub.sha("alice/push-target")
    assert hub.requests_to("/alice/push-target.git/info/lfs/objects/batch", "POST")
    assert [r.authorized for r in hub.requests_to("/_lfs/upload/", "PUT")] == [False]
    assert hub.requests_to("/alice/push-target.git/info/lfs/objects/verify")[0].token == ALICE
    assert sorted(api.list_repo_files("alice/push-target")) == [".gitattributes", "ckpt/blob.dat", "meta.json"]

    assert Path(hf_hub_download("alice/push-target", "ckpt/blob.dat")).read_bytes() == big
    local = snapshot_download("alice/push-target", revision=info.oid)
    assert files_of(local)["meta.json"] == b'{"step": 1}'
    lfs = {s.rfilename: s.lfs for s in api.model_info("alice/push-target", files_metadata=True).siblings}
    assert lfs["ckpt/blob.dat"].size == len(big) and lfs["meta.json"] is None


def test_upload_file_branch_and_delete(fake_hub_env):
    hub = fake_hub_env
    api = HfApi(token=CAROL)
    api.create_repo("acme/data", repo_type="dataset", private=True)
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="x.csv", repo_id="acme/data", repo_type="dataset")
    api.create_branch("acme/data", branch="dev", repo_type="dataset")
    api.upload_file(path_or_fileobj=b"new", path_in_repo="y.txt", repo_id="acme/data", repo_type="dataset",
                    revision="dev")  # fmt: skip
    api.delete_file("x.csv", repo_id="acme/data", repo_type="dataset", revision="dev")
    assert sorted(api.list_repo_files("acme/data", repo_type="dataset")) == [".gitattributes", "x.csv"]
    assert sorted(api.list_repo_files("acme/data", repo_type="dataset", revision="dev")) == [".gitattributes", "y.txt"]
    assert api.dataset_info("acme/data").private is True
    assert hub.repo("acme/data", "dataset").resolve("dev") != hub.sha("acme/data", "dataset")


def test_writes_need_a_write_token(fake_hub_env):
    fake_hub_env.add_repo("alice/locked", {"a.txt": "a"})
    for token, status in [(None, 401), (ALICE_READ, 403), (BOB, 403)]:
        with pytest.raises(HfHubHTTPError) as err:
            HfApi(token=token).upload_file(path_or_fileobj=b"x", path_in_repo="b.txt", repo_id="alice/locked")
        assert err.value.response.status_code == status, token
    with pytest.raises(HfHubHTTPError) as err:
        HfApi().create_repo("anonymous-repo")
    assert err.value.response.status_code == 401
    assert HfApi().list_repo_files("alice/locked") == ["a.txt"]


def test_use_fake_hub_patches_and_restores(fake_hub, tmp_path):
    from datasets import config as ds_config
    from huggingface_hub import constants
    from transformers.utils import hub as transformers_hub

    transformers_hub.hf_api()  # transformers' shared HfApi, created with the import-time endpoint
    if os.environ.get("HF_HUB_OFFLINE") == "1":  # tests/conftest.py sets it before any import
        assert IMPORT_TIME_OFFLINE and ds_config.HF_HUB_OFFLINE
    before = (constants.ENDPOINT, constants.HF_HUB_OFFLINE, ds_config.HF_ENDPOINT, os.environ.get("HF_HUB_OFFLINE"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_fake_hub(fake_hub.url, monkeypatch, tmp_path)
        assert constants.ENDPOINT == ds_config.HF_ENDPOINT == huggingface_hub.hf_api.api.endpoint == fake_hub.url
        assert not constants.is_offline_mode() and not ds_config.HF_HUB_OFFLINE and "HF_HUB_OFFLINE" not in os.environ
        assert os.environ["HF_HUB_CACHE"] == constants.HF_HUB_CACHE == str(tmp_path / "hub")
        assert transformers_hub.hf_api().endpoint == huggingface_hub.hffs.endpoint == fake_hub.url
    after = (constants.ENDPOINT, constants.HF_HUB_OFFLINE, ds_config.HF_ENDPOINT, os.environ.get("HF_HUB_OFFLINE"))
    assert after == before and IMPORT_TIME_ENDPOINT == constants.ENDPOINT


def test_subprocess_env(fake_hub, tmp_path):
    from .fixture import subprocess_env

    fake_hub.add_repo("alice/child", {"hello.txt": "from the fake hub"})
    code = "from huggingface_hub import hf_hub_download as d; print(open(d('alice/child', 'hello.txt')).read())"
    env = subprocess_env(fake_hub.url, tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "from the fake hub", out.stderr
