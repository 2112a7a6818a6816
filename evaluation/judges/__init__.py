"""The judges that score a comparison's arms, one module each.  The table names every kind so the report, the
verdict (evaluation/verdict.py) and the UI describe a judge the same way.

| name | label | what it gives per arm |
| --- | --- | --- |
| verifiable | verifiable answers | the share of replies that match the row's reference (judges/verifiable.py) |
| reward_model | reward model | a reward model's mean score, and win rates between arms |
| llm_pairwise | pairwise LLM judge | an LLM's win rate of one arm's reply over another's, a tie counting one half |
| forgetting | forgetting | general benchmarks' accuracy after training minus before |

Every number a judge reports is an evaluation/stats.py Interval (95 % bootstrap, with n).
"""

from __future__ import annotations

JUDGES: dict[str, tuple[str, str]] = {  # name -> (label, description)
    "verifiable": (
        "verifiable answers",
        "Each reply is checked against the held-out row's reference answer (exact, normalised, contains or regex); "
        "the score is the share of correct replies. Rows without a reference are not counted.",
    ),
    "reward_model": (
        "reward model",
        "A reward model scores every arm's reply to the same held-out prompts; the score is the mean reward, and "
        "pairs of arms get the share of prompts where one arm's reply scores higher (a tie counts one half).",
    ),
    "llm_pairwise": (
        "pairwise LLM judge",
        "A judge LLM picks the better of two arms' replies to the same prompt, shown in both orders; the score is "
        "one arm's win rate over the other (a tie counts one half).",
    ),
    "forgetting": (
        "forgetting",
        "General benchmarks scored before and after training; the score is the change in accuracy per benchmark "
        "(negative: the model forgot).",
    ),
}


def label(name: str) -> str:
    """A judge's label for a sentence ("verifiable answers"); an unknown name is its own label."""
    return JUDGES[name][0] if name in JUDGES else name


def description(name: str) -> str:
    """One paragraph on what the judge measures; empty for an unknown name."""
    return JUDGES[name][1] if name in JUDGES else ""
