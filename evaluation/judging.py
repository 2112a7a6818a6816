"""The comparison's judges and its verdict: which arm answers better, with intervals, and which to ship.

Each judge is optional and configured under the comparison's `judges:` (all arms' replies to the same held-out
prompts, same greedy decoding):

    judges:
      primary: verifiable            # the judge the verdict follows (default: llm, else reward_model, else verifiable)
      verifiable: {mode: normalised} # exact | normalised | contains | regex (+ pattern); needs reference answers
      reward_model: {model: runs/rm} # a reward run folder or Hub id; or {train: true}: trained on preference_data
      llm: {model: Qwen/Qwen2.5-7B-Instruct, backend: inference, provider: auto}   # pairwise, both orders
      forgetting: {tasks: [demo_general], limit: 200}   # lm-evaluation-harness, base vs each trained arm

Every rate comes with its sample size and a 95 % bootstrap interval (evaluation/stats.py); arms whose intervals
overlap are "no clear difference" and never ranked (evaluation/verdict.py).  The time each judge took is recorded.
"""

from __future__ import annotations

import logging
import time
from itertools import combinations

from core.errors import ConfigError, user_message
from evaluation import stats
from evaluation.judges import verifiable
from evaluation.verdict import verdict

log = logging.getLogger(__name__)
KEYS = {"primary", "verifiable", "reward_model", "llm", "forgetting"}
RESULT_NAMES = {"verifiable": "verifiable", "reward_model": "reward_model", "llm": "llm_pairwise"}
BASELINES = ("base", "prompting")


def validate(raw) -> dict:
    """The `judges:` section, checked; an empty section means the verifiable judge alone."""
    cfg = dict(raw or {"verifiable": {}})
    unknown = set(cfg) - KEYS
    if unknown:
        raise ConfigError(f"Unknown judges {sorted(unknown)}: use {sorted(KEYS - {'primary'})} (and primary).")
    if "verifiable" in cfg:
        v = {"mode": "normalised", "pattern": None, **(cfg["verifiable"] or {})}
        if v["mode"] not in verifiable.MODES:
            raise ConfigError(
                f"judges.verifiable.mode must be one of {', '.join(verifiable.MODES)}; got {v['mode']!r}."
            )
        if v["mode"] == "regex" and not v.get("pattern"):
            raise ConfigError("judges.verifiable.mode regex needs a pattern, e.g. pattern: '^The answer is {answer}'.")
        cfg["verifiable"] = v
    if "reward_model" in cfg:
        r = dict(cfg["reward_model"] or {})
        if not r.get("model") and not r.get("train"):
            raise ConfigError("judges.reward_model needs model: a reward run folder or Hub id, or train: true.")
        cfg["reward_model"] = r
    if "llm" in cfg:
        from evaluation.judges.llm import JudgeSettings

        JudgeSettings.from_dict(cfg["llm"])
    if "forgetting" in cfg:
        cfg["forgetting"] = dict(cfg["forgetting"] or {})
    enabled = [k for k in ("llm", "reward_model", "verifiable", "forgetting") if k in cfg]
    primary = cfg.get("primary") or next((k for k in enabled if k != "forgetting"), None)
    if primary is not None and (primary not in cfg or primary == "forgetting"):
        raise ConfigError(f"judges.primary must be one of the judges configured ({', '.join(enabled)}).")
    cfg["primary"] = primary
    return cfg


def _verifiable(settings: dict, replies: dict[str, list[str]], references: list) -> dict | None:
    if not any(r is not None for r in references):
        return None
    per_arm = {
        arm: verifiable.score(texts, references, settings["mode"], settings.get("pattern"))
        for arm, texts in replies.items()
    }
    return {
        "settings": settings,
        "per_prompt": per_arm,
        "results": {arm: stats.rate(ok, label="verifiable answers") for arm, ok in per_arm.items()},
    }


def _reward(settings: dict, prompts: list, replies: dict[str, list[str]], runs: dict) -> dict:
    from evaluation.judges import reward
    from trainers.reward import load_scorer

    model = settings.get("model") or str(runs.get("reward", ""))
    if not model:
        raise ConfigError("The reward-model judge was to be trained here, but the reward run did not finish.")
    out = reward.judge(load_scorer(model), prompts, replies)
    return {
        "settings": {**settings, "model": model},
        "per_prompt": out["scores"],
        "results": out["mean"],
        "vs_base": out["vs_base"],
        "pairwise": out["pairwise"],
    }


def _llm(settings: dict, prompts: list, replies: dict[str, list[str]], token: str | None) -> dict:
    from evaluation.judges.llm import JudgeSettings, PairwiseJudge, judge_pairs, summarize

    judge_settings = JudgeSettings.from_dict(settings)
    trained = [a for a in replies if a != "base"]
    pairs = [(a, "base") for a in trained] + list(combinations(trained, 2))
    records, pairwise, summaries = {}, {}, {}
    judge = PairwiseJudge(judge_settings, token=token)
    try:
        for a, b in pairs:
            recs = judge_pairs(prompts, replies[a], replies[b], judge_settings, judge=judge)
            key = f"{a}|{b}"
            records[key] = recs
            pairwise[key] = stats.win_rate([r["outcome"] for r in recs], label=f"{a} over {b}")
            summaries[key] = summarize(recs)
    finally:
        close = getattr(judge, "close", None)
        if close:
            close()
    return {"settings": judge_settings.describe(), "records": records, "results": pairwise, "summaries": summaries}


