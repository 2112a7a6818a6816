"""Honest statistics for the comparison report: every number comes with a 95 % interval and its sample size.

Intervals are 95 % percentile bootstraps (RESAMPLES resamples of the items, with replacement, from a generator
seeded with SEED, so the same data always gives the same interval).  The point estimate is the sample's own
mean, never the bootstrap's.  Missing values (None) and NaN are dropped and counted (`Interval.dropped`); an
empty sample gives an Interval with no value and no bounds whose text is "no data".

Two arms are told apart only when their intervals do not overlap (`clear_difference`), a conservative rule: two
95 % intervals that just fail to overlap differ at roughly the 0.5 % level.  When the same items were judged for
both arms, the paired difference (`paired_difference`, `delta`) or the win rate (`win_rate`) is the sharper test:
it is clear when its interval excludes 0 (resp. 0.5), `excludes`.  `rank` never orders arms that are not clearly
different.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

LEVEL = 0.95  # the intervals' coverage
RESAMPLES = 2000  # bootstrap resamples, the default of every function here
SEED = 0  # the bootstrap generator's seed, the default of every function here

RATE, MEAN, RATE_DIFFERENCE, DIFFERENCE = "rate", "mean", "rate_difference", "difference"
KINDS = (RATE, MEAN, RATE_DIFFERENCE, DIFFERENCE)
PERCENT = {RATE, RATE_DIFFERENCE}  # shown ×100: rates as "%", rate differences as percentage points ("pts")
SIGNED = {RATE_DIFFERENCE, DIFFERENCE}  # shown with their sign
SYMMETRIC = 0.8  # short(): "± h" when the interval's shorter side is at least this share of its longer side
MINUS = "\u2212"  # the typographic minus sign, as in "−0.4"
OUTCOMES = {"a": 1.0, "b": 0.0, "tie": 0.5}  # win_rate: a's share of one comparison
_CHUNK = 2_000_000  # bootstrap index cells drawn at once (bounds memory for large samples)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95 % interval: `value` in [`low`, `high`] over `n` items.

    `kind` says how it reads: "rate" (a proportion in [0, 1], shown as a percentage), "mean", "rate_difference"
    (a difference of proportions, shown signed in percentage points) or "difference" (signed).  `dropped` counts
    the items left out as missing or NaN.  With n = 0, value, low and high are None."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    label: str = ""
    kind: str = MEAN
    dropped: int = 0
    method: str = ""

    @property
    def empty(self) -> bool:
        """True when there is no data (n = 0): no value, no interval."""
        return self.n == 0 or self.value is None or self.low is None or self.high is None

    def short(self) -> str:
        """The estimate and its interval without n: "61 % ± 6", "0.42 [0.35, 0.49]", "−0.4 ± 1.1 pts".

        "± h" when the interval is nearly symmetric (its shorter side at least SYMMETRIC of its longer one; h is the
        longer side, so the shown range covers the interval), else "[low, high]".  The precision follows the
        interval's half-width (two significant digits when it starts with 1 or 2, else one)."""
        if self.empty:
            return "no data"
        scale = 100.0 if self.kind in PERCENT else 1.0
        value, low, high = self.value * scale, self.low * scale, self.high * scale  # type: ignore[operator]
        d = _decimals((high - low) / 2, value)
        signed = self.kind in SIGNED
        shown = _num(value, d, signed)
        minus, plus = value - low, high - value
        unit = " %" if self.kind == RATE else ""
        if max(minus, plus) == 0 or min(minus, plus) / max(minus, plus) >= SYMMETRIC:
            body = f"{shown}{unit} ± {_num(max(minus, plus), d) if high > low else '0'}"
        else:
            body = f"{shown}{unit} [{_num(low, d)}, {_num(high, d)}]"
        return body + (" pts" if self.kind == RATE_DIFFERENCE else "")

    def text(self) -> str:
        """`short()` with the sample size: "61 % ± 6 (n=200)"; "no data" when n = 0; dropped items are said."""
        dropped = f"{self.dropped} missing or NaN dropped" if self.dropped else ""
        if self.empty:
            return "no data" + (f" ({dropped})" if dropped else "")
        return f"{self.short()} (n={self.n}{', ' + dropped if dropped else ''})"

    def to_dict(self) -> dict:
        """A JSON-ready mapping of every field, plus "text"."""
        return {**asdict(self), "text": self.text()}

    @classmethod
    def from_dict(cls, data: dict) -> Interval:
        """The Interval of a `to_dict()` mapping (its "text" and unknown keys are ignored)."""
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in fields})


def as_interval(x: Interval | dict) -> Interval:
    """An Interval, or the Interval of its `to_dict()` mapping (results read back from report.json)."""
    return x if isinstance(x, Interval) else Interval.from_dict(x)


# --- formatting ---------------------------------------------------------------------------------------------------


