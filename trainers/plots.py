"""Run charts (PNG, matplotlib's headless Agg backend): loss curves of one or several runs, metric bars.

Below both evaluation/ (comparison reports) and hub/ (the pushed loss curve), which are siblings."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


TOKENS = "num_input_tokens_seen"  # transformers' running count of input tokens, logged with the loss


def _x_of(rows: list[dict], x: str):
    """step -> x for a run's rows: the step itself, or the tokens seen by that step (an evaluation row, logged
    without the count, takes the count of the last training row at or before its step; step 0 is 0 tokens)."""
    if x == "step":
        return lambda step: step
    known = sorted((r["step"], r[x]) for r in rows if isinstance(r.get(x), (int, float)) and "step" in r)

    def at(step):
        before = [v for s, v in known if s <= step]
        return before[-1] if before else (0 if step == 0 else None)

    return at


def loss_curves(runs: dict[str, list[dict]], path: Path, title: str = "Loss", x: str = "step") -> Path | None:
    """Training loss (solid) and held-out loss (dashed) against step (or `x`, e.g. TOKENS: tokens seen, which
    aligns arms whose steps hold different numbers of tokens), one colour per run; None if nothing logged."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    drawn = False
    for i, (label, rows) in enumerate(runs.items()):
        colour = f"C{i}"
        x_of = _x_of(rows, x)
        for key, style, suffix in (("loss", "-", "train"), ("eval_loss", "--", "held-out")):
            points = [(x_of(r["step"]), r[key]) for r in rows if isinstance(r.get(key), (int, float)) and "step" in r]
            points = [(a, b) for a, b in points if a is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, style, color=colour, marker="o" if len(points) < 3 else None, label=f"{label} {suffix}")
                drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("tokens seen" if x == TOKENS else x)
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def metric_bars(values: dict[str, dict[str, float | None]], path: Path) -> Path | None:
    """One panel per metric, one bar per model (missing values are left out); None if there is nothing."""
    metrics = [m for m in values if any(v is not None for v in values[m].values())]
    if not metrics:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4), dpi=100, squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        items = [(name, v) for name, v in values[metric].items() if v is not None]
        names = [n for n, _ in items]
        ax.bar(range(len(items)), [v for _, v in items], color=[f"C{i}" for i in range(len(items))])
        ax.set_xticks(range(len(items)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