def _forgetting(settings: dict, base_path: str, adapters: dict) -> dict:
    from evaluation.forgetting import forgetting_check

    trained = {arm: path for arm, path in adapters.items() if path}
    checked = forgetting_check(base_path, {"base": None, **trained}, **settings)
    per_arm = {arm: entry.get("wall_time_s") for arm, entry in checked.get("arms", {}).items()}
    scores = {
        arm: {task: t.get("value") for task, t in entry.get("tasks", {}).items()}
        for arm, entry in checked.get("arms", {}).items()
    }
    return {
        "settings": {**settings, **(checked.get("settings") or {})},
        "tasks": checked.get("tasks"),
        "scores": scores,
        "wall_time_s": per_arm,
        "deltas": deltas(checked),
    }


def deltas(checked: dict) -> dict:
    """{arm: {task: Interval of after - before}} from forgetting_check's per-item 0/1 lists (aligned by doc id,
    so the bootstrap is paired)."""
    arms = checked.get("arms") or {}
    base = {task: t.get("correct") or [] for task, t in (arms.get("base") or {}).get("tasks", {}).items()}
    out: dict[str, dict] = {}
    for arm, entry in arms.items():
        if arm == "base":
            continue
        out[arm] = {
            task: stats.delta(base[task], t.get("correct") or [], label=f"{task} (after - before)")
            for task, t in entry.get("tasks", {}).items()
            if base.get(task)
        }
    return out


def run(
    cfg: dict,
    prompts: list,
    references: list,
    replies: dict[str, list[str]],
    base_path: str,
    adapters: dict[str, str | None],
    runs: dict,
    costs: dict[str, dict],
    token: str | None = None,
    labels: dict[str, str] | None = None,
) -> dict:
    """Every configured judge on the arms' replies, then the verdict (arms named by `labels` in its sentence).
    Returns the report's `judges` section: {judge: {settings, results: {arm or "a|b": Interval dict}, ...},
    "seconds": {judge: s}, "verdict": {...}}."""
    out: dict = {"seconds": {}, "primary": cfg.get("primary")}
    results: dict[str, dict] = {}
    steps = [
        ("verifiable", lambda s: _verifiable(s, replies, references)),
        ("reward_model", lambda s: _reward(s, prompts, replies, runs)),
        ("llm", lambda s: _llm(s, prompts, replies, token)),
        ("forgetting", lambda s: _forgetting(s, base_path, adapters)),
    ]
    for name, judge in steps:
        if name not in cfg:
            continue
        started = time.perf_counter()
        try:
            section = judge(cfg[name])
        except Exception as exc:  # noqa: BLE001 - a judge that fails is reported, the report still comes out
            out[name] = {"error": user_message(exc)}
            log.warning("judge %s failed: %s", name, out[name]["error"])
            continue
        finally:
            out["seconds"][name] = round(time.perf_counter() - started, 2)
        if section is None:
            out[name] = {"skipped": "the held-out rows carry no reference answer"}
            continue
        if name != "forgetting":
            results[RESULT_NAMES[name]] = section["results"]
        out[name] = _plain(section)
    primary = RESULT_NAMES.get(cfg.get("primary") or "")
    forgetting = (out.get("forgetting") or {}).get("deltas")
    fallback = None
    if primary not in results:  # the primary judge failed or had nothing to judge: the next one decides, said so
        fallback = next((n for n in ("llm_pairwise", "reward_model", "verifiable") if n in results), None)
        primary, fallback = fallback, primary
    if primary and primary in results:
        name = _relabel(labels or {})
        judged = {name(k): v for k, v in results[primary].items()}
        out["verdict"] = verdict(
            primary,
            {primary: judged},
            {name(k): v for k, v in costs.items()},
            {name(k): v for k, v in (_intervals(forgetting) or {}).items()} or None,
            baselines=tuple(name(b) for b in BASELINES),
        )
        if fallback:
            out["verdict"]["sentence"] = (
                f"(The {fallback.replace('_', ' ')} judge gave no results, so the {primary.replace('_', ' ')} judge "
                f"decides.) {out['verdict']['sentence']}"
            )
    else:
        out["verdict"] = {
            "ship": None,
            "sentence": "No judge produced results, so there is no verdict.",
            "primary": None,
        }
    return out


def _relabel(labels: dict[str, str]):
    """arm -> label, and "a|b" -> "label a|label b" (pairwise keys)."""

    def name(key: str) -> str:
        return "|".join(labels.get(part, part) for part in key.split("|"))

    return name


def _intervals(forgetting: dict | None) -> dict | None:
    if not forgetting:
        return None
    return {arm: {task: stats.as_interval(iv) for task, iv in tasks.items()} for arm, tasks in forgetting.items()}


def _plain(value):
    """Intervals as dicts, all the way down (for report.json)."""
    if isinstance(value, stats.Interval):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
