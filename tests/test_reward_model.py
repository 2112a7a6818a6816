"""The reward model (method: reward): it learns the demo preference, scores held-out pairs through the scorer
(trainers/reward.load_scorer), `python -m evaluation score` reports its pair accuracy or refuses in one sentence,
its pushed card loads it as a sequence classifier, and the doctor counts exactly the pairs RewardTrainer keeps."""

import contextlib
import io
import json
import re

import pytest
from fakehub.fixture import ALICE
from helpers import RECIPES, ROOT, read_summary, train
from transformers import AutoTokenizer

from core.runfolder import RunFolder
from data import doctor, sources, tokens
from evaluation.score import pair_summary, wilson
from trainers import methods, models
from trainers.config import DataSection

slow = pytest.mark.slow  # the tests that use `runs` (the demo reward model and an SFT run, trained once per module)
DEMO_EVAL = ROOT / "data" / "demo" / "dpo_eval.jsonl"
SFT_EVAL = ROOT / "data" / "demo" / "sft_eval.jsonl"
PAIRS = [json.loads(line) for line in DEMO_EVAL.read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, demo_model_dir):
    """The shipped demo-reward recipe as is (held-out: data/demo/dpo_eval.jsonl), and a 2-step SFT run."""
    root = tmp_path_factory.mktemp("reward")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)  # the recipes name the demo data relative to the repo root
        assert train(RECIPES / "demo-reward.yaml", root / "reward") == 0
        assert train(RECIPES / "demo-sft.yaml", root / "sft", "training.max_steps=2", "data.eval_source=null") == 0
    return root / "reward", root / "sft"


def score_cli(*args) -> tuple[int, str, str]:
    from evaluation.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["score", *map(str, args)])
    return code, out.getvalue(), err.getvalue()


@slow
def test_the_reward_model_learns_the_demo_preference_on_held_out_pairs(runs):
    from trainers.reward import load_scorer

    run, _ = runs
    summary = read_summary(run)
    assert summary["status"] == "succeeded" and summary["method"] == "reward" and summary["loss_mask"] == "pair"
    adapter = RunFolder(run).adapter()
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_CLS" and "score" in config["modules_to_save"]
    from safetensors.torch import load_file

    saved = load_file(adapter / "adapter_model.safetensors")
    assert any(".score." in key for key in saved), "the trained head is in the saved adapter"
    # what RewardTrainer logs (the method table's `charted`) is in metrics.jsonl
    rows = [r for r in RunFolder(run).metrics() if "loss" in r]
    assert rows and all({"accuracy", "margin"} <= set(r) for r in rows)

    scorer = load_scorer(run)
    pairs = scorer.score_pairs(
        [p["prompt"] for p in PAIRS], [p["chosen"] for p in PAIRS], [p["rejected"] for p in PAIRS]
    )
    result = pair_summary(pairs)
    # Measured: 30 of 30 held-out pairs (accuracy 1.000, Wilson 95% 0.886-1.000), mean margin about 6.4.
    assert result["pairs"] == 30 and result["accuracy"] >= 0.9, result
    # the scorer reads the model as TRL evaluated it: the same held-out accuracy and margin
    final = summary["final_metrics"]
    assert final["eval_accuracy"] == pytest.approx(result["wins"] / result["pairs"])
    margins = [chosen - rejected for chosen, rejected in pairs]
    batches = [margins[i : i + 8] for i in range(0, len(margins), 8)]  # TRL logs the mean of its eval batches' means
    assert final["eval_margin"] == pytest.approx(sum(sum(b) / len(b) for b in batches) / len(batches), abs=1e-3)
    # one reply, as a string or as a message list; the adapter folder scores the same as the run folder
    prompt, good = PAIRS[0]["prompt"], PAIRS[0]["chosen"]
    as_text = scorer.score([prompt], [good[0]["content"]])
    assert as_text == pytest.approx(scorer.score([prompt], [good]), abs=1e-5)
    assert as_text == pytest.approx([pairs[0][0]], abs=1e-5)
    assert load_scorer(adapter, device="cpu").score([prompt], [good]) == pytest.approx(as_text, abs=1e-5)


def test_wilson_interval_and_ties_are_not_wrong():
    lo, hi = wilson(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)  # the textbook value
    assert wilson(30, 30)[1] == 1.0 and wilson(0, 5)[0] == 0.0 and wilson(0, 0) is None
    s = pair_summary([(1.0, 1.0), (2.0, 1.0), (0.0, 1.0), (3.0, 3.0)])
    assert (s["wins"], s["losses"], s["ties"], s["accuracy"]) == (1, 1, 2, 0.5)
    assert pair_summary([(1.0, 1.0)])["accuracy"] is None


