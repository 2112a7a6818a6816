"""The verdict at the top of the comparison report: which arm to ship under the primary judge, in one sentence
whose numbers are the inputs' own.

The rule (`verdict`):
1. Pointwise judges ({arm: Interval}, higher is better): stats.rank groups the arms; the top group is the best
   arm and every arm whose interval overlaps the best's.  Pairwise judges ({(a, b): Interval of a's win rate over
   b}, also "a|b" keys as JSON gives them back): an arm is clearly beaten when some judged pair's interval
   excludes 0.5 against it; the leader is the unbeaten arm with the most clear wins (then the highest mean win
   rate), and the top group is the leader, every other unbeaten arm, and every arm whose pair with the leader is
   not clear.  No unbeaten arm (a cycle): no verdict.
2. A top group of one: that arm clearly beats the runner-up (pointwise: the best arm of the next group; pairwise:
   its closest clear win) and is shipped; the sentence gives both numbers, what it costs against the runner-up and
   the shipped arm's forgetting deltas.
3. A top group of several: they are never ranked.  "No clear difference between X and Y under <judge> (...):
   ship the cheaper one, X", cheaper by training time (gpu_seconds, else wall_time_s), then trainable_params.
4. When a baseline (the base, or the prompting arm: they train nothing and cost nothing) is in the top group, the
   sentence first says training did not clearly beat it.
Arm names are used as given: they are the caller's labels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from evaluation import judges
from evaluation.stats import Interval, as_interval, excludes, rank

BASELINES = ("base", "prompting")  # arms that train nothing: no training cost
TIME_KEYS = (("gpu_seconds", "GPU time"), ("wall_time_s", "wall time"))


# --- small words --------------------------------------------------------------------------------------------------


def _and(names: Iterable[str], word: str = "and") -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {word} " + names[-1]


def _scores(arms: dict[str, Interval]) -> str:
    """ "X 61 % ± 6, Y 58 % ± 7; n=200", or each with its own n when they differ."""
    ns = {iv.n for iv in arms.values()}
    if len(ns) == 1:
        return ", ".join(f"{name} {iv.short()}" for name, iv in arms.items()) + f"; n={ns.pop()}"
    return ", ".join(f"{name} {iv.short()} (n={iv.n})" for name, iv in arms.items())


def _flip(iv: Interval) -> Interval:
    """b's win rate over a from a's over b."""
    if iv.empty:
        return iv
    return Interval(1 - iv.value, 1 - iv.high, 1 - iv.low, iv.n, iv.label, iv.kind, iv.dropped, iv.method)  # type: ignore[operator]


def _seconds(s: float) -> str:
    return f"{s:,.0f} s"


# --- costs --------------------------------------------------------------------------------------------------------


def _time(costs: dict, arm: str, baselines: tuple) -> tuple[float | None, str | None]:
    """(training seconds, which time) of an arm; a baseline without costs takes 0."""
    entry = costs.get(arm) or {}
    for key, words in TIME_KEYS:
        if entry.get(key) is not None:
            return float(entry[key]), words
    return (0.0, None) if arm in baselines else (None, None)


def _cost_key(costs: dict, arm: str, baselines: tuple) -> tuple:
    """Sort key, cheapest first: training time, then trainable parameters; unknown costs sort last."""
    seconds, _ = _time(costs, arm, baselines)
    params = (costs.get(arm) or {}).get("trainable_params")
    if params is None and arm in baselines:
        params = 0
    return (math.inf if seconds is None else seconds, math.inf if params is None else params)


def _time_words(costs: dict, arms: list[str], baselines: tuple) -> str:
    """Which time the sentence compares: GPU time when every arm with a time has gpu_seconds, else wall time."""
    kinds = {_time(costs, a, baselines)[1] for a in arms} - {None}
    return "GPU time" if kinds == {"GPU time"} else "wall time"


def _seconds_of(costs: dict, arm: str, words: str, baselines: tuple) -> float | None:
    entry = costs.get(arm) or {}
    key = "gpu_seconds" if words == "GPU time" else "wall_time_s"
    if entry.get(key) is not None:
        return float(entry[key])
    return 0.0 if arm in baselines else None


def _dollars(costs: dict, arms: list[str]) -> str:
    values = [(costs.get(a) or {}).get("dollars") for a in arms]
    if any(v is None for v in values):
        return ""
    return " (" + " vs ".join(f"${v:,.2f}" for v in values) + ")"


def _cost_clause(costs: dict, winner: str, other: str, baselines: tuple) -> str:
    """ "costs 1.4× the GPU time of SFT (412 s vs 294 s)" from the inputs; empty when the winner's time is unknown."""
    words = _time_words(costs, [winner, other], baselines)
    mine, theirs = _seconds_of(costs, winner, words, baselines), _seconds_of(costs, other, words, baselines)
    if mine is None:
        return ""
    if theirs is None:
        return f"costs {_seconds(mine)} of {words} ({other}'s is unknown)"
    if theirs > 0:
        return f"costs {mine / theirs:.1f}× the {words} of {other} ({_seconds(mine)} vs {_seconds(theirs)})" + _dollars(
            costs, [winner, other]
        )
    return f"costs {_seconds(mine)} of {words} ({other} trains nothing)" + _dollars(costs, [winner, other])


