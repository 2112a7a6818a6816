"""The comparison report's statistics (evaluation/stats.py), its verdict (evaluation/verdict.py) and the verifiable
judge (evaluation/judges/verifiable.py), on constructed data with known answers."""

import json
import math

import pytest

from evaluation import judges, stats
from evaluation.judges.verifiable import normalise, references_of, score
from evaluation.verdict import verdict


def successes(k: int, n: int) -> list[bool]:
    return [True] * k + [False] * (n - k)


# --- stats --------------------------------------------------------------------------------------------------------


def test_a_known_proportion_has_the_normal_approximation_interval():
    iv = stats.rate(successes(120, 200))
    assert iv.value == pytest.approx(0.6) and iv.n == 200 and iv.kind == "rate"
    half = 1.959964 * math.sqrt(0.6 * 0.4 / 200)  # 0.0679
    assert iv.low == pytest.approx(0.6 - half, abs=0.01)
    assert iv.high == pytest.approx(0.6 + half, abs=0.01)
    assert iv.text() == "60 % ± 7 (n=200)"
    assert "bootstrap" in iv.method and "2000" in iv.method


def test_the_text_of_a_rate_a_mean_and_a_difference():
    assert stats.rate(successes(122, 200)).short().startswith("61 % ")
    m = stats.Interval(0.42, 0.35, 0.49, 200, "mean reward")
    assert m.text() == "0.42 ± 0.07 (n=200)"
    assert stats.Interval(0.42, 0.30, 0.49, 200).text() == "0.42 [0.30, 0.49] (n=200)"  # asymmetric: the bounds
    d = stats.Interval(-0.004, -0.015, 0.007, 300, kind=stats.RATE_DIFFERENCE)
    assert d.short() == "−0.4 ± 1.1 pts"
    assert stats.Interval(0.25, 0.2, 0.3, 10, kind=stats.DIFFERENCE).short() == "+0.25 ± 0.05"
    back = stats.Interval.from_dict(json.loads(json.dumps(d.to_dict())))
    assert back == d and d.to_dict()["text"] == d.text()


def test_the_same_seed_gives_the_same_interval_and_another_seed_may_not():
    values = [0.1 * (i % 7) + 0.01 * (i % 3) for i in range(150)]
    assert stats.mean(values) == stats.mean(values)
    assert stats.mean(values, seed=5) == stats.mean(values, seed=5)
    assert stats.mean(values, seed=5).low != stats.mean(values).low
    assert stats.mean(values, resamples=500).method.startswith("95% percentile bootstrap, 500 resamples")


def test_no_data_all_equal_and_nan():
    empty = stats.rate([])
    assert (empty.value, empty.low, empty.high, empty.n) == (None, None, None, 0)
    assert empty.text() == "no data" and empty.short() == "no data"
    flat = stats.mean([2.5] * 40)
    assert flat.low == flat.high == flat.value == 2.5 and flat.text() == "2.5 ± 0 (n=40)"
    assert stats.rate([True] * 30).text() == "100 % ± 0 (n=30)"
    nan = stats.mean([1.0, float("nan"), 3.0, None, 2.0])
    assert nan.n == 3 and nan.dropped == 2 and nan.value == pytest.approx(2.0)
    assert "2 missing or NaN dropped" in nan.text()
    only_nan = stats.mean([float("nan")])
    assert only_nan.empty and only_nan.text() == "no data (1 missing or NaN dropped)"
    assert stats.rate([True, None, False]).dropped == 1  # a row without a reference is not counted
    with pytest.raises(ValueError, match="infinite"):
        stats.mean([1.0, math.inf])
    with pytest.raises(ValueError, match="True/False"):
        stats.rate([0.5])


def test_a_tie_counts_one_half_in_a_win_rate():
    iv = stats.win_rate(["a"] * 50 + ["b"] * 30 + ["tie"] * 20)
    assert iv.value == pytest.approx((50 + 10) / 100)
    assert "tie counts one half" in iv.label
    assert stats.win_rate(["tie"] * 10).value == 0.5 and not stats.excludes(stats.win_rate(["tie"] * 10), 0.5)
    assert stats.excludes(stats.win_rate(["a"] * 80 + ["b"] * 20), 0.5)
    assert not stats.excludes(stats.win_rate(["a"] * 52 + ["b"] * 48), 0.5)
    with pytest.raises(ValueError, match="'a', 'b' or 'tie'"):
        stats.win_rate(["a", "A"])


