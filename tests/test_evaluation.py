"""Evaluation metrics on constructed cases, and the SFT vs DPO vs SFT→DPO comparison on the demo task."""

import contextlib
import io
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import RECIPES

from trainers import methods

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(demo_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(demo_model_dir).eval(), AutoTokenizer.from_pretrained(demo_model_dir)


def test_only_completion_tokens_are_scored_and_the_sum_matches_a_hand_computation(tiny):
    import torch

    from evaluation.metrics import completion_logprobs, encode

    model, tok = tiny
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Please greet Amir."}]
    reply = [{"role": "assistant", "content": "Hello, Amir!"}]
    ids, mask = encode(tok, prompt, reply)
    scored = [i for i, m in zip(ids, mask, strict=True) if m]
    assert tok.decode(scored) == "Hello, Amir!<|im_end|>"  # the reply and its end token, nothing of the prompt
    assert tok.decode(ids[: mask.index(1)]).endswith("<|im_start|>assistant\n")

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    by_hand = sum(
        torch.log_softmax(logits[i - 1], -1)[ids[i]].item() for i in range(1, len(ids)) if mask[i]
    )  # log p(token_i | tokens before it), completion positions only
    (total, count), *_ = completion_logprobs(model, [(ids, mask)])
    assert count == len(scored)
    assert total == pytest.approx(by_hand, abs=1e-4)

    # Padding in a batch with a longer row changes nothing; a different prompt changes the score.
    long_ids, long_mask = encode(tok, [{"role": "user", "content": "word " * 40}], reply)
    batched = completion_logprobs(model, [(ids, mask), (long_ids, long_mask)])
    assert batched[0][0] == pytest.approx(total, abs=1e-4)
    assert batched[1][1] == count and batched[1][0] != pytest.approx(total, abs=1e-3)


def test_text_rows_score_the_completion_and_eos(tiny):
    from evaluation.metrics import encode

    _, tok = tiny
    ids, mask = encode(tok, "Q: What is 2 + 2?\nA:", " 4")
    assert tok.decode([i for i, m in zip(ids, mask, strict=True) if m]) == " 4" + tok.eos_token


def test_a_model_against_itself_has_zero_implicit_reward():
    from evaluation.metrics import preference_metrics

    pairs = [(-3.0, -5.0), (-7.0, -2.0), (-1.0, -1.5)]
    same = preference_metrics(pairs, pairs, beta=0.1)
    assert same["reward_margin"] == 0 and same["reward_ties"] == 3  # every pair a tie, none a wrong preference
    assert "reward_accuracy" not in same and same["reward_accuracy_trl"] == 0
    assert same["preference_accuracy"] == pytest.approx(2 / 3)
    assert same["logprob_margin"] == pytest.approx((2 - 5 + 0.5) / 3)
    better = preference_metrics([(c + 1, r - 1) for c, r in pairs], pairs, beta=0.5)
    assert better["reward_accuracy"] == 1 and better["reward_margin"] == pytest.approx(1.0)
    assert better["reward_ties"] == 0 and better["reward_accuracy_trl"] == 1


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, demo_model_dir):
    """The shipped demo comparison, run once from the repo root as documented."""
    from evaluation.__main__ import main

    out = tmp_path_factory.mktemp("compare") / "demo"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["compare", str(RECIPES / "demo-compare.yaml"), "--output-dir", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text()), stdout.getvalue()


