"""The comparison report says what it scored: whitespace replies are not "(empty)", reward-accuracy ties are not
wrong preferences, and held-out rows cut to the evaluation's max_length are counted and described."""

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(demo_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(demo_model_dir).eval(), AutoTokenizer.from_pretrained(demo_model_dir)


def user(text):
    return [{"role": "user", "content": text}]


def assistant(text):
    return [{"role": "assistant", "content": text}]


def report_data(base_metrics, base_generations, arm_metrics, arm_generations, prompts, **settings):
    return {
        "base_model": "demo-tiny",
        "base": {"metrics": base_metrics, "generations": base_generations},
        "arms": {
            "dpo": {
                "label": "DPO",
                "status": "succeeded",
                "metrics": arm_metrics,
                "generations": arm_generations,
                "cost": {},
            }
        },
        "prompts": prompts,
        "settings": {
            "seed": 42,
            "peft": None,
            "held_out": {"sft_rows": 0, "preference_pairs": 4},
            "evaluation": {"beta": 0.1, "max_new_tokens": 24, "max_length": 512},
            **settings,
        },
    }


def table_row(md: str, label: str) -> list[str]:
    line = next(line for line in md.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_a_reply_of_whitespace_is_shown_as_whitespace_and_only_a_bare_end_token_is_empty(tiny):
    import torch

    from evaluation import render
    from evaluation.metrics import generations

    model, tok = tiny
    newline = tok("\n", add_special_tokens=False)["input_ids"]
    hello = tok("Hello, Amir!", add_special_tokens=False)["input_ids"]
    replies = iter([newline * 24, [tok.eos_token_id], hello + [tok.eos_token_id]])

    class Scripted(torch.nn.Module):
        """Generates the next scripted token ids after the prompt (what a model that learned them would)."""

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.generation_config = model.generation_config

        def generate(self, input_ids, **kwargs):
            return torch.cat([input_ids, torch.tensor([next(replies)])], dim=1)

    prompts = [user("Please greet Amir."), user("Repeat after me: red"), user("Please greet Amir.")]
    gens = generations(Scripted(), tok, prompts, max_new_tokens=24)
    assert [g["tokens"] for g in gens] == [24, 1, len(hello) + 1]
    assert [g["reply"] for g in gens] == ["\n" * 24, "", "Hello, Amir!"]

    mean = sum(g["tokens"] for g in gens) / 3
    data = report_data(
        {"mean_reply_tokens": mean}, [g["reply"] for g in gens], {"mean_reply_tokens": 1.0}, ["", "", ""], prompts
    )
    md = render.markdown(data)
    assert table_row(md, "base (no training)")[8] == f"{mean:.1f}"
    whitespace = "(only whitespace: 24 line breaks " + "⏎" * 16 + "…)"
    assert table_row(md, "Please greet Amir.") == ["Please greet Amir.", whitespace, "(empty)"]
    assert table_row(md, "Repeat after me: red") == ["Repeat after me: red", "(empty)", "(empty)"]
    assert "(empty) is a reply of only the end token" in md
    assert "Mean reply tokens counts every generated token, the end token included" in md
    assert render._cell(" \n\t") == "(only whitespace: 1 space, 1 line break, 1 tab ␣⏎⇥)"


def test_a_reward_tie_is_not_a_wrong_preference_and_the_rule_is_stated():
    import torch

    from evaluation import render
    from evaluation.metrics import preference_metrics

    reference = [(-3.0, -5.0), (-7.0, -2.0), (-1.0, -1.5), (-4.0, -4.0)]
    policy = [(-2.0, -5.0), (-7.0, -2.0), (-1.0, -0.5), (-3.0, -4.5)]  # reward margins +0.1, 0 (tie), -0.1, +0.15
    trained = preference_metrics(policy, reference, beta=0.1)
    assert trained["reward_accuracy"] == pytest.approx(2 / 3)  # 2 of the 3 decided pairs, not 2 of 4
    assert trained["reward_ties"] == 1 and trained["pairs"] == 4
    assert trained["reward_margin"] == pytest.approx((0.1 + 0 - 0.1 + 0.15) / 4)
    # TRL's DPOTrainer rewards/accuracies: (chosen_rewards > rejected_rewards).float().mean(), ties count as wrong
    chosen = 0.1 * (torch.tensor([c for c, _ in policy]) - torch.tensor([c for c, _ in reference]))
    rejected = 0.1 * (torch.tensor([r for _, r in policy]) - torch.tensor([r for _, r in reference]))
    assert trained["reward_accuracy_trl"] == pytest.approx((chosen > rejected).float().mean().item()) == 0.5

    base = preference_metrics(reference, reference, beta=0.1)  # the base against itself: every pair a tie
    assert "reward_accuracy" not in base and base["reward_ties"] == 4 and base["reward_accuracy_trl"] == 0
    assert base["reward_margin"] == 0

    md = render.markdown(report_data(base, [], trained, [], []))
    assert table_row(md, "base (no training)")[6] == "— (4 tied)"
    assert table_row(md, "DPO")[6] == "0.67 (1 tied)"
    assert "Reward accuracy vs base is over the decided pairs: a pair whose implicit reward margin is exactly 0" in md
    assert "TRL's rewards/accuracies in the training logs counts ties as wrong" in md


def test_rows_longer_than_max_length_are_counted_cut_the_same_on_both_sides_or_excluded(tiny):
    from evaluation.metrics import EXCLUDED, PROMPT_CUT, encode_pair, heldout_nll, pair_logprobs, preference_metrics

    model, tok = tiny
    short = {"messages": user("What is the opposite of lose?") + assistant("The opposite of lose is win.")}
    long_prompt = {"messages": user("Please greet Amir. " * 10) + assistant("Hello, Amir!")}
    long_reply = {"messages": user("Please greet Amir.") + assistant("Hello, Amir! " * 20)}
    nll = heldout_nll(model, tok, [short, long_prompt, long_reply], max_length=40)
    assert (nll["rows"], nll["rows_prompt_cut"], nll["rows_reply_cut"], nll["max_length"]) == (3, 1, 1, 40)
    tail = nll["tokens"] - heldout_nll(model, tok, [short, long_prompt], 40)["tokens"]
    assert 30 < tail < 40  # the tail of the long reply is still scored, without its prompt

    pairs = [
        {"prompt": user("Repeat after me: red"), "chosen": assistant("You said: red. Happy to help!"),
         "rejected": assistant("You said: red.")},
        {"prompt": user("Please greet Amir. " * 10), "chosen": assistant("Hello, Amir! Happy to help!"),
         "rejected": assistant("Hello, Amir!")},
        {"prompt": user("Please greet Amir."), "chosen": assistant("Hello, Amir! " * 20),
         "rejected": assistant("Hello, Amir!")},
    ]  # fmt: skip
    (c_ids, c_mask), (r_ids, r_mask), cut = encode_pair(tok, *pairs[1].values(), max_length=40)
    assert cut == PROMPT_CUT and len(c_ids) == 40 and len(r_ids) < 40
    prompt_tail = c_mask.index(1) - 1  # both replies follow the same prompt tokens
    assert c_ids[:prompt_tail] == r_ids[:prompt_tail] and r_mask.index(1) == c_mask.index(1)

    scores = pair_logprobs(model, tok, pairs, max_length=40)
    assert [s.cut for s in scores] == [None, PROMPT_CUT, EXCLUDED]
    out = preference_metrics(scores, scores)
    assert (out["pairs"], out["pairs_prompt_cut"], out["pairs_excluded"]) == (2, 1, 1)
    assert out["reward_ties"] == 2 and out["logprob_margin"] == pytest.approx(
        sum(s.chosen - s.rejected for s in scores[:2]) / 2
    )


def test_the_report_says_how_many_held_out_rows_were_cut_and_what_training_does(demo_model_dir, tmp_path):
    from evaluation.compare import report_folder

    sft_eval = [
        {"messages": user("What is the opposite of lose?") + assistant("The opposite of lose is win.")},
        {"messages": user("Please greet Fatima.") + assistant("Hello, Fatima!")},
        {"messages": user("Please greet Amir. " * 10) + assistant("Hello, Amir!")},
        {"messages": user("Please greet Amir.") + assistant("Hello, Amir! " * 20)},
    ]
    pref_eval = [
        {"prompt": user("Repeat after me: red"), "chosen": assistant("You said: red. Happy to help!"),
         "rejected": assistant("You said: red.")},
        {"prompt": user("Please greet Amir. " * 10), "chosen": assistant("Hello, Amir! Happy to help!"),
         "rejected": assistant("Hello, Amir!")},
        {"prompt": user("Please greet Amir."), "chosen": assistant("Hello, Amir! " * 20),
         "rejected": assistant("Hello, Amir!")},
    ]  # fmt: skip
    for name, rows in (("sft_eval", sft_eval), ("dpo_eval", pref_eval)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {
        "model": {"name_or_path": "demo-tiny"},
        "sft_data": {
            "source": str(ROOT / "data/demo/sft_train.jsonl"),
            "eval_source": str(tmp_path / "sft_eval.jsonl"),
        },
        "preference_data": {
            "source": str(ROOT / "data/demo/dpo_train.jsonl"),
            "eval_source": str(tmp_path / "dpo_eval.jsonl"),
        },
        "arms": ["sft", "dpo"],
        "training": {"max_length": 64},
        "evaluation": {"generations": 1, "max_new_tokens": 2, "max_length": 40},
    }
    (tmp_path / "comparison.yaml").write_text(yaml.safe_dump(cfg))
    for arm in ("sft", "dpo"):  # no training here: the base is scored, and the report written
        (tmp_path / "runs" / arm).mkdir(parents=True)
        (tmp_path / "runs" / arm / "summary.json").write_text(json.dumps({"status": "failed", "error": "stopped"}))
    data = report_folder(tmp_path)

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["settings"]["truncation"] == {
        "max_length": 40,
        "training": {"sft": {"max_length": 64, "keeps": "start"}, "dpo": {"max_length": 64, "keeps": "start"}},
        "sft_rows": {"prompt_cut": 1, "reply_cut": 1},
        "preference_pairs": {"scored": 2, "prompt_cut": 1, "excluded": 1},
    }
    base = report["base"]["metrics"]
    assert (base["rows"], base["rows_prompt_cut"], base["rows_reply_cut"]) == (4, 1, 1)
    assert (base["pairs"], base["pairs_prompt_cut"], base["pairs_excluded"], base["reward_ties"]) == (2, 1, 1, 2)
    assert data["settings"]["held_out"] == {"sft_rows": 4, "preference_pairs": 3}

    md = (tmp_path / "report.md").read_text()
    assert "Held-out rows longer than max_length 40 tokens are cut from the left here, keeping the reply:" in md
    assert (
        "- Held-out NLL: 2 of 4 held-out instruction rows were longer than max_length 40 tokens: 1 had their prompt "
        "cut from the left and their whole reply scored; 1 lost their whole prompt and the start of their reply (a "
        "reply alone reaches 40 tokens): the rest of the reply is scored without its prompt. SFT training "
        "(max_length 64) keeps the first 64 tokens of a row instead.\n"
    ) in md
    assert (
        "- Preference metrics: 2 of 3 held-out pairs were longer than max_length 40 tokens: 1 had their prompt cut "
        "from the left, by the same tokens before the chosen and the rejected reply, and both replies scored whole; "
        "1 is excluded, because a reply alone reaches 40 tokens and no prompt would be left to compare the replies "
        "after: the preference and reward columns are over the other 2 pairs. DPO training (max_length 64, "
        "truncation keep_start) keeps the prompt and the start of each reply instead, and drops pairs whose prompt "
        "alone reaches 64 tokens.\n"
    ) in md
    assert table_row(md, "base (no training)")[6] == "— (2 tied)"