def _decimals(half: float, value: float) -> int:
    """Decimals to show: from the half-width (2 significant digits when it starts with 1 or 2, else 1); for a
    zero-width interval, as few as show the value to 3 significant digits ("2.5 ± 0", "100 % ± 0")."""
    if half > 0 and math.isfinite(half):
        e = math.floor(math.log10(half))
        lead = half / 10**e
        return min(6, max(0, (2 if lead < 3 else 1) - 1 - e))
    if value == 0 or not math.isfinite(value):
        return 0
    most = min(6, max(0, 2 - math.floor(math.log10(abs(value)))))
    return next(d for d in range(most + 1) if round(value, d) == round(value, most))


def _num(x: float, decimals: int, signed: bool = False) -> str:
    """x with `decimals` decimals, a typographic minus, "+" when signed, and no "−0"."""
    s = f"{x:.{decimals}f}"
    if float(s) == 0:
        s = s.lstrip("-")
    elif signed and not s.startswith("-"):
        s = "+" + s
    return s.replace("-", MINUS)


# --- cleaning -------------------------------------------------------------------------------------------------------


def _clean(values: Iterable) -> tuple[np.ndarray, int]:
    """(the finite values as floats, how many were None or NaN); an infinite value is an error."""
    kept, dropped = [], 0
    for v in values:
        x = None if v is None else float(v)
        if x is None or math.isnan(x):
            dropped += 1
            continue
        if math.isinf(x):
            raise ValueError(f"An infinite value ({v!r}) has no mean: drop or clip it first.")
        kept.append(x)
    return np.asarray(kept, dtype=float), dropped


def _check_binary(x: np.ndarray, what: str) -> None:
    if np.any((x != 0) & (x != 1)):
        bad = x[(x != 0) & (x != 1)][0]
        raise ValueError(f"{what} takes True/False (or 1/0) per item; got {bad!r}.")


def _all_bool(values: Sequence) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, bool | np.bool_) for v in present)


def _method(resamples: int, seed: int) -> str:
    return f"{LEVEL:.0%} percentile bootstrap, {resamples} resamples, seed {seed}"


# --- the bootstrap ------------------------------------------------------------------------------------------------