def _cheaper_clause(costs: dict, ship: str, others: list[str], baselines: tuple) -> str:
    """ "ship the cheaper one, X (412 s vs 980 s of GPU time)"."""
    order = [ship, *others]
    words = _time_words(costs, order, baselines)
    times = [_seconds_of(costs, a, words, baselines) for a in order]
    which = "the cheaper one" if len(order) == 2 else "the cheapest"
    detail = ""
    if ship in baselines:
        detail = " (it trains nothing)"
    elif all(t is not None for t in times):
        detail = " (" + " vs ".join(_seconds(t) for t in times) + f" of {words})"  # type: ignore[arg-type]
    else:
        params = [(costs.get(a) or {}).get("trainable_params") for a in order]
        if all(p is not None for p in params):
            detail = " (" + " vs ".join(f"{p:,}" for p in params) + " trainable parameters)"
        elif all(t is None for t in times):
            detail = " (no costs given: the best-scored of them)"
    return f"ship {which}, {ship}{detail}"


def _forgetting_clause(forgetting: dict | None, arm: str) -> str:
    """ "ARC-Easy −0.4 ± 1.1 pts, HellaSwag −3.0 ± 1.2 pts (a clear loss)" for the shipped arm."""
    deltas = (forgetting or {}).get(arm) or {}
    parts = []
    for bench, iv in deltas.items():
        iv = as_interval(iv)
        note = " (a clear loss)" if excludes(iv, 0) and iv.value < 0 else " (a clear gain)" if excludes(iv, 0) else ""  # type: ignore[operator]
        parts.append(f"{bench} {iv.short()}{note}")
    return ", ".join(parts)


# --- the verdict --------------------------------------------------------------------------------------------------


def _result(ship, sentence, tied_with, primary, outcome, groups=None) -> dict:
    return {
        "ship": ship,
        "sentence": sentence.rstrip(".") + ".",
        "tied_with": list(tied_with),
        "primary": primary,
        "outcome": outcome,
        "groups": groups or [],
    }


def _pairs(judged: dict) -> list[tuple[str, str, Interval]] | None:
    """[(a, b, a's win rate)] when the judge is pairwise (any key a tuple (a, b), or every key "a|b" as JSON gives
    them back; a pairwise judge's "a|b" keys are read as pairs too), else None."""
    keys = list(judged)
    split = [k if isinstance(k, tuple) else tuple(k.split("|")) if isinstance(k, str) else (k,) for k in keys]
    pairwise = any(isinstance(k, tuple) for k in keys) or all(len(k) == 2 for k in split)
    if not keys or not pairwise:
        return None
    return [(k[0], k[1], as_interval(v)) for k, v in zip(split, judged.values(), strict=True) if len(k) == 2]


def _no_clear_difference(top: list[str], label: str, baselines: tuple) -> str:
    """ "Training did not clearly beat base: no clear difference between ..." (the prefix when a baseline is tied)."""
    base = [a for a in top if a in baselines]
    prefix = f"Training did not clearly beat {_and(base, 'or')}: no" if base else "No"
    return f"{prefix} clear difference between {_and(top)} under {label}"


def _finish(sentence: str, ship: str | None, forgetting: dict | None, baselines: tuple) -> str:
    if ship and ship not in baselines:
        lost = _forgetting_clause(forgetting, ship)
        if lost:
            sentence += f"; forgetting (after − before): {lost}"
    return sentence