def test_a_paired_difference_resamples_the_same_items_and_is_sharper():
    # Item difficulty varies a lot, b is a constantly 0.05 above a: paired, the difference is exact; unpaired, the
    # item spread hides it.
    a = [float(i % 10) for i in range(100)]
    b = [x + 0.05 for x in a]
    paired = stats.paired_difference(b, a)
    assert paired.value == pytest.approx(0.05) and paired.low == pytest.approx(paired.high)
    assert stats.excludes(paired, 0)
    unpaired = stats.delta(a, b, paired=False)
    assert unpaired.value == pytest.approx(0.05) and not stats.excludes(unpaired, 0)
    assert "unpaired: 100 before, 100 after" in unpaired.label
    assert not stats.clear_difference(stats.mean(a), stats.mean(b))
    with pytest.raises(ValueError, match="same items"):
        stats.paired_difference([1.0], [1.0, 2.0])
    dropped = stats.paired_difference([1.0, float("nan"), 3.0], [0.0, 1.0, None])
    assert dropped.n == 1 and dropped.dropped == 2


def test_delta_of_bools_is_in_percentage_points_and_paired_when_the_lengths_match():
    before = successes(150, 200)
    after = before[:]
    after[0] = after[1] = False  # two items forgotten
    d = stats.delta(before, after)
    assert d.kind == stats.RATE_DIFFERENCE and d.value == pytest.approx(-0.01) and d.n == 200
    assert "unpaired" not in d.label and d.short().startswith("−1.0") and d.short().endswith(" pts")
    assert d.high <= 0  # paired: only losses, so the interval never reaches a gain
    assert stats.delta(before, after[:150]).label.startswith("after − before (unpaired")


def test_overlapping_intervals_are_no_clear_difference_and_separated_ones_are_ranked():
    a, b = stats.rate(successes(120, 200)), stats.rate(successes(126, 200))
    assert stats.overlaps(a, b) and not stats.clear_difference(a, b)
    c = stats.rate(successes(170, 200))
    assert stats.clear_difference(a, c) and stats.clear_difference(c, a)
    assert not stats.clear_difference(a, stats.rate([]))  # no data is never a clear difference
    assert stats.rank({"A": a, "B": b, "C": c}) == [["C"], ["B", "A"]]
    assert stats.rank({"A": a, "B": b, "C": c}, higher_is_better=False) == [["A", "B"], ["C"]]
    assert stats.rank({"A": a, "X": stats.rate([])}) == [["A"]]  # no data: left out


def test_rank_groups_around_the_leader_and_overlaps_do_not_chain():
    top = stats.Interval(0.80, 0.75, 0.85, 100)
    middle = stats.Interval(0.72, 0.67, 0.77, 100)  # overlaps top
    low = stats.Interval(0.64, 0.59, 0.69, 100)  # overlaps middle, not top
    assert stats.rank({"low": low, "middle": middle, "top": top}) == [["top", "middle"], ["low"]]


# --- verdict ------------------------------------------------------------------------------------------------------

COSTS = {
    "SFT": {"gpu_seconds": 300.0, "trainable_params": 1_000_000, "peak_memory_mb": 900},
    "SFT→DPO": {"gpu_seconds": 420.0, "trainable_params": 1_000_000, "peak_memory_mb": 1100, "dollars": 1.25},
    "DPO": {"gpu_seconds": 300.0, "trainable_params": 500_000, "peak_memory_mb": 1000},
}


