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


def _draw_losses(ax, runs: dict[str, list[dict]], x: str, colours: dict[str, str]) -> bool:
    """Training loss (solid line) and held-out loss (points: each one an evaluation, never joined into a line that
    would look measured in between) of each run on one axis; False if nothing was logged."""
    drawn = False
    for label, rows in runs.items():
        x_of = _x_of(rows, x)
        for key, suffix in (("loss", "train"), ("eval_loss", "held-out")):
            points = [(x_of(r["step"]), r[key]) for r in rows if isinstance(r.get(key), (int, float)) and "step" in r]
            points = [(a, b) for a, b in points if a is not None]
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            if key == "loss":
                ax.plot(xs, ys, "-", color=colours[label], marker="o" if len(points) < 3 else None)
            else:
                ax.plot(xs, ys, linestyle="none", marker="D", markersize=6, color=colours[label], mfc="white")
            proxy = {"marker": "D", "linestyle": "none", "mfc": "white"} if key == "eval_loss" else {"linestyle": "-"}
            ax.plot([], [], color=colours[label], label=f"{label} {suffix}", **proxy)
            drawn = True
    return drawn


def loss_curves(runs: dict[str, list[dict]], path: Path, title: str = "Loss", x: str = "step") -> Path | None:
    """Training loss (line) and held-out loss (points) against step (or `x`, e.g. TOKENS: tokens seen, which
    aligns arms whose steps hold different numbers of tokens), one colour per run; None if nothing logged."""
    return loss_panels({title: runs}, path, x=x)


def loss_panels(panels: dict[str, dict[str, list[dict]]], path: Path, x: str = "step") -> Path | None:
    """One panel per loss kind ({panel title: {run label: metrics rows}}): an SFT loss (token NLL, ~1-10) and a DPO
    loss (~0.7) on one axis would flatten the DPO curves.  A run keeps its colour across panels; panels with nothing
    logged are left out; None if no panel has anything."""
    fig = loss_figure(panels, x)
    if fig is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    _pyplot().close(fig)
    return path


def loss_figure(panels: dict[str, dict[str, list[dict]]], x: str = "step"):
    """The matplotlib figure of loss_panels, or None when nothing was logged."""
    plt = _pyplot()
    labels = list(dict.fromkeys(label for runs in panels.values() for label in runs))
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    shown = {t: runs for t, runs in panels.items() if any(_has_loss(rows) for rows in runs.values())}
    if not shown:
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(7 if len(shown) == 1 else 5.2 * len(shown), 4), dpi=100)
    axes = [axes] if len(shown) == 1 else list(axes)
    for ax, (title, runs) in zip(axes, shown.items(), strict=True):
        _draw_losses(ax, runs, x, colours)
        ax.set_xlabel("tokens seen" if x == TOKENS else x)
        ax.set_ylabel("loss")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _has_loss(rows: list[dict]) -> bool:
    return any(isinstance(r.get(k), (int, float)) and "step" in r for r in rows for k in ("loss", "eval_loss"))


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
    fig.tight_layout(rect=(0, 0, 1, 0.94))  # room above the panel titles for a viewer's label
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
