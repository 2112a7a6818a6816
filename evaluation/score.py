"""`python -m evaluation score RUN --data FILE`: a reward model's scores on preference pairs or replies.

Pairs: the reward model prefers the chosen reply when its score is higher than the rejected one's.  Pair accuracy
is over the decided pairs (ties, equal scores, are counted apart: a tie is no preference, not a wrong one), with
its 95% Wilson score interval (which stays inside [0, 1] and is honest for small sets and accuracies near 1).
Rows of instruction data (prompt + completion, messages: the last assistant turn after its conversation) or
unpaired feedback get one score each.
"""

from __future__ import annotations

import math
from pathlib import Path

from core.errors import ConfigError
from data import doctor, formats, sources
from evaluation.metrics import split_row
from trainers import methods
from trainers.config import DataSection
from trainers.reward import load_located, locate

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion; None when n is 0."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return (0.0 if successes == 0 else lo), (1.0 if successes == n else hi)  # exact at the ends


def load_scored_rows(source: str) -> tuple[str, list[dict]]:
    """(kind, rows in TRL's standard form) of every row of `source`, through the data doctor (no length limit)."""
    if sources.is_local(source) and not Path(source).expanduser().exists():
        raise ConfigError(f"The data file {source} does not exist: check --data.")
    raw = sources.load(source)
    if len(raw) == 0:
        raise ConfigError(f"{source} has no rows to score.")
    fmt, _ = formats.detect(raw.column_names, formats.first_row(raw))
    if fmt.kind == formats.PROMPTS:
        raise ConfigError(
            f"{source} holds prompts without replies ({fmt.name}): score preference pairs or prompt + reply rows."
        )
    ds, report, _ = doctor.examine(
        raw, methods.for_kind(fmt.kind).task, DataSection(source=source, eval_size=0), "scored"
    )
    doctor.raise_on_errors(report)
    return fmt.kind, list(doctor.strip_internal(ds))


def pair_summary(pairs: list[tuple[float, float]]) -> dict:
    """Accuracy over the decided pairs with its Wilson interval, ties apart, mean margin."""
    margins = [c - r for c, r in pairs]
    wins, ties = sum(m > 0 for m in margins), sum(m == 0 for m in margins)
    decided = len(margins) - ties
    interval = wilson(wins, decided)
    return {
        "pairs": len(pairs),
        "wins": wins,
        "losses": decided - wins,
        "ties": ties,
        "accuracy": wins / decided if decided else None,
        "accuracy_ci95": list(interval) if interval else None,
        "mean_margin": sum(margins) / len(margins) if margins else None,
    }


def score(target: str, data: str, device: str | None = None) -> dict:
    """Score every row of `data` with the reward model `target` (a reward run's folder, adapter or Hub id)."""
    where = locate(target)  # refuse a non-reward target before loading anything
    kind, rows = load_scored_rows(data)
    scorer = load_located(where, device)
    out = {"target": str(target), "data": str(data), "kind": kind}
    if kind == formats.PREFERENCE:
        pairs = scorer.score_pairs(
            [r["prompt"] for r in rows], [r["chosen"] for r in rows], [r["rejected"] for r in rows]
        )
        out.update(pair_summary(pairs))
        out["rows"] = [
            {
                "index": i,
                "chosen": c,
                "rejected": r,
                "margin": c - r,
                "preferred": "chosen" if c > r else "tie" if c == r else "rejected",
            }
            for i, (c, r) in enumerate(pairs)
        ]
    else:
        split = [split_row(r) for r in rows]
        scores = scorer.score([p for p, _ in split], [c for _, c in split])
        out.update(rows_scored=len(scores), mean_score=sum(scores) / len(scores))
        out["rows"] = [
            {"index": i, "score": s, **({"label": rows[i]["label"]} if "label" in rows[i] else {})}
            for i, s in enumerate(scores)
        ]
    out["truncated"] = scorer.truncated
    return out


def render_text(result: dict) -> str:
    lines = [f"Reward model: {result['target']}", f"Data: {result['data']}"]
    if result["kind"] == formats.PREFERENCE:
        n, ties = result["pairs"], result["ties"]
        if result["accuracy"] is None:
            lines.append(f"Pair accuracy: none (all {n} pairs tied)")
        else:
            lo, hi = result["accuracy_ci95"]
            decided = n - ties
            lines.append(
                f"Pair accuracy: {result['accuracy']:.3f} ({result['wins']} of {decided} decided pairs prefer the chosen "
                f"reply; 95% interval {lo:.3f}-{hi:.3f}, Wilson)"
            )
        lines.append(f"Ties (equal scores, not counted as wrong): {ties} of {n} pairs")
        lines.append(f"Mean margin (chosen - rejected): {result['mean_margin']:.4f}")
    else:
        lines.append(f"Rows scored: {result['rows_scored']}; mean score {result['mean_score']:.4f}")
    if result.get("truncated"):
        lines.append(f"{result['truncated']} sequences longer than the model's context kept their end (the reply).")
    return "\n".join(lines)
