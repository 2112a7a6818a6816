"""The comparison's judges end to end (evaluation/judging.py): the pairwise LLM judge through a loopback server
that speaks the Inference Providers chat-completions protocol, the verifiable judge, and the verdict they lead to."""

import pytest
from fakeinference import ChatRequest, FakeInference

from core.errors import ConfigError
from evaluation import judging
from evaluation.judges import llm

TOKEN = "hf_signedInUserToken0123456789abcdefXYZ"
N = 12
PROMPTS = [[{"role": "user", "content": f"What is {i} + {i}?"}] for i in range(N)]
REFERENCES = [f"The answer is {2 * i}." for i in range(N)]
REPLIES = {
    "base": ["I do not know." for _ in range(N)],
    "prompting": [f"The answer is {2 * i + 1}." for i in range(N)],  # right shape, wrong number
    "sft": list(REFERENCES),  # right
}
LABELS = {"base": "base", "prompting": "Prompting", "sft": "SFT"}
COSTS = {"base": {"wall_time_s": 0}, "prompting": {"wall_time_s": 0}, "sft": {"wall_time_s": 30, "trainable_params": 9}}


@pytest.fixture
def fake(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite is offline; the loopback judge is not
    monkeypatch.setattr(llm, "RETRY_DELAY_S", 0.0)
    with FakeInference(tokens={TOKEN}) as server:
        yield server


def correct_first(request: ChatRequest) -> str:
    """A judge that prefers the correct reply whichever order it is shown in, and ties two wrong ones."""
    i = next(i for i in range(N) if f"What is {i} + {i}?" in request.text)
    shown = [r for r in (REPLIES["sft"][i], REPLIES["prompting"][i], "I do not know.") if r in request.text]
    order = sorted(shown, key=request.text.index)
    if REFERENCES[i] in order:
        return f"The correct sum wins.\n\nVerdict: {'A' if order.index(REFERENCES[i]) == 0 else 'B'}"
    return "Neither is right.\n\nVerdict: tie"


def test_llm_judge_and_verifiable_judge_lead_to_a_verdict(fake):
    fake.script(correct_first)
    cfg = judging.validate(
        {
            "primary": "llm",
            "verifiable": {"mode": "normalised"},
            "llm": {"backend": "inference", "model": "judges/fair", "base_url": fake.base_url},
        }
    )
    out = judging.run(cfg, PROMPTS, REFERENCES, REPLIES, "unused", {"base": None}, {}, COSTS, TOKEN, LABELS)
    # both orders for each of the 3 pairs (sft|base, prompting|base, prompting|sft) and 12 prompts
    assert len(fake.requests) == 2 * 3 * N
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    wins = out["llm"]["results"]
    assert wins["sft|base"]["value"] == 1.0 and wins["prompting|base"]["value"] == 0.5  # a tie is one half
    assert wins["prompting|sft"]["value"] == 0.0 and wins["sft|base"]["n"] == N
    assert (
        out["verifiable"]["results"]["sft"]["value"] == 1.0 and out["verifiable"]["results"]["prompting"]["value"] == 0
    )
    verdict = out["verdict"]
    assert verdict["ship"] == "SFT" and verdict["primary"] == "llm_pairwise", verdict
    assert "SFT" in verdict["sentence"] and f"{N}" in verdict["sentence"]
    assert set(out["seconds"]) == {"verifiable", "llm"} and TOKEN not in repr(out)


def test_overlapping_intervals_are_no_clear_difference():
    replies = {"base": ["x"] * 6, "sft": ["a", "b", "a", "b", "a", "b"], "dpo": ["a", "b", "b", "a", "a", "b"]}
    refs = ["a"] * 6
    cfg = judging.validate({"verifiable": {"mode": "exact"}})
    costs = {"base": {"wall_time_s": 0}, "sft": {"wall_time_s": 10}, "dpo": {"wall_time_s": 20}}
    out = judging.run(cfg, [[]] * 6, refs, replies, "unused", {}, {}, costs, None, {"sft": "SFT", "dpo": "DPO"})
    assert out["verdict"]["ship"] == "SFT" and "No clear difference" in out["verdict"]["sentence"]


def test_judge_settings_are_checked_in_one_sentence():
    for raw, expected in (
        ({"verifiable": {"mode": "fuzzy"}}, "judges.verifiable.mode"),
        ({"reward_model": {}}, "judges.reward_model needs model"),
        ({"nope": {}}, "Unknown judges"),
        ({"verifiable": {}, "primary": "llm"}, "judges.primary"),
        ({"llm": {"backend": "inference"}}, "judge.model"),
    ):
        with pytest.raises(ConfigError, match=expected):
            judging.validate(raw)


def test_the_cost_in_dollars_is_on_the_tier_named_and_a_wrong_tier_is_one_sentence():
    from evaluation import compare

    raw = {"model": {"name_or_path": "demo-tiny"}, "data": {"source": "x.jsonl"}, "arms": ["prompting"]}
    assert compare.validate({**raw, "evaluation": {"tier": "a10g-small"}})["evaluation"]["tier"] == "a10g-small"
    with pytest.raises(ConfigError, match="evaluation.tier 'nope' is not a Spaces tier"):
        compare.validate({**raw, "evaluation": {"tier": "nope"}})
    entry = {"cost": {"wall_time_s": 100.0, "wall_time_s_with_sft": 460.0, "trainable_params": 5, "dollars": 0.13}}
    assert compare.arm_cost(entry) == {
        "wall_time_s": 460.0,
        "trainable_params": 5,
        "peak_memory_mb": None,
        "dollars": 0.13,
    }
