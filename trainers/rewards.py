"""GRPO's rewards: the config's `rewards:` list, checked, and turned into the reward functions GRPOTrainer calls.

    rewards:
      - {name: accuracy}                                    # the reply's answer equals the row's solution (math)
      - {name: regex, pattern: '^The answer is \\d+\\.$', reward: 1.0, weight: 0.5}

Each entry names a reward; any entry may carry `weight` (GRPOConfig's reward_weights; 1.0 when left out):

- accuracy: TRL's `accuracy_reward`: 1.0 when the reply's answer verifies against the row's `solution` as math
  (math_verify; the reply must state it in LaTeX: `\\boxed{7}`, or `The final answer is $7$`, a bare 7 scores 0);
  rows without a solution, or whose solution is not math, are skipped.  Needs the math-verify package.
- think_format: TRL's `think_format_reward`: 1.0 when the reply starts with one `<think>...</think>` block.
- repetition_penalty (ngram_size 3, max_penalty -1.0): TRL's, 0 to max_penalty by the share of repeated token n-grams.
- overlong (max_completion_length: training's, soft_punish_cache: a quarter of it): TRL's soft overlong punishment
  (DAPO): 0 up to max_completion_length - soft_punish_cache tokens, then down to -1 at max_completion_length.
- reward_model (model: a `method: reward` run folder, or a Hub id): that model's score of prompt + reply.
- regex (pattern, reward 1.0): `reward` when the pattern is found anywhere in the reply (Python `re.search`; anchor
  with ^ and $ to match the whole reply, add (?s) for . across lines), else 0.
- python (path: "file.py:function"): your own function, called as TRL calls reward functions:
  `function(prompts=..., completions=..., completion_ids=..., solution=..., **kwargs) -> list[float | None]`.
  Refused on a shared Space (jobs/access.py): it runs your code in the Space.

Reward functions are module-level callable classes (not closures), so they stay picklable, as TRL's own are.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any

from core.errors import ConfigError

# name -> {option: default}; a default of REQUIRED must be given, None is filled at build time from the training args
REQUIRED = object()
OPTIONS: dict[str, dict[str, Any]] = {
    "accuracy": {},
    "think_format": {},
    "repetition_penalty": {"ngram_size": 3, "max_penalty": -1.0},
    "overlong": {"max_completion_length": None, "soft_punish_cache": None},
    "reward_model": {"model": REQUIRED},
    "regex": {"pattern": REQUIRED, "reward": 1.0},
    "python": {"path": REQUIRED},
}
NAMES = tuple(OPTIONS)
EXAMPLE = {
    "accuracy": "{name: accuracy}",
    "think_format": "{name: think_format}",
    "repetition_penalty": "{name: repetition_penalty, ngram_size: 3, max_penalty: -1.0}",
    "overlong": "{name: overlong, max_completion_length: 64, soft_punish_cache: 16}",
    "reward_model": "{name: reward_model, model: studio_home/runs/my-reward-run}",
    "regex": "{name: regex, pattern: '^The answer is \\d+\\.$', reward: 1.0}",
    "python": '{name: python, path: "my_rewards.py:score"}',
}
PYTHON_PATH = re.compile(r"(?P<file>.+\.py):(?P<function>[A-Za-z_]\w*)")


def math_verify_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("math_verify") is not None


# --- check: the config's entries, one sentence per mistake ------------------------------------------------------------


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: '{key}' must be a number, got {value!r}.")
    return value


def _whole(where: str, key: str, value: Any, least: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"{where}: '{key}' must be a whole number, {least} or more; got {value!r}.")
    return value


def _text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: '{key}' must be non-empty text, got {value!r}.")
    return value


def _check_one(i: int, entry: Any) -> dict:
    if not isinstance(entry, dict):
        raise ConfigError(f"rewards[{i}] must be a mapping such as {EXAMPLE['accuracy']}, got {entry!r}.")
    name = entry.get("name")
    if not isinstance(name, str) or name not in OPTIONS:
        close = difflib.get_close_matches(str(name), NAMES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"rewards[{i}] names reward {name!r}{hint}; use one of {', '.join(NAMES)}.")
    where = f"rewards[{i}] ({name})"
    options = OPTIONS[name]
    unknown = [k for k in entry if k not in ("name", "weight", *options)]
    if unknown:
        takes = ", ".join([*options, "weight"])
        raise ConfigError(f"{where} has no option {unknown[0]!r}; it takes {takes}, e.g. {EXAMPLE[name]}.")
    out: dict[str, Any] = {"name": name}
    for key, default in options.items():
        value = entry.get(key, default)
        if value is REQUIRED:
            raise ConfigError(f"{where} needs '{key}', e.g. {EXAMPLE[name]}.")
        out[key] = value
    if "weight" in entry:
        out["weight"] = _number(where, "weight", entry["weight"])
    return _check_options(where, out)


def _check_options(where: str, e: dict) -> dict:
    name = e["name"]
    if name == "accuracy" and not math_verify_available():
        raise ConfigError(
            f"{where} checks answers with the math-verify package, which is not installed: "
            "pip install math-verify, or score the answer's shape with a regex reward."
        )
    if name == "repetition_penalty":
        e["ngram_size"] = _whole(where, "ngram_size", e["ngram_size"], 1)
        if _number(where, "max_penalty", e["max_penalty"]) > 0:
            raise ConfigError(f"{where}: 'max_penalty' is a penalty, 0 or below (e.g. -1.0); got {e['max_penalty']!r}.")
    if name == "overlong":
        if e["max_completion_length"] is not None:
            e["max_completion_length"] = _whole(where, "max_completion_length", e["max_completion_length"], 1)
        if e["soft_punish_cache"] is not None:
            e["soft_punish_cache"] = _whole(where, "soft_punish_cache", e["soft_punish_cache"], 0)
        length, cache = e["max_completion_length"], e["soft_punish_cache"]
        if length is not None and cache is not None and cache > length:
            raise ConfigError(
                f"{where}: 'soft_punish_cache' ({cache}) is the stretch before max_completion_length ({length}) "
                "where the penalty grows, so it must not exceed it."
            )
    if name == "reward_model":
        _text(where, "model", e["model"])
    if name == "regex":
        _text(where, "pattern", e["pattern"])
        try:
            re.compile(e["pattern"])
        except re.error as exc:
            raise ConfigError(f"{where}: 'pattern' is not a valid regular expression ({exc}).") from None
        _number(where, "reward", e["reward"])
    if name == "python" and not PYTHON_PATH.fullmatch(_text(where, "path", e["path"])):
        raise ConfigError(f"{where}: 'path' must be a Python file and a function in it, like my_rewards.py:score.")
    return e


def check(entries: Any) -> list[dict]:
    """The `rewards:` list validated, with each reward's defaults filled in; ConfigError (one sentence) names what
    to change."""
    if not isinstance(entries, list):
        raise ConfigError(f"'rewards' must be a list such as [{EXAMPLE['accuracy']}], got {entries!r}.")
    return [_check_one(i, entry) for i, entry in enumerate(entries)]


# --- the reward functions ----------------------------------------------------------------------------------------


def _as_messages(items: list, role: str) -> list[list[dict]]:
    """TRL hands conversational data over as message lists and plain-text data as strings: messages either way."""
    return [x if isinstance(x, list) else [{"role": role, "content": str(x)}] for x in items]


def _reply_text(completion) -> str:
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content") or "") for m in completion if m.get("role", "assistant") == "assistant")


class Accuracy:
    """TRL's accuracy_reward; a row without a solution is skipped (None), as TRL skips unparseable solutions."""

    __name__ = "accuracy"

    def __call__(self, completions, solution=None, log_extra=None, **kwargs) -> list[float | None]:
        from trl.rewards import accuracy_reward

        solution = solution or [None] * len(completions)
        completions = _as_messages(completions, "assistant")
        rows = [i for i, s in enumerate(solution) if s is not None and str(s).strip()]
        out: list[float | None] = [None] * len(completions)
        if rows:
            scored = accuracy_reward([completions[i] for i in rows], [str(solution[i]) for i in rows])
            for i, reward in zip(rows, scored, strict=True):
                out[i] = reward
        return out