def test_demo_comparison_shows_what_the_methods_are_known_to_do(comparison):
    out, report, printed = comparison
    base, arms = report["base"]["metrics"], report["arms"]
    assert {a: e["status"] for a, e in arms.items()} == {
        "prompting": "succeeded",
        "sft": "succeeded",
        "dpo": "succeeded",
        "sft_dpo": "succeeded",
    }
    prompting = arms.pop("prompting")  # trains nothing: the base with a system prompt and examples
    assert prompting["untrained"] and len(prompting["context"]) >= 6 and prompting["cost"]["trainable_params"] == 0
    assert arms["sft"]["metrics"]["nll"] < base["nll"] - 2  # SFT lowers held-out NLL against the base
    assert arms["dpo"]["metrics"]["preference_accuracy"] >= base["preference_accuracy"] + 0.5  # DPO raises it
    assert arms["sft_dpo"]["metrics"]["preference_accuracy"] > arms["sft"]["metrics"]["preference_accuracy"]
    assert arms["dpo"]["metrics"]["reward_accuracy"] > 0.8 and base["reward_margin"] == 0

    # Fair: one base, one seed, one PEFT setting and one held-out set for every arm.
    configs = [yaml.safe_load((Path(e["run_dir"]) / "config.yaml").read_text()) for e in arms.values()]
    assert len({json.dumps([c["model"], c["peft"], c["training"]["seed"], c["data"]["seed"]]) for c in configs}) == 1
    assert report["settings"]["held_out"] == {"sft_rows": 40, "preference_pairs": 30}
    assert all(e["metrics"]["tokens"] == base["tokens"] for e in arms.values())  # same tokens scored
    sft_dpo = yaml.safe_load((Path(arms["sft_dpo"]["run_dir"]) / "config.yaml").read_text())
    assert sft_dpo["init_from"] == str(Path(arms["sft"]["run_dir"]).resolve())
    for entry in arms.values():
        assert entry["cost"]["trainable_params"] > 0 and entry["cost"]["wall_time_s"] > 0
        assert entry["cost"]["tokens_seen"] > 0 and entry["cost"]["peak_memory_mb"] > 0
        assert len(entry["generations"]) == report["settings"]["evaluation"]["generations"]

    md = (out / "report.md").read_text()
    assert printed.strip() == md.strip()
    assert "| SFT→DPO | succeeded |" in md and "![Loss curves](loss_curves.png)" in md

    # The judges: every arm's replies to the same held-out prompts, each rate with n and a 95 % interval
    judges, verdict = report["judges"], report["verdict"]
    n = report["settings"]["evaluation"]["generations"]
    correct = judges["verifiable"]["results"]
    assert all(correct[a]["n"] == n for a in ("base", "prompting", "sft", "dpo", "sft_dpo"))
    assert judges["reward_model"]["settings"]["model"].endswith("runs/reward")  # trained on the demo pairs
    rewarded = judges["reward_model"]["vs_base"]
    assert rewarded["dpo"]["low"] > 0.5 and rewarded["sft_dpo"]["low"] > 0.5  # DPO's sign-off, clearly preferred
    deltas = judges["forgetting"]["deltas"]
    assert set(deltas) == {"sft", "dpo", "sft_dpo"} and all("demo_general" in d for d in deltas.values())
    assert set(judges["seconds"]) == {"verifiable", "reward_model", "forgetting"}
    assert verdict["primary"] == "reward_model" and verdict["ship"] in ("DPO", "SFT→DPO") and md.startswith("# ")
    assert f"**Verdict (reward model judge): {verdict['sentence']}**" in md
    assert "## Greedy generations on held-out prompts" in md
    for image in ("loss_curves.png", "metrics.png"):
        assert (out / image).read_bytes()[:4] == b"\x89PNG"


def test_a_model_trained_to_prefer_chosen_scores_near_one_on_those_pairs(comparison, tmp_path):
    from evaluation.single import evaluate_target

    arms = comparison[1]["arms"]
    result = evaluate_target(arms["sft_dpo"]["run_dir"], pref_data=str(ROOT / "data/demo/dpo_train.jsonl"))
    assert result["model"]["metrics"]["preference_accuracy"] >= 0.95
    assert result["model"]["metrics"]["pairs"] == 120
    assert result["base"]["metrics"]["reward_margin"] == 0


def test_eval_cli_on_a_run_uses_its_held_out_split(comparison):
    from evaluation.__main__ import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["eval", comparison[1]["arms"]["sft"]["run_dir"], "--json", "--generations", "2"]) == 0
    result = json.loads(out.getvalue())
    assert result["model"]["metrics"]["nll"] < result["base"]["metrics"]["nll"]
    assert math.isclose(result["model"]["metrics"]["nll"], comparison[1]["arms"]["sft"]["metrics"]["nll"], rel_tol=1e-4)
    assert len(result["model"]["generations"]) == 2