@slow
def test_evaluation_score_reports_accuracy_scores_rows_and_refuses_in_one_sentence(runs, tmp_path):
    run, sft = runs
    code, out, err = score_cli(run, "--data", DEMO_EVAL)
    assert code == 0, err
    assert re.search(r"Pair accuracy: 1\.000 \(30 of 30 decided pairs .*95% interval 0\.886-1\.000, Wilson\)", out)
    assert "Ties (equal scores, not counted as wrong): 0 of 30" in out

    code, out, _ = score_cli(run, "--data", DEMO_EVAL, "--json")
    data = json.loads(out)
    assert code == 0 and data["kind"] == "preference" and len(data["rows"]) == 30
    assert data["accuracy"] == 1.0 and data["accuracy_ci95"][1] == 1.0 and data["ties"] == 0
    assert all(r["chosen"] > r["rejected"] and r["preferred"] == "chosen" for r in data["rows"])

    code, out, _ = score_cli(run, "--data", SFT_EVAL, "--json")  # instruction rows: one score each
    data = json.loads(out)
    assert code == 0 and data["kind"] == "sft" and data["rows_scored"] == len(data["rows"]) == 40

    prompts_only = tmp_path / "prompts.jsonl"
    prompts_only.write_text(json.dumps({"prompt": [{"role": "user", "content": "hi"}]}) + "\n")
    cases = {
        "not a reward model (it was trained with SFT)": (sft, DEMO_EVAL),
        "not a reward model (its adapter's task type is CAUSAL_LM": (sft / "adapter", DEMO_EVAL),
        "does not exist": (tmp_path / "nowhere", DEMO_EVAL),
        "holds no reward model": (tmp_path, DEMO_EVAL),
        "The data file": (run, tmp_path / "missing.jsonl"),
        "prompts without replies": (run, prompts_only),
    }
    for expected, (target, data_file) in cases.items():
        code, out, err = score_cli(target, "--data", data_file)
        lines = err.strip().splitlines()
        assert code == 1 and out == "" and len(lines) == 1 and lines[0].startswith("error: "), (expected, err)
        assert expected in lines[0] and "Traceback" not in err


@slow
def test_reward_card_has_its_tags_and_its_snippet_scores_a_reply(runs, fake_hub_env, monkeypatch, tmp_path):
    from huggingface_hub import ModelCard

    from hub.__main__ import main as hub_main
    from trainers.reward import load_scorer

    run, _ = runs
    monkeypatch.setenv("HF_TOKEN", ALICE)
    with contextlib.redirect_stdout(io.StringIO()):
        assert hub_main(["push", str(run), "--repo-id", "alice/demo-reward"]) == 0
    card = ModelCard.load("alice/demo-reward")
    method = methods.get("reward")
    assert {"trl", *method.card_tags, "lora", "fine-tune-studio"} <= set(card.data.tags)
    assert card.data.pipeline_tag == "text-classification" and card.data.library_name == "peft"
    assert "RewardTrainer" in card.text and "Held-out pair accuracy" in card.text and "perplexity" not in card.text
    load, usage = re.findall(r"```python\n(.*?)```", card.text, flags=re.S)[:2]
    assert "AutoModelForSequenceClassification" in load and "PeftModel.from_pretrained" in load
    assert "CausalLM" not in load + usage and "generate(" not in usage

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(load + usage, "card", "exec"), {})  # noqa: S102 - the card's own code
    messages = [
        {"role": "user", "content": "Hello! What can you do?"},
        {"role": "assistant", "content": "I can answer questions. Happy to help!"},
    ]
    local = load_scorer(run).score([messages[:1]], [messages[1:]])[0]
    assert float(out.getvalue().strip()) == pytest.approx(local, abs=1e-3)
    # the scorer loads the pushed reward model by its Hub id too
    assert load_scorer("alice/demo-reward").score([messages[:1]], [messages[1:]])[0] == pytest.approx(local, abs=1e-5)


def _kept_by_reward_trainer(tok, demo_model_dir, ds, max_length, out_dir) -> int:
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    args = RewardConfig(output_dir=str(out_dir), max_length=max_length, use_cpu=True, bf16=False, report_to="none")
    model = AutoModelForSequenceClassification.from_pretrained(demo_model_dir, num_labels=1)
    trainer = RewardTrainer(model=model, args=args, train_dataset=doctor.strip_internal(ds), processing_class=tok)
    return len(trainer.train_dataset)