class ThinkFormat:
    __name__ = "think_format"

    def __call__(self, completions, **kwargs) -> list[float]:
        from trl.rewards import think_format_reward

        return think_format_reward(_as_messages(completions, "assistant"))


class Regex:
    """`reward` when the pattern is found anywhere in the reply (re.search), else 0."""

    def __init__(self, pattern: str, reward: float, name: str = "regex"):
        self.pattern, self.reward, self.__name__ = pattern, float(reward), name
        self._compiled = re.compile(pattern)

    def __call__(self, completions, **kwargs) -> list[float]:
        return [self.reward if self._compiled.search(_reply_text(c)) else 0.0 for c in completions]


class RewardModel:
    """A trained reward model's score of prompt + reply (trainers/reward.py's scorer): conversations as message
    lists, plain-text data as strings, as the reward model was trained on either."""

    def __init__(self, scorer, name: str = "reward_model"):
        self.scorer, self.__name__ = scorer, name

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        return [float(s) for s in self.scorer.score(list(prompts), list(completions))]


class Named:
    """A reward function under the name its metrics are logged with (rewards/<name>/mean)."""

    def __init__(self, func, name: str):
        self.func, self.__name__ = func, name

    def __call__(self, **kwargs):
        return self.func(**kwargs)


class AsyncNamed(Named):
    """An async reward function (TRL awaits those together) under its name."""

    async def __call__(self, **kwargs):
        return await self.func(**kwargs)


