"""The comparison report: report.json (everything), report.md (tables, images, side-by-side generations),
loss_curves.png (all arms overlaid) and metrics.png (bars per metric)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from trainers.plots import loss_curves, metric_bars

COLUMNS = [  # (header, where, key, format)
    ("held-out NLL", "metrics", "nll", "{:.3f}"),
    ("perplexity", "metrics", "perplexity", "{:.2f}"),
    ("pref. accuracy", "metrics", "preference_accuracy", "{:.2f}"),
    ("log-p margin", "metrics", "logprob_margin", "{:+.2f}"),
    ("reward acc. vs base", "metrics", "reward_accuracy", "{:.2f}"),
    ("reward margin", "metrics", "reward_margin", "{:+.3f}"),
    ("mean reply tokens", "metrics", "mean_reply_tokens", "{:.1f}"),
    ("wall s", "cost", "wall_time_s", "{:.0f}"),
    ("trainable params", "cost", "trainable_params", "{:,}"),
    ("peak MB", "cost", "peak_memory_mb", "{:,.0f}"),
    ("tokens seen", "cost", "tokens_seen", "{:,}"),
]
BARS = [
    ("held-out NLL ↓", "nll"),
    ("preference accuracy ↑", "preference_accuracy"),
    ("log-p margin ↑", "logprob_margin"),
]


def _fmt(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _cell(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|") or "(empty)"


def _prompt_text(prompt) -> str:
    if isinstance(prompt, list):
        return next((m["content"] for m in reversed(prompt) if m.get("role") == "user"), "")
    return str(prompt)


def markdown(data: dict) -> str:
    arms = data["arms"]
    rows = [("base", {"label": "base (no training)", "status": "—", **data["base"], "cost": {}})]
    rows += list(arms.items())
    settings = data["settings"]
    lines = [
        f"# SFT vs DPO vs SFT→DPO on {data['base_model']}",
        "",
        f"Same base, PEFT settings ({settings.get('peft') or 'defaults'}), seed {settings.get('seed')} and held-out "
        f"sets for every model: {settings['held_out']['sft_rows']} instruction rows (NLL on completion tokens only) "
        f"and {settings['held_out']['preference_pairs']} preference pairs (log-probabilities of the chosen and "
        f"rejected completions; implicit reward with beta {settings['evaluation']['beta']} against the base).",
        "",
        "| model | status | " + " | ".join(c[0] for c in COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for name, entry in rows:
        cells = [_fmt((entry.get(where) or {}).get(key), fmt) for _, where, key, fmt in COLUMNS]
        with_sft = (entry.get("cost") or {}).get("wall_time_s_with_sft")
        if with_sft is not None:  # SFT→DPO's real cost includes the SFT run it starts from
            cells[[c[2] for c in COLUMNS].index("wall_time_s")] += f" ({with_sft:.0f} with SFT)"
        status = entry.get("status", "—")
        if entry.get("error"):
            status = f"{'skipped' if status == 'skipped' else 'failed'}: {_cell(entry['error'], 160)}"
        lines.append(f"| {entry.get('label', name)} | {status} | " + " | ".join(cells) + " |")
    if data.get("images", {}).get("loss_curves"):
        lines += ["", "![Loss curves](loss_curves.png)"]
    if data.get("images", {}).get("metrics"):
        lines += ["", "![Held-out metrics](metrics.png)"]
    done = [(n, e) for n, e in arms.items() if e.get("generations")]
    if data.get("prompts") and (done or data["base"].get("generations")):
        lines += [
            "",
            f"## Greedy generations on held-out prompts (max {settings['evaluation']['max_new_tokens']} new tokens)",
            "",
            "| prompt | base | " + " | ".join(e["label"] for _, e in done) + " |",
            "|---|---|" + "---|" * len(done),
        ]
        for i, prompt in enumerate(data["prompts"]):
            replies = [data["base"]["generations"][i]] + [e["generations"][i] for _, e in done]
            lines.append("| " + " | ".join(_cell(t) for t in [_prompt_text(prompt), *replies]) + " |")
    lines += [
        "",
        "How to read it: SFT should lower held-out NLL against the base; DPO should raise preference accuracy and "
        "the reward margin; SFT→DPO usually keeps SFT's format and adds DPO's preference. Small held-out sets are "
        "noisy; the cost columns are this machine's.",
    ]
    return "\n".join(lines) + "\n"


def write(data: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    curves = {e["label"]: e.pop("_rows", []) for e in data["arms"].values()}
    images = {}
    if loss_curves(curves, out_dir / "loss_curves.png", "Training and held-out loss per arm"):
        images["loss_curves"] = "loss_curves.png"
    bars = {
        title: {
            "base": data["base"]["metrics"].get(key),
            **{e["label"]: (e.get("metrics") or {}).get(key) for e in data["arms"].values()},
        }
        for title, key in BARS
    }
    if metric_bars(bars, out_dir / "metrics.png"):
        images["metrics"] = "metrics.png"
    data["images"] = images
    (out_dir / "report.json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    (out_dir / "report.md").write_text(markdown(data), encoding="utf-8")
