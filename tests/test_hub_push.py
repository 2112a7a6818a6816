"""Push finished runs through the real huggingface_hub client to the loopback fake Hub, download them again,
and check what a stranger would get: loadable adapter, same generations, a card that parses and whose code runs."""

import contextlib
import hashlib
import io
import re
from pathlib import Path

import pytest
from fakehub.fixture import ALICE, BOB
from helpers import PLANTED_TOKEN

from evaluation.generate import load, reply

PROMPTS = [[{"role": "user", "content": "Hello! What can you do?"}], [{"role": "user", "content": "What is 2 + 2?"}]]


def tree_digest(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def push_cli(*args) -> tuple[int, str, str]:
    from hub.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["push", *map(str, args)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def alice(fake_hub_env, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", ALICE)
    return fake_hub_env


def download(repo_id: str, tmp_path: Path) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, local_dir=tmp_path / repo_id.replace("/", "__")))


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def assert_no_token(folder: Path, *tokens: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(t.encode() in data for t in tokens), f"token in {path}"


def test_push_sft_run_downloads_loads_and_generates_the_same(alice, sft_then_dpo, tmp_path):
    sft_dir, _ = sft_then_dpo
    before = tree_digest(sft_dir)
    code, out, err = push_cli(sft_dir, "--repo-id", "demo-sft-adapter", "--private")
    assert code == 0, err
    assert out.strip() == f"{alice.url}/alice/demo-sft-adapter"
    assert tree_digest(sft_dir) == before  # the run folder is only read
    assert alice.repo("alice/demo-sft-adapter").meta["private"] is True

    local = download("alice/demo-sft-adapter", tmp_path)
    names = {str(p.relative_to(local)) for p in local.rglob("*") if p.is_file() and ".cache" not in p.parts}
    for expected in (
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "chat_template.jinja",
        "training/config.yaml",
        "training/metrics.jsonl",
        "training/summary.json",
        "training/data_report.json",
        "training/loss_curve.png",
    ):
        assert expected in names
    assert (local / "training/loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert_no_token(local, ALICE, PLANTED_TOKEN)
    assert_no_token(alice.store.root, ALICE, PLANTED_TOKEN)  # nothing stored on the Hub side either

    # PEFT loads the pushed adapter; greedy generations equal the local adapter's.
    base = str(Path(__import__("json").loads((sft_dir / "summary.json").read_text())["model_path"]))
    local_model, tok = load(base, str(sft_dir / "adapter"))
    hub_model, hub_tok = load(base, "alice/demo-sft-adapter")
    for messages in PROMPTS:
        assert reply(hub_model, hub_tok, messages, 24) == reply(local_model, tok, messages, 24)


def test_card_parses_has_the_right_metadata_and_its_code_runs(alice, sft_then_dpo, tmp_path):
    from huggingface_hub import ModelCard

    sft_dir, dpo_dir = sft_then_dpo
    assert push_cli(sft_dir, "--repo-id", "alice/card-sft")[0] == 0
    assert push_cli(dpo_dir, "--repo-id", "alice/card-dpo")[0] == 0

    sft_card = ModelCard.load("alice/card-sft")
    assert sft_card.data.library_name == "peft"
    assert sft_card.data.pipeline_tag == "text-generation"
    assert {"trl", "sft", "lora", "fine-tune-studio"} <= set(sft_card.data.tags)
    assert "dpo" not in sft_card.data.tags
    assert sft_card.data.base_model is None  # the demo base is a local model, not a Hub id
    for section in ("## Use it", "## Results", "## Training data", "## Training configuration", "## Limitations"):
        assert section in sft_card.text
    assert "changes behaviour, not knowledge" in sft_card.text
    assert "| `peft.r` | `" in sft_card.text and "Held-out loss after training" in sft_card.text
    assert "![Training and held-out loss](training/loss_curve.png)" in sft_card.text

    dpo_card = ModelCard.load("alice/card-dpo")
    assert {"trl", "dpo", "sft", "lora"} <= set(dpo_card.data.tags)
    assert "SFT→DPO" in dpo_card.text and "DPO reward accuracy" in dpo_card.text

    # The snippets, as written in the card, load the model and chat with it.
    load_snippet, usage = code_blocks(sft_card.text)[:2]
    assert len(load_snippet.strip().splitlines()) == 2
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(load_snippet + usage, "card", "exec"), {})  # noqa: S102 - the card's own code
    base = __import__("json").loads((sft_dir / "summary.json").read_text())["model_path"]
    model, tok = load(base, str(sft_dir / "adapter"))
    expected = reply(model, tok, [{"role": "user", "content": "Hello! What can you do?"}], 64)
    assert out.getvalue().strip() == expected


def test_card_of_a_hub_base_names_base_model_license_and_datasets(alice, sft_then_dpo, tmp_path):
    import shutil

    import yaml
    from huggingface_hub import ModelCard

    from hub import model_card

    alice.add_repo("alice/base-7b", {"README.md": "---\nlicense: apache-2.0\n---\n# base\n", "config.json": "{}"})
    run = tmp_path / "run"
    shutil.copytree(sft_then_dpo[0], run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"]["name_or_path"] = "alice/base-7b"
    config["data"]["source"] = "alice/chat-data"
    config["model"]["quantization"] = "4bit"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    license = model_card.base_license("alice/base-7b")
    card = model_card.render(run, "alice/x", license=license)
    data = ModelCard(str(card)).data
    assert data.base_model == "alice/base-7b"
    assert data.license == "apache-2.0"
    assert data.datasets == ["alice/chat-data"]
    assert "qlora" in data.tags and "QLoRA" in card.text
    assert model_card.base_license("alice/does-not-exist") is None


def test_merged_model_is_sharded_safetensors_with_its_own_card(alice, sft_then_dpo, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sft_dir, _ = sft_then_dpo
    code, out, err = push_cli(sft_dir, "--repo-id", "alice/merge-me", "--merged", "--max-shard-size", "500KB")
    assert code == 0, err
    assert out.split() == [f"{alice.url}/alice/merge-me", f"{alice.url}/alice/merge-me-merged"]
    local = download("alice/merge-me-merged", tmp_path)
    shards = sorted(p.name for p in local.glob("model-*.safetensors"))
    assert len(shards) > 1 and (local / "model.safetensors.index.json").exists()
    assert not list(local.glob("adapter_*"))
    card = ModelCard.load("alice/merge-me-merged")
    assert card.data.library_name == "transformers" and "merged" in card.data.tags
    assert "AutoModelForCausalLM" in code_blocks(card.text)[0]

    merged = AutoModelForCausalLM.from_pretrained("alice/merge-me-merged").eval()
    merged_tok = AutoTokenizer.from_pretrained("alice/merge-me-merged")
    base = __import__("json").loads((sft_dir / "summary.json").read_text())["model_path"]
    model, tok = load(base, str(sft_dir / "adapter"))
    for messages in PROMPTS:
        assert reply(merged, merged_tok, messages, 24) == reply(model, tok, messages, 24)


def test_merging_a_quantized_run_is_refused_before_anything_is_pushed(alice, sft_then_dpo, tmp_path):
    import shutil

    import yaml

    run = tmp_path / "qrun"
    shutil.copytree(sft_then_dpo[0], run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"]["quantization"] = "4bit"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    code, _, err = push_cli(run, "--repo-id", "alice/q-merged", "--merged")
    assert code == 1
    assert err.startswith("error: ") and "quantized" in err and len(err.strip().splitlines()) == 1
    assert alice.store.get("model", "alice/q-merged") is None


def test_an_unfinished_run_is_refused(alice, tmp_path, sft_then_dpo):
    import json
    import shutil

    run = tmp_path / "failed"
    shutil.copytree(sft_then_dpo[0], run)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "failed"}))
    code, _, err = push_cli(run, "--repo-id", "alice/nope")
    assert code == 1 and "has not finished successfully (status: failed)" in err
    code, _, err = push_cli(tmp_path, "--repo-id", "alice/nope")
    assert code == 1 and "not a run folder" in err


# --- failures: one sentence each, run folder untouched -----------------------------------------------------------


def _fail(alice, sft_dir, repo, *extra):
    before = tree_digest(sft_dir)
    code, out, err = push_cli(sft_dir, "--repo-id", repo, *extra)
    assert tree_digest(sft_dir) == before
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    return code, out, lines, err


def test_rejected_token_401(alice, sft_then_dpo, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    code, out, lines, err = _fail(alice, sft_then_dpo[0], "alice/x401")
    assert code == 1 and not out and len(lines) == 1, err
    assert "rejected (401)" in lines[0] and "unchanged" in lines[0] and "Traceback" not in err


def test_no_write_permission_403(alice, sft_then_dpo, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", BOB)
    code, _, lines, err = _fail(alice, sft_then_dpo[0], "alice/x403")
    assert code == 1 and len(lines) == 1, err
    assert "(403)" in lines[0] and "write access to 'alice'" in lines[0]


def test_existing_foreign_repo_409_is_not_overwritten_silently(alice, sft_then_dpo):
    alice.add_repo("alice/someone-elses", {"README.md": "---\ntags: [other]\n---\nmine\n", "weights.bin": b"\0x"})
    sha = alice.sha("alice/someone-elses")
    code, _, lines, err = _fail(alice, sft_then_dpo[0], "alice/someone-elses")
    assert code == 1 and len(lines) == 1, err
    assert "already exists and was not pushed by Fine-Tune Studio" in lines[0] and "--overwrite" in lines[0]
    assert alice.sha("alice/someone-elses") == sha  # no commit
    assert alice.requests_to("/api/repos/create")[-1].status == 409

    code, _, _, err = _fail(alice, sft_then_dpo[0], "alice/someone-elses", "--overwrite")
    assert code == 0, err
    assert alice.sha("alice/someone-elses") != sha


def test_pushing_again_updates_a_repo_made_here(alice, sft_then_dpo):
    assert push_cli(sft_then_dpo[0], "--repo-id", "alice/again")[0] == 0
    first = alice.sha("alice/again")
    assert push_cli(sft_then_dpo[1], "--repo-id", "alice/again")[0] == 0  # our card's tag marks it as ours
    assert alice.sha("alice/again") != first


def test_server_error_then_success_is_retried(alice, sft_then_dpo):
    alice.inject("/commit/main", status=500, times=1, method="POST")
    code, out, lines, err = _fail(alice, sft_then_dpo[0], "alice/flaky")
    assert code == 0 and not lines, err
    assert [r.status for r in alice.requests_to("/api/models/alice/flaky/commit/main")] == [500, 200]


def test_persistent_server_error_is_one_sentence(alice, sft_then_dpo):
    alice.inject("/commit/main", status=503, times=10, method="POST")
    code, _, lines, err = _fail(alice, sft_then_dpo[0], "alice/down")
    assert code == 1 and len(lines) == 1, err
    assert "server error (503)" in lines[0] and "try again" in lines[0]


def test_dropped_connection_is_one_sentence(alice, sft_then_dpo):
    alice.inject("/commit/main", drop=True, times=10, method="POST")
    code, _, lines, err = _fail(alice, sft_then_dpo[0], "alice/dropped")
    assert code == 1 and len(lines) == 1, err
    assert "connection to the Hugging Face Hub failed or dropped" in lines[0]


def test_publish_panel_pushes_the_selected_run_and_explains_refusals(alice, sft_then_dpo):
    from types import SimpleNamespace

    from core.errors import StudioError
    from ui.publish_panel import publish

    run = SimpleNamespace(run_dir=str(sft_then_dpo[0]))
    ctx = SimpleNamespace(queue=SimpleNamespace(get=lambda run_id, owner: run))
    text = publish(ctx, "r1", "alice", ALICE, "from-the-app", True, False, False)
    assert "[alice/from-the-app](" in text and alice.repo("alice/from-the-app").meta["private"] is True
    for owner, token, repo, expected in (
        (None, ALICE, "x", "Sign in"),
        ("alice", ALICE, " ", "Enter a repo id"),
        ("alice", None, "x", "needs a Hugging Face token with write access"),
    ):
        with pytest.raises(StudioError, match=expected):
            publish(ctx, "r1", owner, token, repo, True, False, False)


def test_sync_field_writes_trl_hub_options_one_repo_per_run():
    import yaml

    from ui.train_form import fields_to_yaml

    docs = list(
        yaml.safe_load_all(
            fields_to_yaml("SFT→DPO", "demo-tiny", "LoRA", "a.jsonl", "b.jsonl", 1e-3, 1, 10, 8, 128, 8, "me/ckpts")
        )
    )
    assert [d["training"]["hub_model_id"] for d in docs] == ["me/ckpts-sft", "me/ckpts-dpo"]
    assert all(d["training"]["hub_strategy"] == "checkpoint" and d["training"]["hub_private_repo"] for d in docs)
    plain = yaml.safe_load(fields_to_yaml("SFT", "demo-tiny", "LoRA", "a.jsonl", "b.jsonl", 1e-3, 1, 10, 8, 128, 8))
    assert "push_to_hub" not in plain["training"]