def load_python(path: str):
    """The function `file.py:function` names (relative paths from the working directory)."""
    import importlib.util

    match = PYTHON_PATH.fullmatch(path)
    file, function = Path(match["file"]).expanduser(), match["function"]
    if not file.is_file():
        raise ConfigError(f"The python reward's file {str(file)!r} does not exist: check rewards' path.")
    spec = importlib.util.spec_from_file_location(f"studio_reward_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file: say which and why, in one line
        raise ConfigError(f"The python reward's file {file.name} failed to load: {type(exc).__name__}: {exc}") from exc
    func = getattr(module, function, None)
    if not callable(func):
        raise ConfigError(f"{file.name} has no function {function!r}: check rewards' path ({path}).")
    return func


def _load_scorer(model: str):
    from trainers.reward import load_scorer  # lazily: the reward-model method's own module

    return load_scorer(model)


def _make(entry: dict, training: dict, data_columns: tuple[str, ...]):
    name = entry["name"]
    if name == "accuracy":
        if data_columns and "solution" not in data_columns:
            raise ConfigError(
                "The accuracy reward checks replies against each row's solution, and this data has none: "
                "add a solution (or answer) column, or use another reward."
            )
        return Accuracy()
    if name == "think_format":
        return ThinkFormat()
    if name == "repetition_penalty":
        from trl.rewards import get_repetition_penalty_reward

        return get_repetition_penalty_reward(entry["ngram_size"], entry["max_penalty"])
    if name == "overlong":
        from trl.rewards import get_soft_overlong_punishment

        length = entry["max_completion_length"] or int(training.get("max_completion_length") or 256)
        cache = entry["soft_punish_cache"]
        cache = max(1, length // 4) if cache is None else min(cache, length)
        return get_soft_overlong_punishment(length, cache)
    if name == "reward_model":
        return RewardModel(_load_scorer(entry["model"]))
    if name == "regex":
        return Regex(entry["pattern"], entry["reward"])
    return load_python(entry["path"])


def _label(entry: dict) -> str:
    if entry["name"] == "python":
        return PYTHON_PATH.fullmatch(entry["path"])["function"]
    return entry["name"]


def build(entries: list[dict], tokenizer=None, training: dict | None = None, data_columns=()) -> tuple[list, list]:
    """(reward_funcs, reward_weights) for GRPOTrainer from checked entries.  Each function is logged under its
    reward's name (rewards/regex/mean); a name that repeats gets _2, _3, ... `tokenizer` is accepted for
    rewards that need one; `data_columns` (the training data's) lets accuracy say when there is no solution."""
    from trl.trainer.utils import is_async_callable

    entries = check(entries)
    training = training or {}
    funcs, weights, seen = [], [], {}
    for entry in entries:
        label = _label(entry)
        seen[label] = seen.get(label, 0) + 1
        func = _make(entry, training, tuple(data_columns))
        wrap = AsyncNamed if is_async_callable(func) else Named
        funcs.append(wrap(func, label if seen[label] == 1 else f"{label}_{seen[label]}"))
        weights.append(float(entry.get("weight", 1.0)))
    return funcs, weights
