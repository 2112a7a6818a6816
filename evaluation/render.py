"""The comparison report: report.json (everything), report.md (tables, images, side-by-side generations),
loss_curves.png (all arms overlaid) and metrics.png (bars per metric)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from evaluation import stats
from trainers import methods
from trainers.plots import TOKENS, loss_panels, metric_bars

COLUMNS = [  # (header, where, key, format)
    ("held-out NLL", "metrics", "nll", "{:.3f}"),
    ("perplexity", "metrics", "perplexity", "{:.2f}"),
    ("pref. accuracy", "metrics", "preference_accuracy", "{:.2f}"),
    ("log-p margin", "metrics", "logprob_margin", "{:+.2f}"),
    ("reward acc. vs base", "metrics", "reward_accuracy", "{:.2f}"),
    ("reward margin", "metrics", "reward_margin", "{:+.3f}"),
    ("mean reply tokens", "metrics", "mean_reply_tokens", "{:.1f}"),
    ("wall s", "cost", "wall_time_s", "{:.0f}"),
    ("$ on the tier", "cost", "dollars", "{:.4f}"),
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


WHITESPACE = {"\n": ("line break", "⏎"), " ": ("space", "␣"), "\t": ("tab", "⇥"), "\r": ("carriage return", "␍")}


def _whitespace(text: str, shown: int = 16) -> str:
    """What a text of only whitespace is: '(only whitespace: 24 line breaks ⏎⏎⏎…)'."""
    counts: dict[str, int] = {}
    for ch in text:
        name = WHITESPACE.get(ch, ("other whitespace character",))[0]
        counts[name] = counts.get(name, 0) + 1
    symbols = "".join(WHITESPACE.get(ch, ("", "·"))[1] for ch in text)
    symbols = symbols if len(symbols) <= shown else symbols[:shown] + "…"
    what = ", ".join(f"{n} {name}{'' if n == 1 else 's'}" for name, n in counts.items())
    return f"(only whitespace: {what} {symbols})"


def _cell(text: str, limit: int = 120) -> str:
    """One table cell: '(empty)' only for an empty text; a text of only whitespace says what it is."""
    text = str(text)
    if not text:
        return "(empty)"
    if not text.strip():
        return _whitespace(text)
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _training_note(method: str, train: dict | None) -> str:
    """What the trainer does with the same overlong rows, from settings.truncation.training."""
    if not train:
        return ""
    length, keeps = train.get("max_length"), train.get("keeps")
    if length is None or keeps is None:
        return f" {method} training cuts no token of these rows (no max_length, or packing that keeps every token)."
    if method == "DPO":
        if keeps == "end":
            return (
                f" DPO training (max_length {length}, truncation keep_end) keeps the last {length} tokens of the "
                "prompt with each reply, cutting each side on its own."
            )
        return (
            f" DPO training (max_length {length}, truncation keep_start) keeps the prompt and the start of each "
            f"reply instead, and drops pairs whose prompt alone reaches {length} tokens."
        )
    if keeps == "end":
        return f" {method} training (max_length {length}, truncation keep_end) also keeps the last {length} tokens."
    return f" {method} training (max_length {length}) keeps the first {length} tokens of a row instead."


def _truncation_lines(settings: dict) -> list[str]:
    """How held-out rows longer than the evaluation's max_length were scored, per metric (the counts in
    settings.truncation, and in every model's metrics)."""
    cut = settings.get("truncation")
    if not cut:
        return []
    limit, held, training = cut["max_length"], settings["held_out"], cut.get("training") or {}
    lines = []
    rows = cut.get("sft_rows")
    if rows is not None and held.get("sft_rows"):
        n, over = held["sft_rows"], rows["prompt_cut"] + rows["reply_cut"]
        if not over:
            text = f"all {n} held-out instruction rows fit in max_length {limit} tokens; none was cut."
        else:
            parts = []
            if rows["prompt_cut"]:
                parts.append(f"{rows['prompt_cut']} had their prompt cut from the left and their whole reply scored")
            if rows["reply_cut"]:
                parts.append(
                    f"{rows['reply_cut']} lost their whole prompt and the start of their reply (a reply alone "
                    f"reaches {limit} tokens): the rest of the reply is scored without its prompt"
                )
            text = (
                f"{over} of {n} held-out instruction rows {'was' if over == 1 else 'were'} longer than max_length "
                f"{limit} tokens: " + "; ".join(parts) + "." + _training_note("SFT", training.get("sft"))
            )
        lines.append(f"- Held-out NLL: {text}")
    pairs = cut.get("preference_pairs")
    if pairs is not None and held.get("preference_pairs"):
        n, over = held["preference_pairs"], pairs["prompt_cut"] + pairs["excluded"]
        if not over:
            text = f"all {n} held-out pairs fit in max_length {limit} tokens; none was cut."
        else:
            parts = []
            if pairs["prompt_cut"]:
                parts.append(
                    f"{pairs['prompt_cut']} had their prompt cut from the left, by the same tokens before the chosen "
                    "and the rejected reply, and both replies scored whole"
                )
            if pairs["excluded"]:
                parts.append(
                    f"{_count(pairs['excluded'], 'is', 'are')} excluded, because a reply alone reaches {limit} "
                    "tokens and no prompt would be left to compare the replies after: the preference and reward "
                    f"columns are over the other {_count(n - pairs['excluded'], 'pair', 'pairs')}"
                )
            text = (
                f"{over} of {n} held-out pairs {'was' if over == 1 else 'were'} longer than max_length {limit} "
                "tokens: " + "; ".join(parts) + "." + _training_note("DPO", training.get("dpo"))
            )
        lines.append(f"- Preference metrics: {text}")
    if not lines:
        return []
    return [
        "",
        f"Held-out rows longer than max_length {limit} tokens are cut from the left here, keeping the reply:",
        *lines,
    ]


