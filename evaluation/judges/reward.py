"""The reward-model judge: a reward model (trained here with `method: reward`, or a Hub id) scores every arm's
reply to every held-out prompt; the report gets each arm's mean reward and its win rate against the base and
against every other arm, each with a 95 % bootstrap interval (evaluation/stats.py)."""

from __future__ import annotations

from itertools import combinations

from evaluation import stats


def outcomes(a: list[float], b: list[float]) -> list[str]:
    """Per prompt: "a" when a's reply scores higher, "b" when b's does, "tie" when equal."""
    return ["a" if x > y else "b" if y > x else "tie" for x, y in zip(a, b, strict=True)]


def judge(scorer, prompts: list, replies: dict[str, list[str]], baseline: str = "base") -> dict:
    """{"scores": {arm: [reward per prompt]}, "mean": {arm: Interval}, "vs_base": {arm: Interval},
    "pairwise": {"a|b": Interval of a's win rate over b}} (ties count one half)."""
    completions = {arm: [[{"role": "assistant", "content": r}] for r in texts] for arm, texts in replies.items()}
    scores = {arm: [float(x) for x in scorer.score(prompts, completions[arm])] for arm in replies}
    out = {
        "scores": scores,
        "mean": {arm: stats.mean(values) for arm, values in scores.items()},
        "vs_base": {},
        "pairwise": {},
    }
    for arm, values in scores.items():
        if arm != baseline and baseline in scores:
            out["vs_base"][arm] = stats.win_rate(outcomes(values, scores[baseline]))
    for a, b in combinations(scores, 2):
        out["pairwise"][f"{a}|{b}"] = stats.win_rate(outcomes(scores[a], scores[b]))
    return out