def test_the_verdict_names_a_clear_winner_with_its_numbers_cost_and_forgetting():
    results = {
        "verifiable": {
            "base": stats.rate(successes(60, 200)),
            "SFT": stats.rate(successes(120, 200)),
            "SFT→DPO": stats.rate(successes(170, 200)),
        }
    }
    before = successes(150, 200)
    after = before[:]
    after[0] = False
    forgetting = {"SFT→DPO": {"ARC-Easy": stats.delta(before, after)}}
    v = verdict("verifiable", results, COSTS, forgetting)
    assert v["ship"] == "SFT→DPO" and v["tied_with"] == [] and v["primary"] == "verifiable"
    assert v["outcome"] == "clear" and v["groups"] == [["SFT→DPO"], ["SFT"], ["base"]]
    s = v["sentence"]
    assert s.startswith("SFT→DPO beats SFT under verifiable answers (SFT→DPO 85 % ")
    assert results["verifiable"]["SFT"].short() in s and "n=200" in s
    assert "costs 1.4× the GPU time of SFT (420 s vs 300 s)" in s
    assert "ARC-Easy " + forgetting["SFT→DPO"]["ARC-Easy"].short() in s


def test_overlapping_arms_are_not_ranked_and_the_cheaper_one_ships():
    results = {
        "reward_model": {
            "SFT→DPO": stats.Interval(0.61, 0.55, 0.67, 200, kind=stats.MEAN),
            "SFT": stats.Interval(0.58, 0.52, 0.64, 200, kind=stats.MEAN),
            "base": stats.Interval(0.20, 0.15, 0.25, 200, kind=stats.MEAN),
        }
    }
    v = verdict("reward_model", results, COSTS, None)
    assert v["ship"] == "SFT" and v["tied_with"] == ["SFT→DPO"] and v["outcome"] == "tie"
    assert v["sentence"].startswith("No clear difference between SFT→DPO and SFT under reward model (")
    assert "ship the cheaper one, SFT (300 s vs 420 s of GPU time)" in v["sentence"]
    assert "beats" not in v["sentence"]
    # equal time: fewer trainable parameters is cheaper
    results["reward_model"]["DPO"] = stats.Interval(0.59, 0.53, 0.65, 200, kind=stats.MEAN)
    assert verdict("reward_model", results, COSTS)["ship"] == "DPO"
    # intervals read back from report.json work the same
    as_json = {"reward_model": {k: v.to_dict() for k, v in results["reward_model"].items()}}
    assert verdict("reward_model", as_json, COSTS)["ship"] == "DPO"


def test_a_prompting_arm_as_good_as_training_is_said_and_shipped():
    results = {
        "verifiable": {
            "SFT": stats.rate(successes(150, 200)),
            "prompting": stats.rate(successes(146, 200)),
            "base": stats.rate(successes(40, 200)),
        }
    }
    v = verdict("verifiable", results, COSTS)
    assert v["ship"] == "prompting" and v["outcome"] == "baseline" and v["tied_with"] == ["SFT"]
    assert v["sentence"].startswith("Training did not clearly beat prompting: no clear difference between SFT and")
    assert "ship the cheaper one, prompting (it trains nothing)" in v["sentence"]
    # the base alone on top: training did not beat it
    results["verifiable"]["base"] = stats.rate(successes(199, 200))
    v = verdict("verifiable", results, COSTS)
    assert v["ship"] == "base" and v["sentence"].startswith("Training did not beat base: base beats SFT under")


def test_a_pairwise_verdict_speaks_of_judged_pairs():
    results = {
        "llm_pairwise": {
            ("SFT→DPO", "SFT"): stats.win_rate(["a"] * 112 + ["b"] * 70 + ["tie"] * 18),
            "base|SFT→DPO": stats.win_rate(["a"] * 40 + ["b"] * 160),  # as JSON keys come back; b wins
        }
    }
    v = verdict("llm_pairwise", results, COSTS)
    win = results["llm_pairwise"][("SFT→DPO", "SFT")]
    assert v["ship"] == "SFT→DPO" and v["outcome"] == "clear"
    assert v["sentence"].startswith(f"SFT→DPO beats SFT in {win.short()} of 200 judged pairs and base in 80 % ")
    assert "under pairwise LLM judge; costs 1.4× the GPU time of SFT" in v["sentence"]
    results["llm_pairwise"][("SFT→DPO", "SFT")] = stats.win_rate(["a"] * 100 + ["b"] * 90 + ["tie"] * 10)
    v = verdict("llm_pairwise", results, COSTS)
    assert v["ship"] == "SFT" and v["outcome"] == "tie" and "no clear difference" in v["sentence"].lower()
    cycle = {
        "j": {
            ("A", "B"): stats.win_rate(["a"] * 90 + ["b"] * 10),
            ("B", "C"): stats.win_rate(["a"] * 90 + ["b"] * 10),
            ("C", "A"): stats.win_rate(["a"] * 90 + ["b"] * 10),
        }
    }
    assert verdict("j", cycle, {})["ship"] is None and verdict("j", cycle, {})["outcome"] == "cycle"


