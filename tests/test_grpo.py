"""GRPO (trainers/grpo.py) and its rewards (trainers/rewards.py): the demo recipe raises the held-out reward of the
random-init demo model; every reward scores as documented; a wrong reward entry is one sentence; a python reward is
refused on a shared Space."""

import json
import sys
import types

import pytest
import yaml
from helpers import RECIPES, ROOT, read_summary, train

from core.errors import ConfigError
from trainers import rewards

RECIPE = RECIPES / "demo-grpo.yaml"
EVAL = ROOT / "data" / "demo" / "grpo_eval.jsonl"


def one_sentence(message: str) -> str:
    assert "\n" not in message and message.endswith(".") and len(message) < 300, message
    return message


def refusal(entries) -> str:
    with pytest.raises(ConfigError) as caught:
        rewards.check(entries)
    return one_sentence(str(caught.value))


def sampled_reward(model_dir, adapter, recipe: dict, rows: list[dict], n: int = 8, seed: int = 0) -> float:
    """Mean weighted reward of `n` replies per held-out prompt, sampled as GRPO samples (the recipe's temperature,
    no top-k / top-p, its max_completion_length) from a fixed seed, scored by the recipe's own rewards."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    funcs, weights = rewards.build(recipe["rewards"], tokenizer, recipe["training"])
    torch.manual_seed(seed)
    scores = []
    for row in rows:
        inputs = tokenizer.apply_chat_template(
            row["prompt"], add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )
        with torch.no_grad():
            out = model.generate(
                **inputs,
                do_sample=True,
                temperature=recipe["training"]["temperature"],
                top_k=0,
                top_p=1.0,
                max_new_tokens=recipe["training"]["max_completion_length"],
                num_return_sequences=n,
                pad_token_id=tokenizer.pad_token_id,
            )
        ids = [o[inputs["input_ids"].shape[1] :].tolist() for o in out]
        replies = [[{"role": "assistant", "content": tokenizer.decode(i, skip_special_tokens=True)}] for i in ids]
        kwargs = {"prompts": [row["prompt"]] * n, "completions": replies, "completion_ids": ids}
        per_reward = [f(**kwargs, solution=[row["solution"]] * n) for f in funcs]
        scores += [sum(w * r[i] for w, r in zip(weights, per_reward, strict=True)) for i in range(n)]
    return sum(scores) / len(scores)


def test_grpo_raises_the_held_out_reward_of_the_demo_model(home, demo_model_dir, tmp_path, monkeypatch):
    """The shipped recipe: 40 steps, about 20 s on 2 CPU cores.  Base and after are measured the same way on
    grpo_eval.jsonl (prompts never seen in training): 8 replies per prompt sampled from seed 0 as GRPO samples them
    (the recipe's temperature 2.0, no top-k / top-p, 8 new tokens), scored by the recipe's rewards (0.5 x "has a
    number" + 0.5 x "opens with a number").  Measured on 2 cores: base 0.092 -> after 0.425 (the recipe's seed 42),
    0.39 to 0.44 over training seeds 1-5; the trainer's own eval_reward 0.07 -> 0.42 (0.37 to 0.51 over the seeds).
    Asked: a rise of 0.2 on both."""
    monkeypatch.chdir(ROOT)
    recipe = yaml.safe_load(RECIPE.read_text())
    rows = [json.loads(line) for line in EVAL.read_text().splitlines()]
    base = sampled_reward(demo_model_dir, None, recipe, rows)

    run_dir = tmp_path / "run"
    assert train(RECIPE, run_dir) == 0
    summary = read_summary(run_dir)
    assert summary["status"] == "succeeded" and summary["global_step"] == 40
    assert summary["loss_mask"] == "completion_only"
    after = sampled_reward(demo_model_dir, run_dir / "adapter", recipe, rows)
    assert after >= base + 0.2, (base, after)

    # the trainer's own held-out evaluation (run.py evaluates before and after) agrees
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    before = next(r["eval_reward"] for r in metrics if r.get("step") == 0 and "eval_reward" in r)
    assert summary["final_metrics"]["eval_reward"] >= before + 0.2, (before, summary["final_metrics"])
    logged = next(r for r in metrics if "loss" in r)
    for key in ("reward", "reward_std", "rewards/regex/mean", "rewards/regex_2/mean", "completions/mean_length"):
        assert key in logged, key


# --- the rewards, one by one -------------------------------------------------------------------------------------


def _reply(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_regex_searches_the_reply_and_weights_and_names_follow_the_config():
    funcs, weights = rewards.build(
        [
            {"name": "regex", "pattern": r"\d", "weight": 0.5},
            {"name": "regex", "pattern": r"^\d+$", "reward": 2.0},
        ]
    )
    assert [f.__name__ for f in funcs] == ["regex", "regex_2"] and weights == [0.5, 1.0]
    replies = [_reply("it is 7"), _reply("7"), _reply("seven")]
    assert funcs[0](completions=replies) == [1.0, 1.0, 0.0]  # found anywhere in the reply (re.search)
    assert funcs[1](completions=replies) == [0.0, 2.0, 0.0]  # anchored: the whole reply
    assert funcs[1](completions=["7", "no"]) == [2.0, 0.0]  # plain-text data: replies are strings


def test_stock_rewards_score_as_trl_does():
    funcs, _ = rewards.build(
        [
            {"name": "think_format"},
            {"name": "repetition_penalty", "ngram_size": 2},
            {"name": "overlong"},  # training's max_completion_length, a quarter of it soft
        ],
        training={"max_completion_length": 8},
    )
    think, repetition, overlong = funcs
    assert think(completions=[_reply("<think>a</think>b"), _reply("b")]) == [1.0, 0.0]
    assert repetition(completions=[], completion_ids=[[1, 2, 3, 4], [5, 5, 5, 5, 5]]) == [0.0, -0.75]
    assert overlong(completions=[], completion_ids=[[1] * 6, [1] * 7, [1] * 8, [1] * 9]) == [0.0, -0.5, -1.0, -1.0]


def test_reward_model_scores_prompt_and_reply_with_the_reward_runs_scorer(monkeypatch):
    seen = {}

    class Scorer:
        def score(self, prompts, completions):
            seen["calls"] = (prompts, completions)
            return [len(c if isinstance(c, str) else c[0]["content"]) / 10 for c in completions]

    def load_scorer(path_or_id):
        seen["model"] = path_or_id
        return Scorer()

    # a stand-in for trainers/reward.py's load_scorer (the reward-model method's module)
    monkeypatch.setitem(sys.modules, "trainers.reward", types.SimpleNamespace(load_scorer=load_scorer))
    (func,), weights = rewards.build([{"name": "reward_model", "model": "runs/rm", "weight": 2}])
    prompt = [{"role": "user", "content": "hi"}]
    assert func(prompts=[prompt, "plain"], completions=[_reply("hello"), "ok"]) == [0.5, 0.2]
    assert seen["model"] == "runs/rm" and weights == [2.0]
    assert seen["calls"][0] == [prompt, "plain"]  # conversations and plain text reach the scorer as they are


def test_reward_model_reward_scores_with_a_trained_reward_run(home, tmp_path, monkeypatch):
    from trainers.reward import load_scorer

    monkeypatch.chdir(ROOT)
    run_dir = tmp_path / "rm"
    assert train(RECIPES / "demo-reward.yaml", run_dir, "training.max_steps=2", "data.eval_source=null") == 0
    (func,), _ = rewards.build([{"name": "reward_model", "model": str(run_dir)}])
    prompts = [[{"role": "user", "content": "Please greet Ada."}]] * 2
    replies = [_reply("Hello, Ada! Happy to help!"), _reply("Hello, Ada!")]
    scores = func(prompts=prompts, completions=replies)
    assert scores == load_scorer(run_dir).score(prompts, replies) and all(isinstance(s, float) for s in scores)


def test_python_reward_runs_the_users_function(tmp_path):
    path = tmp_path / "my_rewards.py"
    path.write_text("def short(completions, **kwargs):\n    return [1.0 if len(c) < 3 else 0.0 for c in completions]\n")
    (func,), _ = rewards.build([{"name": "python", "path": f"{path}:short"}])
    assert func.__name__ == "short" and func(prompts=["q", "q"], completions=["ab", "abcd"]) == [1.0, 0.0]
    with pytest.raises(ConfigError, match="has no function 'long'"):
        rewards.build([{"name": "python", "path": f"{path}:long"}])
    with pytest.raises(ConfigError, match="does not exist"):
        rewards.build([{"name": "python", "path": f"{tmp_path}/missing.py:short"}])


@pytest.mark.skipif(not rewards.math_verify_available(), reason="accuracy needs math-verify")
def test_accuracy_checks_answers_against_the_solution():
    (func,), _ = rewards.build([{"name": "accuracy"}])
    replies = [_reply(r"The answer is $\boxed{7}$"), _reply(r"$\boxed{8}$"), _reply("7")]
    assert func(completions=replies, solution=["7", "7", None]) == [1.0, 0.0, None]  # no solution: skipped
    with pytest.raises(ConfigError, match="has none"):
        rewards.build([{"name": "accuracy"}], data_columns=("prompt",))


# --- refusals: one sentence each -----------------------------------------------------------------------------------


def test_reward_entries_are_refused_in_one_sentence_that_says_what_to_change():
    unknown = refusal([{"name": "acuracy"}])
    assert "did you mean accuracy" in unknown and all(name in unknown for name in rewards.NAMES)
    assert "needs 'pattern'" in refusal([{"name": "regex"}])
    assert "not a valid regular expression" in refusal([{"name": "regex", "pattern": "(unclosed"}])
    assert "has no option 'patern'" in refusal([{"name": "regex", "patern": "x"}])
    assert "my_rewards.py:score" in refusal([{"name": "python", "path": "rewards.py"}])
    assert "'weight' must be a number" in refusal([{"name": "think_format", "weight": "high"}])
    assert "0 or below" in refusal([{"name": "repetition_penalty", "max_penalty": 1}])
    assert "must not exceed" in refusal([{"name": "overlong", "max_completion_length": 8, "soft_punish_cache": 9}])
    assert "needs 'model'" in refusal([{"name": "reward_model"}])
    assert "must be a list" in refusal({"name": "accuracy"})
    assert "must be a mapping" in refusal(["accuracy"])
    if not rewards.math_verify_available():
        assert "pip install math-verify" in refusal([{"name": "accuracy"}])
    # defaults are filled in, so the resolved config.yaml says what ran
    assert rewards.check([{"name": "regex", "pattern": "x"}]) == [{"name": "regex", "pattern": "x", "reward": 1.0}]


def test_python_reward_is_refused_on_a_shared_space(home, monkeypatch, tmp_path):
    from jobs import access
    from jobs.store import Store

    store = Store(home / "jobs.db")
    config = yaml.safe_load(RECIPE.read_text())
    config["rewards"] = [{"name": "python", "path": "my_rewards.py:score"}]
    monkeypatch.setenv("STUDIO_MULTI_USER", "0")
    access.check_config(config, "local", home, store)  # the CLI / a single-user app: allowed
    monkeypatch.setenv("STUDIO_MULTI_USER", "1")
    with pytest.raises(access.AccessError) as caught:
        access.check_config(config, "alice", home, store)
    assert one_sentence(str(caught.value)) == access.PYTHON_REWARD
    access.check_config(yaml.safe_load(RECIPE.read_text()), "alice", home, store)  # the stock rewards: fine
    config["rewards"] = [{"name": "reward_model", "model": str(tmp_path)}]  # someone else's folder
    with pytest.raises(access.AccessError, match="Local paths"):
        access.check_config(config, "alice", home, store)
