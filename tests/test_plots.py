"""The comparison's loss figure: one panel per loss kind, held-out losses drawn as points (never a line)."""

from evaluation import render
from trainers.plots import TOKENS, loss_figure


def _rows(start: float, end: float, tokens_per_step: int, evals: dict[int, float]) -> list[dict]:
    steps = range(0, 50, 5)
    train = [{"step": s, "loss": start + (end - start) * s / 45, TOKENS: s * tokens_per_step} for s in steps]
    return train + [{"step": s, "eval_loss": v} for s, v in evals.items()]


def test_sft_and_dpo_losses_get_their_own_panels_and_held_out_losses_are_points():
    sft = _rows(10.0, 5.5, 100, {0: 10.0, 45: 6.0})
    dpo = _rows(0.69, 0.46, 80, {45: 0.5})
    arms = {
        "sft": {"label": "SFT", "_rows": sft},
        "dpo": {"label": "DPO", "_rows": dpo},
        "sft_dpo": {"label": "SFT→DPO", "_rows": dpo},
        "prompting": {"label": "Prompting", "_rows": []},
    }
    panels = render.loss_panels_of(arms)
    assert {t: list(runs) for t, runs in panels.items()} == {
        "SFT loss (train line, held-out points)": ["SFT"],
        "DPO loss (train line, held-out points)": ["DPO", "SFT→DPO"],
    }
    assert not any("_rows" in arm for arm in arms.values())
    fig = loss_figure(panels, x=TOKENS)
    sft_ax, dpo_ax = fig.axes
    assert sft_ax.get_title().startswith("SFT loss") and dpo_ax.get_title().startswith("DPO loss")
    assert dpo_ax.get_ylim()[1] < 1, "the DPO panel's axis is scaled to DPO losses, not to SFT's"
    drawn = [ln for ln in sft_ax.get_lines() if len(ln.get_xdata())]  # legend proxies hold no data
    held_out = [ln for ln in drawn if list(ln.get_ydata()) == [10.0, 6.0]]
    assert len(held_out) == 1 and held_out[0].get_linestyle() == "None", "held-out evaluations must not be joined"
    train = [ln for ln in drawn if len(ln.get_xdata()) == 10]
    assert train and train[0].get_linestyle() == "-"
    assert list(held_out[0].get_xdata()) == [0, 4500], "an evaluation row takes the tokens seen by its step"
    labels = [t.get_text() for t in dpo_ax.get_legend().get_texts()]
    assert labels == ["DPO train", "DPO held-out", "SFT→DPO train", "SFT→DPO held-out"]


def test_nothing_logged_draws_nothing(tmp_path):
    assert loss_figure({"SFT loss": {"SFT": [{"step": 1, "learning_rate": 1e-3}]}}) is None