def verdict(
    primary: str,
    results: dict,
    costs: dict,
    forgetting: dict | None = None,
    baselines: tuple[str, ...] = BASELINES,
) -> dict:
    """The report's verdict under the `primary` judge: {"ship": arm or None, "sentence", "tied_with": [arms not
    clearly different from the shipped one], "primary", "outcome": "clear" | "tie" | "baseline" | "no_data" |
    "single" | "cycle", "groups": the pointwise ranking}.

    results: judge name -> {arm: Interval} (higher is better) or, for a pairwise judge, {(arm_a, arm_b): Interval
    of a's win rate over b} ("arm_a|arm_b" keys too).  costs: arm -> {"gpu_seconds" or "wall_time_s", "dollars"
    (optional), "trainable_params", "peak_memory_mb"} (a chain's time should include its earlier stages).
    forgetting: arm -> {benchmark: Interval of after − before}, or None.  Intervals may be Interval.to_dict()
    mappings.  `baselines` name the arms that train nothing.  The rule is the module's docstring."""
    label = judges.label(primary)
    judged = results.get(primary) or {}
    if not judged:
        return _result(None, f"No results under {label}: no verdict", [], primary, "no_data")
    pairs = _pairs(judged)
    if pairs is not None:
        return _pairwise(primary, label, pairs, costs, forgetting, baselines)
    arms = {arm: as_interval(iv) for arm, iv in judged.items()}
    missing = [a for a, iv in arms.items() if iv.empty]
    arms = {a: iv for a, iv in arms.items() if not iv.empty}
    tail = f" ({_and(missing)}: no data)" if missing else ""
    if not arms:
        return _result(None, f"No arm has data under {label}: no verdict{tail}", [], primary, "no_data")
    if len(arms) == 1:
        (only,) = arms
        return _result(
            None,
            f"Only {only} has results under {label} ({arms[only].text()}): nothing to compare it with{tail}",
            [],
            primary,
            "single",
            [[only]],
        )
    groups = rank(arms)
    top = groups[0]
    if len(top) == 1:
        winner, runner = top[0], groups[1][0]
        sentence = f"{winner} beats {runner} under {label} ({_scores({winner: arms[winner], runner: arms[runner]})})"
        outcome = "clear"
        if winner in baselines:
            sentence = f"Training did not beat {winner}: " + sentence
            outcome = "baseline"
        else:
            cost = _cost_clause(costs, winner, runner, baselines)
            sentence += f"; {cost}" if cost else ""
        return _result(winner, _finish(sentence + tail, winner, forgetting, baselines), [], primary, outcome, groups)
    ship = min(top, key=lambda a: _cost_key(costs, a, baselines))  # min keeps the first of equal costs
    others = [a for a in top if a != ship]
    sentence = (
        _no_clear_difference(top, label, baselines)
        + f" ({_scores({a: arms[a] for a in top})}): "
        + _cheaper_clause(costs, ship, others, baselines)
    )
    outcome = "baseline" if any(a in baselines for a in top) else "tie"
    return _result(ship, _finish(sentence + tail, ship, forgetting, baselines), others, primary, outcome, groups)


def _pairwise(primary: str, label: str, pairs: list, costs: dict, forgetting: dict | None, baselines: tuple) -> dict:
    judged = [(a, b, iv) for a, b, iv in pairs if not iv.empty]
    arms = list(dict.fromkeys(x for a, b, _ in judged for x in (a, b)))
    if not judged:
        return _result(None, f"No judged pairs under {label}: no verdict", [], primary, "no_data")
    wins: list[tuple[str, str, Interval]] = []  # (winner, loser, winner's win rate)
    for a, b, iv in judged:
        if excludes(iv, 0.5):
            wins.append((a, b, iv) if iv.low > 0.5 else (b, a, _flip(iv)))  # type: ignore[operator]
    beaten = {loser for _, loser, _ in wins}
    unbeaten = [a for a in arms if a not in beaten]
    if not unbeaten:
        said = "; ".join(f"{w} beats {lo} in {iv.short()} of {iv.n}" for w, lo, iv in wins)
        return _result(
            None, f"No arm is unbeaten under {label}, the wins go round ({said}): no verdict", [], primary, "cycle"
        )

    def rate_of(arm: str, other: str) -> Interval | None:
        for a, b, iv in judged:
            if (a, b) == (arm, other):
                return iv
            if (a, b) == (other, arm):
                return _flip(iv)
        return None

    def strength(arm: str) -> tuple:
        mine = [rate_of(arm, o) for o in arms if o != arm]
        values = [iv.value for iv in mine if iv is not None]
        return (sum(w == arm for w, _, _ in wins), sum(values) / len(values) if values else 0.0)  # type: ignore[misc]

    leader = max(unbeaten, key=strength)  # max keeps the first of equals
    close = [a for a in arms if a != leader and (iv := rate_of(leader, a)) is not None and not excludes(iv, 0.5)]
    top = [a for a in arms if a == leader or a in unbeaten or a in close]
    if len(top) == 1:
        mine = sorted(((lo, iv) for w, lo, iv in wins if w == leader), key=lambda item: item[1].low)
        said = [f"{lo} in {iv.short()} of {iv.n}" for lo, iv in mine]
        said[0] += " judged pairs"
        sentence = f"{leader} beats {_and(said)} under {label}"
        outcome = "clear"
        if leader in baselines:
            sentence = f"Training did not beat {leader}: " + sentence
            outcome = "baseline"
        else:
            cost = _cost_clause(costs, leader, mine[0][0], baselines)  # against its closest clear win
            sentence += f"; {cost}" if cost else ""
        return _result(leader, _finish(sentence, leader, forgetting, baselines), [], primary, outcome)
    ship = min(top, key=lambda a: _cost_key(costs, a, baselines))
    others = [a for a in top if a != ship]
    said = []
    for i, x in enumerate(top):
        for y in top[i + 1 :]:
            iv = rate_of(x, y)
            said.append(
                f"{x} wins {iv.short()} of {iv.n} against {y}" if iv else f"{x} and {y} were not judged together"
            )
    sentence = (
        _no_clear_difference(top, label, baselines)
        + f" ({'; '.join(said)}): "
        + _cheaper_clause(costs, ship, others, baselines)
    )
    outcome = "baseline" if any(a in baselines for a in top) else "tie"
    return _result(ship, _finish(sentence, ship, forgetting, baselines), others, primary, outcome)