def _bootstrap(columns: Sequence[np.ndarray], resamples: int, seed: int) -> list[np.ndarray]:
    """For each resample, the mean of each column over one draw of indices shared by all columns (paired)."""
    if resamples < 1:
        raise ValueError(f"resamples must be 1 or more; got {resamples}.")
    n = len(columns[0])
    rng = np.random.default_rng(seed)
    out = [np.empty(resamples) for _ in columns]
    step = max(1, _CHUNK // n)
    for start in range(0, resamples, step):
        k = min(step, resamples - start)
        idx = rng.integers(0, n, size=(k, n))
        for column, means in zip(columns, out, strict=True):
            means[start : start + k] = column[idx].mean(axis=1)
    return out


def _bounds(means: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def _interval(x: np.ndarray, dropped: int, label: str, kind: str, resamples: int, seed: int) -> Interval:
    """The bootstrap interval of the mean of x (zero width when every value is equal)."""
    method = _method(resamples, seed)
    if len(x) == 0:
        return Interval(None, None, None, 0, label, kind, dropped, method)
    value = float(x.mean())
    if np.all(x == x[0]):
        return Interval(value, value, value, len(x), label, kind, dropped, method)
    low, high = _bounds(_bootstrap([x], resamples, seed)[0])
    return Interval(value, min(low, value), max(high, value), len(x), label, kind, dropped, method)


# --- public estimators --------------------------------------------------------------------------------------------


def rate(
    successes: Sequence[bool | None], label: str = "success rate", resamples: int = RESAMPLES, seed: int = SEED
) -> Interval:
    """The share of True among `successes` (None, e.g. an item without a reference, is dropped and counted)."""
    x, dropped = _clean(successes)
    _check_binary(x, "rate()")
    return _interval(x, dropped, label, RATE, resamples, seed)


def mean(values: Sequence[float | None], label: str = "mean", resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """The mean of `values` (e.g. reward-model scores); None and NaN are dropped and counted."""
    x, dropped = _clean(values)
    return _interval(x, dropped, label, MEAN, resamples, seed)


def win_rate(
    outcomes: Sequence[str | None],
    label: str = "win rate of a over b (a tie counts one half)",
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """a's win rate over b from per-item outcomes "a", "b" or "tie": a win counts 1, a loss 0 and a TIE COUNTS ONE
    HALF (so 0.5 means no preference either way).  None (an item not judged) is dropped and counted.  Clear when
    the interval excludes 0.5: `excludes(interval, 0.5)`."""
    bad = [o for o in outcomes if o is not None and o not in OUTCOMES]
    if bad:
        raise ValueError(f"win_rate() takes outcomes 'a', 'b' or 'tie'; got {bad[0]!r}.")
    return _interval(*_clean(None if o is None else OUTCOMES[o] for o in outcomes), label, RATE, resamples, seed)


def paired_difference(
    a: Sequence[float | bool | None],
    b: Sequence[float | bool | None],
    label: str = "paired difference a − b",
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """The mean of a − b over items judged for both (same items, same order).  The bootstrap resamples the same
    indices for both lists.  An item missing or NaN on either side is dropped and counted.  Two lists of bools
    give a difference of rates (percentage points).  Clear when the interval excludes 0: `excludes(interval, 0)`."""
    if len(a) != len(b):
        raise ValueError(f"A paired difference needs the same items on both sides; got {len(a)} and {len(b)}.")
    kind = RATE_DIFFERENCE if _all_bool(a) and _all_bool(b) else DIFFERENCE
    keep = [_finite(x) and _finite(y) for x, y in zip(a, b, strict=True)]
    xa, _ = _clean(x for x, k in zip(a, keep, strict=True) if k)
    xb, _ = _clean(y for y, k in zip(b, keep, strict=True) if k)
    return _interval(xa - xb, keep.count(False), label, kind, resamples, seed)


def delta(
    before: Sequence[float | bool | None],
    after: Sequence[float | bool | None],
    paired: bool | None = None,
    label: str = "after − before",
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """after − before, e.g. a benchmark's accuracy after training minus the base's (forgetting: negative is worse).

    paired=True: the same items in the same order (the paired difference, the sharper test); False: independent
    samples, each resampled on its own and the difference of their means taken; None (default): paired when both
    lists have the same length.  Bools give a difference of rates (percentage points).  n is the number of pairs,
    or for unpaired samples the smaller sample's size (the label says both)."""
    if paired is None:
        paired = len(before) == len(after)
    if paired:
        return paired_difference(after, before, label, resamples, seed)
    kind = RATE_DIFFERENCE if _all_bool(before) and _all_bool(after) else DIFFERENCE
    xa, da = _clean(after)
    xb, db = _clean(before)
    label = f"{label} (unpaired: {len(xb)} before, {len(xa)} after)"
    method = _method(resamples, seed) + ", each sample resampled on its own"
    if not len(xa) or not len(xb):
        return Interval(None, None, None, 0, label, kind, da + db, method)
    value = float(xa.mean() - xb.mean())
    if np.all(xa == xa[0]) and np.all(xb == xb[0]):
        low = high = value
    else:
        (ma,) = _bootstrap([xa], resamples, seed)
        (mb,) = _bootstrap([xb], resamples, seed + 1)
        low, high = _bounds(ma - mb)
    return Interval(value, min(low, value), max(high, value), min(len(xa), len(xb)), label, kind, da + db, method)


def _finite(v) -> bool:
    return v is not None and not math.isnan(float(v))


# --- telling arms apart -------------------------------------------------------------------------------------------


def overlaps(x: Interval, y: Interval) -> bool:
    """True when both have data and their intervals share at least one point (touching counts as overlapping)."""
    return not x.empty and not y.empty and x.low <= y.high and y.low <= x.high  # type: ignore[operator]


def clear_difference(x: Interval, y: Interval) -> bool:
    """True only when both have data and their intervals do not overlap; False means "no clear difference"."""
    return not x.empty and not y.empty and not overlaps(x, y)


def excludes(interval: Interval, value: float) -> bool:
    """True when the interval lies wholly above or below `value` (0 for a difference, 0.5 for a win rate);
    False when it contains it or has no data."""
    return not interval.empty and (interval.low > value or interval.high < value)  # type: ignore[operator]


def rank(arms: dict[str, Interval], higher_is_better: bool = True) -> list[list[str]]:
    """Groups of arms, best group first; arms in one group are never ordered against each other.

    The rule: sort the arms by value (best first; equal values keep their given order).  The best remaining arm
    leads a group, and the group is it and every remaining arm whose interval overlaps the LEADER's interval (not
    any member's: overlaps do not chain).  Remove the group, repeat.  So each group's leader is clearly better
    than every arm in a later group, and no arm in a group is clearly different from its leader; within a group
    the arms are listed by value only for display.  Arms with no data are left out (the caller says so)."""
    sign = -1.0 if higher_is_better else 1.0
    items = [(name, as_interval(iv)) for name, iv in arms.items()]
    remaining = sorted(((n, iv) for n, iv in items if not iv.empty), key=lambda item: sign * item[1].value)
    groups: list[list[str]] = []
    while remaining:
        leader = remaining[0][1]
        group = [(n, iv) for n, iv in remaining if overlaps(leader, iv)]
        groups.append([n for n, _ in group])
        remaining = [(n, iv) for n, iv in remaining if not overlaps(leader, iv)]
    return groups