def test_a_failed_arm_does_not_sink_the_comparison(comparison, tmp_path):
    from evaluation.compare import report_folder

    out, report, _ = comparison
    folder = tmp_path / "partial"
    shutil.copytree(out / "runs" / "sft", folder / "runs" / "sft")
    (folder / "runs" / "dpo").mkdir(parents=True)
    (folder / "runs" / "dpo" / "summary.json").write_text(
        json.dumps({"status": "failed", "error": "The run ran out of memory: lower the batch size."})
    )
    other = folder / "other-base-run"
    shutil.copytree(out / "runs" / "sft", other)
    summary = json.loads((other / "summary.json").read_text())
    (other / "summary.json").write_text(json.dumps({**summary, "model": "someone/else-7b"}))
    cfg = yaml.safe_load((out / "comparison.yaml").read_text())
    (folder / "comparison.yaml").write_text(yaml.safe_dump({**cfg, "existing": {"mine": str(other)}}))
    data = report_folder(folder)
    assert data["arms"]["mine"]["status"] == "skipped" and "someone/else-7b" in data["arms"]["mine"]["error"]
    assert data["arms"]["sft"]["status"] == "succeeded" and data["arms"]["sft"]["metrics"]["nll"] < 5
    assert data["arms"]["dpo"]["status"] == "failed" and "out of memory" in data["arms"]["dpo"]["error"]
    assert data["arms"]["sft_dpo"]["status"] != "succeeded"
    md = (folder / "report.md").read_text()
    assert "| DPO | failed: The run ran out of memory: lower the batch size. |" in md
    assert "| SFT | succeeded |" in md


def test_bad_comparison_configs_are_one_sentence(tmp_path):
    from evaluation.__main__ import main

    cases = {
        "arms: [sft, ppo]\nmodel: {name_or_path: demo-tiny}\ndata: {source: x.jsonl}\n": "Unknown arms ['ppo']",
        "model: {name_or_path: demo-tiny}\narms: [dpo]\nsft_data: {source: x.jsonl}\n": "need preference_data",
        "arms: [sft]\nsft_data: {source: x.jsonl}\n": "needs model:",
        "model: {name_or_path: demo-tiny}\ndata: {source: x.jsonl}\nlearning_rate: 1\n": "Unknown comparison keys",
    }
    for text, expected in cases.items():
        path = tmp_path / "c.yaml"
        path.write_text(text)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["compare", str(path), "--output-dir", str(tmp_path / "out")]) == 2
        lines = [line for line in err.getvalue().splitlines() if line.startswith("error: ")]
        assert len(lines) == 1 and expected in lines[0], err.getvalue()


def test_the_report_goes_into_the_pushed_card(comparison, fake_hub_env, monkeypatch, tmp_path):
    from fakehub.fixture import ALICE
    from huggingface_hub import ModelCard, hf_hub_download

    from hub.push import push_run

    monkeypatch.setenv("HF_TOKEN", ALICE)
    out, _, _ = comparison
    result = push_run(out / "runs" / "sft_dpo", "alice/compared-sft-dpo")  # found from the run's folder
    assert "comparison/report.md" in result.files and "comparison/loss_curves.png" in result.files
    card = ModelCard.load("alice/compared-sft-dpo")
    assert "## Comparison with other methods on the same base" in card.text
    assert "| SFT→DPO | succeeded |" in card.text and "(comparison/loss_curves.png)" in card.text
    assert Path(hf_hub_download("alice/compared-sft-dpo", "comparison/metrics.png")).read_bytes()[:4] == b"\x89PNG"


def test_evaluation_scores_the_rows_the_arms_held_out(demo_model_dir):
    from data.splits import load_for_run
    from evaluation.compare import heldout_rows, plan, validate
    from trainers.config import DataSection, ModelSection
    from trainers.models import resolve_and_load_tokenizer

    cfg = validate(
        {
            "model": {"name_or_path": "demo-tiny"},
            "sft_data": {"source": str(ROOT / "data/demo/sft_train.jsonl"), "eval_size": 20},
            "arms": ["sft"],
            "seed": 7,
        }
    )
    tokenizer, _ = resolve_and_load_tokenizer(ModelSection(name_or_path="demo-tiny"))
    sft_rows, _ = heldout_rows(cfg, tokenizer)
    _, arm_eval, *_ = load_for_run(DataSection(**plan(cfg)["sft"]["data"]), methods.get("sft").task, tokenizer, 256)
    assert len(sft_rows) == 20 and sft_rows == list(arm_eval)  # seed 7 carve, not the default 42