def _prompt_text(prompt) -> str:
    if isinstance(prompt, list):
        return next((m["content"] for m in reversed(prompt) if m.get("role") == "user"), "")
    return str(prompt)


def markdown(data: dict) -> str:
    arms = data["arms"]
    rows = [("base", {"label": "base (no training)", "status": "—", **data["base"], "cost": {}})]
    rows += list(arms.items())
    settings = data["settings"]
    labels = {"base": "base", **{name: e.get("label", name) for name, e in arms.items()}}
    lines = [
        f"# {' vs '.join(labels[n] for n in labels)} on {data['base_model']}",
        "",
        *_verdict_lines(data),
        *_judge_lines(data, labels),
        "## Likelihood metrics and cost",
        "",
        f"Same base, PEFT settings ({settings.get('peft') or 'defaults'}), seed {settings.get('seed')} and held-out "
        f"sets for every model: {settings['held_out']['sft_rows']} instruction rows (NLL on completion tokens only) "
        f"and {settings['held_out']['preference_pairs']} preference pairs (log-probabilities of the chosen and "
        f"rejected completions; implicit reward with beta {settings['evaluation']['beta']} against the base).",
        *_truncation_lines(settings),
        "",
        "Reward accuracy vs base is over the decided pairs: a pair whose implicit reward margin is exactly 0 (the "
        "model scores it exactly as the base does, as the base itself does every pair) is a tie, not a wrong "
        "preference, and the ties are counted in brackets. TRL's rewards/accuracies in the training logs counts "
        "ties as wrong ((chosen > rejected).mean() over every pair); report.json has that number as "
        "reward_accuracy_trl.",
        "",
        "| model | status | " + " | ".join(c[0] for c in COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for name, entry in rows:
        cells = [_fmt((entry.get(where) or {}).get(key), fmt) for _, where, key, fmt in COLUMNS]
        ties = (entry.get("metrics") or {}).get("reward_ties")
        if ties:
            cells[[c[2] for c in COLUMNS].index("reward_accuracy")] += f" ({ties} tied)"
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
            "Mean reply tokens counts every generated token, the end token included: (empty) is a reply of only "
            "the end token, and a reply of only whitespace is shown as what it is (⏎ line break, ␣ space, ⇥ tab).",
            "",
            "Marks after a reply: ✓/✗ the verifiable judge (reference answer matched or not), r= the reward model's "
            "score, and the LLM judge's verdict against the base.",
            "",
            "| prompt | base | " + " | ".join(e["label"] for _, e in done) + " |",
            "|---|---|" + "---|" * len(done),
        ]
        for i, prompt in enumerate(data["prompts"]):
            cells = [_reply_cell(data, "base", data["base"]["generations"][i], i)]
            cells += [_reply_cell(data, n, e["generations"][i], i) for n, e in done]
            lines.append("| " + " | ".join([_cell(_prompt_text(prompt)), *cells]) + " |")
    if data.get("config_diff"):
        arm_names = sorted({a for v in data["config_diff"].values() for a in v})
        lines += [
            "",
            "## How the arms' configs differ",
            "",
            "| setting | " + " | ".join(labels.get(a, a) for a in arm_names) + " |",
        ]
        lines += ["|---|" + "---|" * len(arm_names)]
        for key, values in data["config_diff"].items():
            lines.append(f"| `{key}` | " + " | ".join(_cell(str(values.get(a, "—")), 60) for a in arm_names) + " |")
    lines += [
        "",
        "How to read it: SFT should lower held-out NLL against the base; DPO should raise preference accuracy and "
        "the reward margin; SFT→DPO usually keeps SFT's format and adds DPO's preference. Small held-out sets are "
        "noisy; the cost columns are this machine's.",
    ]
    return "\n".join(lines) + "\n"


def _verdict_lines(data: dict) -> list[str]:
    v = data.get("verdict") or {}
    if not v:
        return []
    judge = v.get("primary")
    head = (
        f"**Verdict ({judge.replace('_', ' ')} judge): {v.get('sentence')}**" if judge else f"**{v.get('sentence')}**"
    )
    return [head, ""]


def _judge_lines(data: dict, labels: dict) -> list[str]:
    judges = data.get("judges") or {}
    lines: list[str] = []
    seconds = judges.get("seconds") or {}
    for name in ("verifiable", "reward_model", "llm", "forgetting"):
        if (judges.get(name) or {}).get("error"):
            lines += [f"- The {name.replace('_', ' ')} judge failed: {judges[name]['error']}", ""]
    for name, title in (("verifiable", "Verifiable answers"), ("reward_model", "Reward-model judge")):
        section = judges.get(name)
        if not section or "results" not in section:
            continue
        lines += [f"## {title} ({seconds.get(name, 0):.1f} s)", "", f"Settings: `{section.get('settings')}`.", ""]
        lines += ["| arm | " + ("share correct" if name == "verifiable" else "mean reward") + " | win rate vs base |"]
        lines += ["|---|---|---|"]
        for arm, iv in section["results"].items():
            vs = (section.get("vs_base") or {}).get(arm)
            lines.append(f"| {labels.get(arm, arm)} | {_iv(iv)} | {_iv(vs) if vs else '—'} |")
        lines.append("")
    llm = judges.get("llm")
    if llm and "results" in llm:
        lines += [
            f"## Pairwise LLM judge ({seconds.get('llm', 0):.1f} s)",
            "",
            f"Settings: `{llm.get('settings')}`.",
            "",
        ]
        lines += [
            "Each pair of replies was judged in both orders; a verdict that flips with the order is a tie; ties "
            "count one half in the win rate.",
            "",
            "| arm A | arm B | A's win rate | ties (from flips) |",
            "|---|---|---|---|",
        ]
        for key, iv in llm["results"].items():
            a, b = key.split("|")
            summary = (llm.get("summaries") or {}).get(key, {})
            lines.append(
                f"| {labels.get(a, a)} | {labels.get(b, b)} | {_iv(iv)} | {summary.get('ties', '—')} "
                f"({summary.get('ties_from_flips', '—')}) |"
            )
        lines.append("")
    forgetting = judges.get("forgetting")
    if forgetting and forgetting.get("deltas"):
        lines += [
            f"## Forgetting check ({seconds.get('forgetting', 0):.1f} s)",
            "",
            f"Settings: `{forgetting.get('settings')}`.",
            "",
        ]
        lines += ["| arm | task | after − before |", "|---|---|---|"]
        for arm, tasks in forgetting["deltas"].items():
            for task, iv in tasks.items():
                lines.append(f"| {labels.get(arm, arm)} | {task} | {_iv(iv)} |")
        lines.append("")
    if lines:
        lines = [
            "Every rate below has its sample size and a 95 % bootstrap interval; arms whose intervals overlap "
            "show no clear difference and are not ranked.",
            "",
            *lines,
        ]
    return lines


def _iv(value) -> str:
    return stats.as_interval(value).text() if value else "—"


def _reply_cell(data: dict, arm: str, reply: str, i: int) -> str:
    judges = data.get("judges") or {}
    marks = []
    ok = ((judges.get("verifiable") or {}).get("per_prompt") or {}).get(arm)
    if ok and i < len(ok) and ok[i] is not None:
        marks.append("✓" if ok[i] else "✗")
    scores = ((judges.get("reward_model") or {}).get("per_prompt") or {}).get(arm)
    if scores and i < len(scores):
        marks.append(f"r={scores[i]:+.2f}")
    records = ((judges.get("llm") or {}).get("records") or {}).get(f"{arm}|base")
    if records and i < len(records):
        marks.append({"a": "LLM: beats base", "b": "LLM: loses to base", "tie": "LLM: tie"}[records[i]["outcome"]])
    return _cell(reply) + (f" {' '.join(marks)}" if marks else "")


def loss_panels_of(arms: dict) -> dict[str, dict[str, list[dict]]]:
    """{panel title: {arm label: metrics rows}}, one panel per loss kind: the method of the arm's last stage (an
    SFT→DPO arm's own run is its DPO stage).  Takes each arm's "_rows" out of the report data."""
    panels: dict[str, dict[str, list[dict]]] = {}
    for name, entry in arms.items():
        rows = entry.pop("_rows", [])
        method = methods.stages(name)[-1] if name in methods.arms() else None
        if rows and method:
            title = f"{methods.get(method).label} loss (train line, held-out points)"
            panels.setdefault(title, {})[entry["label"]] = rows
    return panels


def write(data: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    panels = loss_panels_of(data["arms"])
    images = {}
    if loss_panels(panels, out_dir / "loss_curves.png", x=TOKENS):
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