def test_no_data_gives_no_verdict():
    assert verdict("verifiable", {}, {})["ship"] is None
    v = verdict("verifiable", {"verifiable": {"SFT": stats.rate([]), "DPO": stats.rate([True])}}, {})
    assert v["ship"] is None and v["outcome"] == "single" and "SFT: no data" in v["sentence"]


# --- the verifiable judge -----------------------------------------------------------------------------------------


def test_normalised_answers_compare_numbers_as_numbers():
    assert normalise("1,000") == normalise("1000") == normalise("1000.0") == "1000"
    assert normalise("The answer is  -0.50!") == "answer is -0.5"
    assert normalise("5-2") == "5 2" and normalise("Don't PANIC.") == "dont panic"
    assert normalise("１２") == "12"  # full-width digits (NFKC)
    replies = ["The opposite of hot is COLD", "the opposite of hot is cold.", "1,000", "It is 1000.", "10", "x"]
    refs = ["The opposite of hot is cold.", "The opposite of hot is cold.", "1000.0", "1000", "1", None]
    assert score(replies, refs, "exact") == [False, False, False, False, False, None]
    assert score(replies, refs) == [True, True, True, False, False, None]
    assert score(replies, refs, "contains") == [True, True, True, True, False, None]  # "1" is not in "10"
    assert score(["  cold \n"], ["cold"], "exact") == [True]


def test_regex_mode_substitutes_the_answer_escaped():
    replies = ["The answer is 16.", "The answer is 1+6.", "16 is it"]
    assert score(replies, ["16", "1+6", "16"], "regex", r"answer is {answer}\W*$") == [True, True, False]
    assert score(["Yes"], [None], "regex", "^(Yes|No)$") == [True]  # no {answer}: no reference needed
    assert score(["Yes"], [None], "regex", "{answer}") == [None]
    with pytest.raises(ValueError, match="not a valid pattern"):
        score(["x"], ["x"], "regex", "(")
    with pytest.raises(ValueError, match="Unknown verifiable mode"):
        score(["x"], ["x"], "fuzzy")
    with pytest.raises(ValueError, match="one reference per reply"):
        score(["x"], [])


def test_references_come_from_a_solution_answer_or_the_assistant_reply():
    rows = [
        {"prompt": [{"role": "user", "content": "What is 22 - 6?"}], "solution": "16"},
        {"question": "q", "answer": 4},
        {
            "messages": [
                {"role": "user", "content": "hot?"},
                {"role": "assistant", "content": "The opposite of hot is cold."},
            ]
        },
        {"prompt": "Q", "completion": " cold"},
        {"prompt": [{"role": "user", "content": "x"}], "completion": [{"role": "assistant", "content": "y"}]},
        {"prompt": "p", "chosen": "c", "rejected": "r"},
        {"solution": "  ", "messages": [{"role": "user", "content": "u"}]},
    ]
    assert references_of(rows) == ["16", "4", "The opposite of hot is cold.", " cold", "y", None, None]
    assert stats.rate(score(["16", "5", "cold", "cold", "y", "x", "x"], references_of(rows))).n == 5


def test_the_judge_table_names_every_kind():
    assert set(judges.JUDGES) == {"verifiable", "reward_model", "llm_pairwise", "forgetting"}
    assert judges.label("verifiable") == "verifiable answers" and judges.label("mine") == "mine"
    assert all(judges.description(name) for name in judges.JUDGES)