@pytest.mark.parametrize("name", ["dpo_en.json", "dpo_zh.json", "long_replies"])
def test_the_doctor_counts_exactly_the_pairs_reward_trainer_keeps(name, demo_model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    if name == "long_replies":  # replies that alone fill max_length: no prompt shortening saves these pairs
        path = tmp_path / "long.jsonl"
        rows = [
            {
                "prompt": [{"role": "user", "content": f"Question {i}: " + "why? " * (5 + 20 * (i % 3))}],
                "chosen": [{"role": "assistant", "content": "Because. " * (2 + 25 * (i % 4 == 0))}],
                "rejected": [{"role": "assistant", "content": "No. " * (3 + 60 * (i % 5 == 1))}],
            }
            for i in range(20)
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path = ROOT / "tests" / "fixtures" / "realworld" / name
    max_length = 96 if name == "long_replies" else 256
    section = DataSection(source=str(path), eval_size=0)
    task = methods.get("reward").task
    training = {"max_length": max_length}
    plan = methods.get("reward").build_module().token_plan(tok, training, "start")
    assert plan.drop_overlong and plan.max_length == max_length

    raw = sources.load(str(path))
    unshortened = tokens.Plan(max_length=max_length, drop_overlong=True, shorten_prompts=False)
    ds, report, _ = doctor.examine(raw, task, section, "training", tok, plan=unshortened)
    converted, _, _ = doctor.examine(raw, task, section, "training")  # every pair, as converted, unmeasured
    assert report.rows_kept < report.rows, "some pairs are longer than max_length"
    assert _kept_by_reward_trainer(tok, demo_model_dir, converted, max_length, tmp_path) == report.rows_kept

    ds, report, _ = doctor.examine(raw, task, section, "training", tok, plan=plan)  # prompts shortened first
    assert _kept_by_reward_trainer(tok, demo_model_dir, ds, max_length, tmp_path) == report.rows_kept


@slow
def test_a_reward_model_starts_from_an_sft_adapter_with_a_fresh_head(runs, tmp_path, demo_model_dir):
    import torch

    from trainers.reward import load_scorer

    _, sft = runs
    out = tmp_path / "rm-from-sft"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        rc = train(
            RECIPES / "demo-reward.yaml", out, f"init_from={sft}", "training.max_steps=2", "data.eval_source=null"
        )
    assert rc == 0, (out / "train.log").read_text()[-2000:]
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_CLS" and "score" in config["modules_to_save"]
    assert len(load_scorer(out).score([PAIRS[0]["prompt"]], [PAIRS[0]["chosen"]])) == 1

    # the policy's LoRA weights are what the reward model starts from (not a fresh adapter); its head is new
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    from trainers.config import ModelSection

    reward = methods.get("reward")
    hw = {"device": "cpu", "bf16": False}
    base = models.load_model(ModelSection(name_or_path="demo-tiny"), hw, str(demo_model_dir), method=reward)
    model, _ = models.apply_init_from(base, str(sft), full_finetune=False, method=reward)
    started = get_peft_model_state_dict(model)
    policy = load_file(sft / "adapter" / "adapter_model.safetensors")
    lora = [k for k in policy if "lora_B" in k]
    assert lora and all(torch.equal(started[k], policy[k]) for k in lora)
    assert "base_model.model.score.weight" in started and "score" in model.peft_config["default"].modules_to_save
    assert any(p.requires_grad for n, p in model.named_parameters() if "score" in n)


@slow
def test_a_policy_does_not_start_from_a_reward_model(runs, tmp_path, capsys):
    run, _ = runs
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        rc = train(RECIPES / "demo-dpo.yaml", tmp_path / "dpo", f"init_from={run}", "training.max_steps=1")
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc != 0 and last.startswith("error: init_from") and "not a policy" in last


def test_models_load_the_methods_class_and_adapter_task(demo_model_dir, tmp_path):
    from trainers.config import ModelSection, PeftSection

    hw = {"device": "cpu", "bf16": False}
    reward = methods.get("reward")
    model = models.load_model(
        ModelSection(name_or_path="demo-tiny"), hw, str(demo_model_dir), method=reward, pad_token_id=0
    )
    assert type(model).__name__ == "LlamaForSequenceClassification" and model.config.num_labels == 1
    assert model.config.pad_token_id == 0
    policy = models.load_model(
        ModelSection(name_or_path="demo-tiny"), hw, str(demo_model_dir), method=methods.get("sft")
    )
    assert type(policy).__name__ == "LlamaForCausalLM"
    section = PeftSection(modules_to_save=["norm"])
    assert str(models.peft_config(section, reward).task_type).endswith("SEQ_CLS")
    assert str(models.peft_config(section).task_type).endswith("CAUSAL_LM")

    # an adapter saved without its head is refused, not published as a scorer with a random head
    from peft import get_peft_model

    peft_model = get_peft_model(model, models.peft_config(PeftSection(), reward))
    peft_model.save_pretrained(tmp_path / "ok")
    models.check_saved_head(peft_model, tmp_path / "ok")
    from safetensors.torch import load_file, save_file

    weights = load_file(tmp_path / "ok" / "adapter_model.safetensors")
    save_file({k: v for k, v in weights.items() if ".score." not in k}, tmp_path / "ok" / "adapter_model.safetensors")
    with pytest.raises(Exception, match="without its scoring head"):
        models.check_saved_head(peft_model, tmp_path / "ok")


@slow
def test_chat_tools_refuse_a_reward_model_in_one_sentence(runs):
    from core.errors import StudioError
    from evaluation.evaluate import resolve_model
    from hub.merge import check_mergeable

    run, _ = runs
    for attempt in (lambda: resolve_model(str(run)), lambda: resolve_model(str(run / "adapter"))):
        with pytest.raises(StudioError, match="is a reward model: it scores replies") as caught:
            attempt()
        assert "python -m evaluation score" in str(caught.value) and str(caught.value).count(". ") == 0
    with pytest.raises(StudioError, match="reward model"):
        check_mergeable({"method": "reward", "peft": {"type": "lora"}, "model": {}})
