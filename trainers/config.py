"""RunConfig: the one YAML file a run is defined by.

Our own keys live in `model`, `peft`, `data` and `init_from`; everything under `training` is passed
unchanged to TRL's `SFTConfig` / `DPOConfig`, so every TRL option works and is checked against TRL's
own field list.  No heavy imports at module level except where a function needs them.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError
from core.runfolder import write_text_atomic
from core.secrets import find_in
from trainers import methods

METHODS = tuple(methods.names())  # the method table (trainers/methods.py) is the one place a method exists
TRL_CONFIGS = "/".join(dict.fromkeys(m.config_name for m in methods.METHODS.values()))  # SFTConfig/DPOConfig/...


@dataclass
class ModelSection:
    name_or_path: str = field(metadata={"help": "Hub model id or local folder."})
    revision: str = field(default="main", metadata={"help": "Hub branch, tag or commit."})
    quantization: str = field(
        default="none",
        metadata={"help": "Load the base in 4-bit (QLoRA) or 8-bit.", "choices": ["none", "4bit", "8bit"]},
    )
    dtype: str = field(
        default="auto",
        metadata={
            "help": "Weights dtype; auto = bf16 where supported, else fp32.",
            "choices": ["auto", "bfloat16", "float16", "float32"],
        },
    )
    attn_implementation: str | None = field(default=None, metadata={"help": "e.g. sdpa, eager, flash_attention_2."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Run model code from the Hub repo."})


@dataclass
class PeftSection:
    type: str = field(
        default="lora",
        metadata={"help": "Adapter kind; none = full fine-tuning.", "choices": ["lora", "dora", "none"]},
    )
    r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA path."})
    target_modules: str | list[str] = field(default="all-linear", metadata={"help": "Modules to adapt."})
    modules_to_save: list[str] | None = field(default=None, metadata={"help": "Modules trained in full, e.g. lm_head."})


@dataclass
class DataSection:
    source: str = field(metadata={"help": "Hub dataset id or local file (json, jsonl, csv, parquet, txt)."})
    subset: str | None = field(default=None, metadata={"help": "Hub dataset config / subset name."})
    split: str = field(default="train", metadata={"help": "Split to train on."})
    revision: str | None = field(default=None, metadata={"help": "Hub dataset revision."})
    eval_source: str | None = field(default=None, metadata={"help": "A separate held-out file or Hub id."})
    eval_split: str | None = field(default=None, metadata={"help": "Held-out split name (in eval_source or source)."})
    eval_size: float = field(
        default=0.05, metadata={"help": "Held-out share (<1) or row count (>=1) carved when no eval split; 0 = none."}
    )
    seed: int = field(default=42, metadata={"help": "Seed of the held-out carve and of max_samples."})
    max_samples: int | None = field(default=None, metadata={"help": "Use only this many training rows."})
    format: str = field(default="auto", metadata={"help": "Data format name (see data/formats.py); auto detects it."})
    columns: dict[str, str] = field(
        default_factory=dict, metadata={"help": "Map standard names to your columns, e.g. {prompt: question}."}
    )
    keep: str | None = field(
        default=None,
        metadata={
            "help": "SFT on preference or feedback data: chosen / desirable trains the prompt and its good reply.",
            "choices": [None, "chosen", "desirable"],
        },
    )
    drop_invalid: bool = field(default=True, metadata={"help": "Drop rows the data doctor finds invalid."})
    dedupe: bool = field(default=False, metadata={"help": "Drop exact and near-duplicate rows."})
    system_prompt: str | None = field(default=None, metadata={"help": "Set (or replace) every row's system turn."})
    chat_template: bool = field(
        default=True, metadata={"help": "Wrap plain prompt/completion strings as chat turns (the template applies)."}
    )


LAUNCH_PROFILES = ("single_gpu", "ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero2_offload", "deepspeed_zero3")
LAUNCH_PROFILES += ("deepspeed_zero3_offload", "cpu_ddp")


@dataclass
class LaunchSection:
    profile: str | None = field(
        default=None,
        metadata={
            "help": "accelerate profile in templates/accelerate/ (None = one process, no accelerate launch).",
            "choices": [None, *LAUNCH_PROFILES],
        },
    )
    num_processes: int = field(default=1, metadata={"help": "Processes (GPUs) to launch with the profile."})


@dataclass
class RunConfig:
    model: ModelSection
    data: DataSection
    method: str = field(default=METHODS[0], metadata={"help": "Training method.", "choices": list(METHODS)})
    peft: PeftSection = field(default_factory=PeftSection)
    init_from: str | None = field(
        default=None, metadata={"help": "Run folder or adapter (path or Hub id) to start from."}
    )
    training: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "Passed unchanged to the method's TRL config (SFTConfig, DPOConfig, ...)."},
    )
    launch: LaunchSection = field(default_factory=LaunchSection)
    rewards: list[dict[str, Any]] = field(
        default_factory=list,
        metadata={
            "help": "GRPO: the rewards that score each generated reply, e.g. [{name: accuracy}] (trainers/rewards.py)."
        },
    )

    continues: str | None = field(
        default=None,
        metadata={"help": "The run this one continues (python -m trainers continue); init_from is its checkpoint."},
    )
    autofit: list[str] = field(
        default_factory=list,
        metadata={"help": "What auto-fit changed in this config and why (python -m trainers fit)."},
    )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("continues", "autofit"):  # optional notes: a config without them reads as before
            if not out[key]:
                del out[key]
        return out


SECTIONS = {"model": ModelSection, "peft": PeftSection, "data": DataSection, "launch": LaunchSection}

# Our defaults for TRL options (TRL's own defaults apply to everything else).  Hardware-dependent
# choices (bf16, use_cpu, gradient checkpointing) are made at run time, not written into configs.
TRAINING_DEFAULTS = {
    "common": {
        "learning_rate": 2.0e-4,
        "num_train_epochs": 1,
        "per_device_train_batch_size": 4,
        "logging_steps": 10,
        "save_strategy": "steps",
        "save_steps": 100,
        "save_total_limit": 2,
        "report_to": "none",
        "seed": 42,
    },
    **{m.name: m.defaults for m in methods.METHODS.values()},
}
MAX_BATCH = 65536  # rows per device step / accumulation; anything above is a typo (e.g. 1e9)
MAX_CONFIG_BYTES = 2**20  # a RunConfig is a small text file
MAX_CONFIG_VALUES = 100_000  # YAML aliases can make a small file expand into billions of values
EXAMPLES = {
    "model": "model: {name_or_path: demo-tiny}",
    "peft": "peft: {type: lora, r: 16}",
    "data": "data: {source: data/demo/sft_train.jsonl}",
    "launch": "launch: {profile: ddp, num_processes: 2}",
    "training": "training: {learning_rate: 2.0e-4, max_steps: 100}",
}


def _finite(v) -> bool:
    return not isinstance(v, float) or math.isfinite(v)


# Accepted values of numeric options: key -> (test, the accepted range in words).  None (where the type
# allows it) is never range-checked.
POSITIVE = (lambda v: v > 0, "greater than 0")
NON_NEGATIVE = (lambda v: v >= 0, "0 or more")
AT_LEAST_ONE = (lambda v: v >= 1, "1 or more")
STEPS = (lambda v: v > 0, "greater than 0 (a number of steps, or a share of the run below 1, e.g. 0.1)")
BATCH = (lambda v: 1 <= v <= MAX_BATCH, f"a whole number from 1 to {MAX_BATCH}")
UNIT = (lambda v: 0 <= v < 1, "from 0 up to, not including, 1")
SEED = (lambda v: 0 <= v < 2**32, "a whole number from 0 to 4294967295")
TRAINING_RANGES = {
    "learning_rate": (lambda v: v > 0, "greater than 0, e.g. 2.0e-4"),
    "num_train_epochs": (lambda v: v > 0, "greater than 0 (fractions of an epoch are allowed)"),
    "max_steps": (lambda v: v >= -1, "a positive number of steps, or -1 (or 0) to train for num_train_epochs"),
    "per_device_train_batch_size": BATCH,
    "per_device_eval_batch_size": BATCH,
    "gradient_accumulation_steps": BATCH,
    "eval_accumulation_steps": AT_LEAST_ONE,
    "logging_steps": STEPS,
    "save_steps": STEPS,
    "eval_steps": STEPS,
    "warmup_steps": (lambda v: v >= 0, "0 or more (a number of steps, or a share of the run below 1)"),
    "warmup_ratio": UNIT,
    "weight_decay": NON_NEGATIVE,
    "max_grad_norm": (lambda v: v >= 0, "0 or more (0 turns clipping off)"),
    "adam_beta1": UNIT,
    "adam_beta2": UNIT,
    "adam_epsilon": POSITIVE,
    "label_smoothing_factor": UNIT,
    "neftune_noise_alpha": NON_NEGATIVE,
    "save_total_limit": (lambda v: v >= 1, "1 or more (or null to keep every checkpoint)"),
    "seed": SEED,
    "data_seed": SEED,
    "dataloader_num_workers": NON_NEGATIVE,
    "dataloader_prefetch_factor": AT_LEAST_ONE,
    "dataset_num_proc": AT_LEAST_ONE,
    "max_length": (lambda v: v >= 1, "a positive number of tokens, e.g. 1024 (or null for no limit)"),
    "eval_delay": NON_NEGATIVE,
    "torch_empty_cache_steps": AT_LEAST_ONE,
    "ddp_timeout": AT_LEAST_ONE,
    "beta": (lambda v: v > 0, "greater than 0, e.g. 0.1"),
    "label_smoothing": (lambda v: 0 <= v <= 0.5, "from 0 to 0.5"),
    "precompute_ref_batch_size": BATCH,
}
# Where a method's TRL option means something else: GRPO's beta is its KL coefficient, 0 by default (no reference).
METHOD_RANGES = {"grpo": {"beta": (lambda v: v >= 0, "0 (no KL penalty, no reference model) or more, e.g. 0.04")}}
SECTION_RANGES = {
    "peft.r": (lambda v: 1 <= v <= 16384, "a whole number from 1 to 16384 (the LoRA rank; 8 to 64 is typical)"),
    "peft.lora_alpha": (
        lambda v: v > 0,
        "greater than 0 (the adapter is scaled by lora_alpha / r, so 0 would train nothing; twice r is typical)",
    ),
    "peft.lora_dropout": (lambda v: 0 <= v < 1, "from 0 up to, not including, 1 (e.g. 0.05)"),
    "data.eval_size": (
        lambda v: v == 0 or 0 < v < 1 or (v >= 1 and float(v).is_integer()),
        "0 (no held-out rows), a share below 1 (e.g. 0.05) or a whole number of rows (e.g. 200)",
    ),
    "data.max_samples": (lambda v: v >= 1, "a whole number of rows, 1 or more (or null for all rows)"),
    "data.seed": SEED,
}
NON_EMPTY = ("model.name_or_path", "model.revision", "data.source", "data.split", "data.format", "init_from")


def _check_range(where: str, value: Any, ranges: dict) -> None:
    key = where.rsplit(".", 1)[-1] if where.startswith("training.") else where
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not _finite(value):
        raise ConfigError(f"'{where}' must be a finite number, got {value!r}.")
    rule = ranges.get(key)
    if rule and not rule[0](value):
        raise ConfigError(f"'{where}' must be {rule[1]}; got {value!r}.")


def _suggest(key: str, known: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _resolve(annotation: Any) -> Any:
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing), {"Any": Any})  # annotations are postponed strings
    return annotation


def _members(annotation: Any) -> tuple:
    annotation = _resolve(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _enum_choices(annotation: Any) -> list[str] | None:
    """The values of a TRL/transformers string enum in a field's type (IntervalStrategy | str -> no, steps, ...)."""
    for arg in _members(annotation):
        if isinstance(arg, type) and issubclass(arg, enum.Enum):
            return [m.value for m in arg]
    return None


def _type_ok(value: Any, annotation: Any) -> bool:
    """A small structural type check for YAML values against dataclass annotations."""
    annotation = _resolve(annotation)
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return isinstance(value, str)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _coerce(value: Any, annotation: Any, choices: typing.Sequence | None = None) -> Any:
    """YAML 1.1 reads 5e-4 (no dot) as text and an unquoted no/off as false: give back what was meant."""
    numeric = _type_ok(1.0, annotation) or _type_ok(1, annotation)
    if isinstance(value, str) and numeric and not _type_ok("x", annotation):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and _type_ok(1, annotation) else number
    if isinstance(value, float) and value.is_integer() and not _type_ok(value, annotation) and _type_ok(1, annotation):
        return int(value)  # 4.0 where a whole number is expected
    if isinstance(value, str) and not _type_ok(value, annotation) and _type_ok([value], annotation):
        return [value]  # one name where TRL takes a list (loss_type: ipo)
    if isinstance(value, bool) and choices and not _type_ok(value, annotation):
        words = ("yes", "on", "true") if value else ("no", "none", "off", "false")
        return next((word for word in words if word in choices), value)  # `eval_strategy: no` means "no"
    return value


def _type_name(annotation: Any) -> str:
    names = {int: "a whole number", float: "a number", bool: "true or false", str: "text", list: "a list"}
    names.update({dict: "a mapping", tuple: "a list"})
    parts, optional = [], False
    for arg in _members(annotation):
        if arg is type(None):
            optional = True
            continue
        base = typing.get_origin(arg) or arg
        if isinstance(base, type) and issubclass(base, enum.Enum):
            continue
        if base is typing.Literal:
            name = "text"
        else:
            name = names.get(base) or f"a {getattr(base, '__name__', base)} (not settable from YAML)"
        if name not in parts:
            parts.append(name)
    return " or ".join(parts or ["text"]) + (" (or null)" if optional else "")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "empty"
    return repr(value)


def _check_choice(where: str, value: Any, choices: typing.Sequence) -> None:
    choices = list(choices)
    if value in choices:
        return
    names = ["null" if c is None else str(c) for c in choices]
    listed = ", ".join(names[:6]) + ", ..." if len(names) > 12 else ", ".join(names)
    raw_bool = " (YAML reads an unquoted yes/no/on/off as true/false: quote it)" if isinstance(value, bool) else ""
    hint = _suggest(str(value), map(str, choices)) if isinstance(value, str) else ""
    raise ConfigError(f"'{where}' must be one of {listed}; got {_kind(value)}{raw_bool}.{hint}")


def _check_value(
    where: str, value: Any, annotation: Any, choices: typing.Sequence | None, ranges: dict | None = None
) -> Any:
    """Coerce and check one value: its type, its choices and its range; returns the value to keep."""
    value = _coerce(value, annotation, choices)
    if not _type_ok(value, annotation):
        if choices:
            _check_choice(where, value, choices)
        quote = isinstance(value, bool) and _type_ok("x", annotation)
        hint = " (YAML reads an unquoted yes/no/on/off as true/false: quote it)" if quote else ""
        ranges = ranges or (TRAINING_RANGES if where.startswith("training.") else SECTION_RANGES)
        rule = ranges.get(where.rsplit(".", 1)[-1] if where.startswith("training.") else where)
        expected = _type_name(annotation)
        if rule and _type_ok(1.0, annotation) or rule and _type_ok(1, annotation):
            expected = rule[1] if rule[1].startswith(("a ", "0 (")) else f"{expected}, {rule[1]}"
        raise ConfigError(f"'{where}' must be {expected}; got {_kind(value)}{hint}.")
    if choices and isinstance(value, str):
        _check_choice(where, value, choices)
    if where in NON_EMPTY and isinstance(value, str) and not value.strip():
        raise ConfigError(f"'{where}' is empty: give it a value or remove the key.")
    _check_range(where, value, ranges or (TRAINING_RANGES if where.startswith("training.") else SECTION_RANGES))
    return value


def _check_names(where: str, value: Any) -> None:
    """peft.target_modules / modules_to_save: module names (or one regular expression), never empty."""
    import re

    if value is None:
        return
    if isinstance(value, str):
        if not value.strip():
            raise ConfigError(f"'{where}' is empty: use all-linear or a list of module names, e.g. [q_proj, v_proj].")
        try:
            re.compile(value)
        except re.error as exc:
            raise ConfigError(
                f"'{where}' {value!r} is not a valid pattern ({exc}): use all-linear or a list of module names."
            ) from exc
        return
    bad = [v for v in value if not isinstance(v, str) or not v.strip() or any(c.isspace() for c in v)]
    if not value or bad:
        what = f"holds {_kind(bad[0])}" if bad else "is an empty list"
        example = "[lm_head, embed_tokens]" if where.endswith("modules_to_save") else "[q_proj, v_proj], or all-linear"
        raise ConfigError(f"'{where}' {what}: list module names as text, e.g. {example}.")


def check_model_path(name: str) -> None:
    """A local model folder must hold a model: a file or a folder without config.json is refused here."""
    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1
    if not (looks_local or path.exists()) or not path.exists():
        return  # a Hub id, or a missing folder (said when the model is loaded)
    if path.is_file():
        raise ConfigError(
            f"'model.name_or_path' {name!r} is a file: point it at a model folder (with config.json) or a Hub id."
        )
    if (path / "config.json").is_file():
        return
    if (path / "adapter_config.json").is_file() or (path / "adapter" / "adapter_config.json").is_file():
        raise ConfigError(
            f"'model.name_or_path' {name!r} holds an adapter, not a base model: put it in init_from and its base "
            "model in model.name_or_path."
        )
    raise ConfigError(
        f"'model.name_or_path' {name!r} is a folder without config.json, so it is not a model: point it at a "
        "model folder or a Hub id such as HuggingFaceTB/SmolLM2-135M-Instruct."
    )


def _build_section(name: str, cls: type, raw: Any) -> Any:
    if raw is None and name in ("peft", "launch"):
        raw = {}  # an empty `peft:` means the defaults
    if not isinstance(raw, dict):
        raise ConfigError(f"'{name}' must be a mapping of keys, e.g. {EXAMPLES[name]}; got {_kind(raw)}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    raw = dict(raw)
    for key, value in list(raw.items()):
        if key not in fields:
            hint = _suggest(str(key), fields) or f": {name} takes {', '.join(fields)}."
            raise ConfigError(f"Unknown key '{name}.{key}' in the config{hint if hint[0] == ':' else '.' + hint}")
        f = fields[key]
        raw[key] = _check_value(f"{name}.{key}", value, f.type, f.metadata.get("choices"))
    missing = [
        k
        for k, f in fields.items()
        if k not in raw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"'{name}.{missing[0]}' is required: {fields[missing[0]].metadata.get('help', '')}")
    if name == "peft":
        _check_names("peft.target_modules", raw.get("target_modules"))
        _check_names("peft.modules_to_save", raw.get("modules_to_save"))
    if name == "data" and isinstance(raw.get("columns"), dict):
        bad = [k for k, v in raw["columns"].items() if not isinstance(k, str) or not isinstance(v, str) or not v]
        if bad:
            raise ConfigError(
                f"'data.columns.{bad[0]}' must name a column of your data as text, e.g. columns: {{prompt: question}}."
            )
    if name == "model":
        check_model_path(raw["name_or_path"])
    return cls(**raw)


def _check_size(raw: Any) -> None:
    """Refuse configs that expand into a huge structure (YAML aliases) before anything walks them."""
    count, stack = 0, [raw]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            raise ConfigError(
                f"The config holds more than {MAX_CONFIG_VALUES:,} values (YAML anchors expand): a RunConfig is a "
                "few dozen keys, so remove the repeated aliases."
            )
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


def check_secrets(raw: Any) -> None:
    """No credential anywhere in a config (by shape, or under a key named like one); the value is never echoed."""
    for where in find_in(raw):
        raise ConfigError(
            f"{where} holds a secret: tokens never go in a config; set the HF_TOKEN environment variable."
        )


def from_dict(raw: Any) -> RunConfig:
    """Validate a raw mapping (from YAML) into a RunConfig, with TRL defaults for `training`."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"The config must be a YAML mapping with keys method, model, peft, data, training; got {_kind(raw)}."
        )
    _check_size(raw)
    check_secrets(raw)
    known = [f.name for f in dataclasses.fields(RunConfig)]
    for key in raw:
        if key not in known:
            hint = _suggest(str(key), known) or f": the top-level keys are {', '.join(known)}."
            raise ConfigError(f"Unknown key '{key}' in the config{hint if hint[0] == ':' else '.' + hint}")
    method = raw.get("method", METHODS[0])
    if method not in METHODS:
        raise ConfigError(f"'method' must be one of {', '.join(METHODS)}; got {_kind(method)}.")
    for required in ("model", "data"):
        if raw.get(required) is None:
            raise ConfigError(f"The config needs a '{required}' section, e.g. {EXAMPLES[required]}.")
    if isinstance(raw.get("model"), str):
        raw = {**raw, "model": {"name_or_path": raw["model"]}}
    sections = {name: _build_section(name, cls, raw.get(name, {})) for name, cls in SECTIONS.items()}
    init_from = raw.get("init_from")
    if init_from is not None and (not isinstance(init_from, str) or not init_from.strip()):
        raise ConfigError(f"'init_from' must be a run folder, adapter path or Hub id as text, got {_kind(init_from)}.")
    training = raw.get("training") or {}
    if not isinstance(training, dict):
        raise ConfigError(f"'training' must be a mapping of {TRL_CONFIGS} options, e.g. {EXAMPLES['training']}.")
    training = {**TRAINING_DEFAULTS["common"], **TRAINING_DEFAULTS[method], **training}
    validate_training(method, training)
    if sections["model"].quantization != "none" and sections["peft"].type == "none" and not init_from:
        raise ConfigError(
            f"{sections['model'].quantization} quantization needs an adapter: quantized weights cannot be "
            "fully fine-tuned, so set peft.type to lora or dora, or model.quantization to none."
        )
    launch = sections["launch"]
    if launch.num_processes > 1024:
        raise ConfigError(f"launch.num_processes must be at least 1 and at most 1024; got {launch.num_processes}.")
    if launch.num_processes < 1 or (launch.profile is None and launch.num_processes != 1):
        raise ConfigError(
            "launch.num_processes must be 1 without a launch.profile, and at least 1 with one "
            "(e.g. launch: {profile: ddp, num_processes: 2})."
        )
    rewards = check_rewards(method, raw.get("rewards"))
    continues, autofit = raw.get("continues"), raw.get("autofit") or []
    if continues is not None and (not isinstance(continues, str) or not continues.strip()):
        raise ConfigError(f"'continues' must be the id of the run this one continues, got {_kind(continues)}.")
    if continues and not init_from:
        raise ConfigError("'continues' needs init_from set to that run's last checkpoint folder.")
    if not isinstance(autofit, list) or not all(isinstance(x, str) for x in autofit):
        raise ConfigError(f"'autofit' must be a list of notes (text), got {_kind(autofit)}.")
    return RunConfig(
        method=method, init_from=init_from, training=training, rewards=rewards, continues=continues,
        autofit=list(autofit), **sections,
    )  # fmt: skip


def activation_checkpointing(training: dict[str, Any], default: bool) -> bool:
    """Whether the run checkpoints activations: `activation_checkpointing`, or its deprecated alias
    `gradient_checkpointing` (older configs and recipes), else `default`."""
    for key in ("activation_checkpointing", "gradient_checkpointing"):
        if training.get(key) is not None:
            return bool(training[key])
    return default


def check_rewards(method: str, rewards: Any) -> list[dict[str, Any]]:
    """The `rewards:` list: GRPO needs at least one; other methods take none (trainers/rewards.py checks each)."""
    if rewards in (None, []):
        if method == "grpo":
            raise ConfigError("GRPO needs rewards to score its replies, e.g. rewards: [{name: accuracy}].")
        return []
    if method != "grpo":
        raise ConfigError(f"'rewards' apply to GRPO only; method {method} trains from its data, not from rewards.")
    from trainers import rewards as rewards_mod

    return rewards_mod.check(rewards)


def trl_config_class(method: str):
    return methods.get(method).config_cls()


def has_option(method: str, key: str) -> bool:
    """Whether TRL's config for `method` has the option `key`."""
    return any(f.name == key for f in dataclasses.fields(trl_config_class(method)))


def option_choices(method: str, key: str) -> list[str]:
    """The values TRL's config for `method` allows for `key`: its declared choices, else the `'value'`s its help
    text lists (DPOConfig.loss_type lists its losses there)."""
    import re

    f = next((f for f in dataclasses.fields(trl_config_class(method)) if f.name == key), None)
    if f is None:
        return []
    choices = f.metadata.get("choices") or _enum_choices(f.type)
    return list(choices) if choices else re.findall(r"`'([\w-]+)'`", f.metadata.get("help", ""))


RENAMED = {
    "max_seq_length": "max_length",
    "evaluation_strategy": "eval_strategy",
    "no_cuda": "use_cpu",
    "torch_dtype": "model.dtype",
    "max_prompt_length": "max_length",
    "max_completion_length": "max_length",
}


def validate_training(method: str, training: dict[str, Any]) -> None:
    """Check `training` keys, value types, choices and ranges against TRL's own config dataclass."""
    cls = trl_config_class(method)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in list(training.items()):
        if not isinstance(key, str) or key not in fields:
            if key in RENAMED:
                raise ConfigError(f"'training.{key}' is not a {cls.__name__} option: it is now '{RENAMED[key]}'.")
            hint = _suggest(str(key), fields)
            hint = f".{hint}" if hint else f": check its spelling against TRL's {cls.__name__} documentation."
            raise ConfigError(f"'training.{key}' is not a {cls.__name__} option{hint}")
        if key == "output_dir":
            raise ConfigError("Set the run folder with --output-dir, not training.output_dir.")
        f = fields[key]
        if key == "report_to" and value is False:
            value = "none"  # `report_to: no`
        choices = f.metadata.get("choices")
        choices = list(choices) if choices is not None else _enum_choices(f.type)
        ranges = {**TRAINING_RANGES, **METHOD_RANGES.get(method, {})}
        training[key] = _check_value(f"training.{key}", value, f.type, choices, ranges)
    if training.get("max_steps") == 0:
        training["max_steps"] = -1  # 0 = train for num_train_epochs, as the Train tab says (TRL's own "unset")


def apply_overrides(raw: Any, overrides: list[str]) -> dict[str, Any]:
    """Apply `key.path=value` overrides; values are parsed as YAML (numbers, booleans, lists)."""
    if overrides and not isinstance(raw, dict):
        raise ConfigError(
            f"--set needs a config that is a YAML mapping (method, model, data, ...), but this one is {_kind(raw)}."
        )
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set takes key.path=value, e.g. training.max_steps=20; got {item!r}.")
        path, _, text = item.partition("=")
        keys = path.strip().split(".")
        if not all(k.strip() for k in keys):
            raise ConfigError(f"--set {item!r} has an empty key: write it as key.path=value, e.g. peft.r=8.")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        node = raw
        for depth, key in enumerate(keys[:-1]):
            if key == "model" and depth == 0 and isinstance(node.get(key), str):
                node[key] = {"name_or_path": node[key]}  # the `model: ID` shorthand
            if node.get(key) is None:
                node[key] = {}
            if not isinstance(node[key], dict):
                where = ".".join(keys[: depth + 1])
                raise ConfigError(
                    f"--set {path.strip()}: '{where}' is {_kind(node[key])} in the config, not a mapping, "
                    f"so it has no key '{keys[depth + 1]}'."
                )
            node = node[key]
        node[keys[-1]] = value
    return raw


def yaml_syntax_error(subject: str, exc: yaml.YAMLError) -> ConfigError:
    """One sentence naming the line of a YAML syntax error (file, editor or form alike)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark else ""
    problem = f"{getattr(exc, 'context', '') or ''} {getattr(exc, 'problem', '') or ''}"
    if "expected a single document" in problem:
        return ConfigError(f"{subject} holds more than one YAML document (a second '---'{where}): keep one config.")
    if "could not determine a constructor for the tag" in problem:
        return ConfigError(f"{subject} uses a YAML tag{where} (e.g. !!python/...): write plain values instead.")
    return ConfigError(f"{subject} is not valid YAML{where}: fix the syntax there.")


def _yaml_in(folder: Path) -> str:
    if (folder / "config.yaml").is_file():
        return f"its run config, {folder / 'config.yaml'}"
    found = sorted(folder.glob("*.y*ml"))
    if found:
        return f"a YAML file inside it, e.g. {found[0]}"
    return "a RunConfig YAML file, e.g. templates/recipes/demo-sft.yaml"


def read_text(path: str | Path, what: str = "Config file") -> str:
    """A config file's text, or one sentence: missing, a folder, too big, binary, not UTF-8."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a folder, not a file: pass {_yaml_in(path)}.")
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist: check the path.")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{what} {path.name} is {size / 2**20:.1f} MB, but a config is a small YAML text file (under 1 MB): "
            "check that you passed the config, not a data or model file."
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r} cannot be read ({exc.strerror}): check its permissions.") from exc
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ConfigError(f"{what} {path.name} is UTF-16 text: re-save it with UTF-8 encoding.")
    if b"\x00" in data[:8192]:
        raise ConfigError(
            f"{what} {path.name} is a binary file, not YAML text: pass a RunConfig YAML such as "
            "templates/recipes/demo-sft.yaml."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path.name} is not UTF-8 text (bad byte at offset {exc.start}): re-save it with UTF-8 encoding."
        ) from exc


class _DuplicateKey(Exception):
    pass


class _StrictLoader(yaml.SafeLoader):
    """safe_load, except that a key written twice in one mapping is refused (YAML would keep only the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                raise _DuplicateKey(f"'{key}' appears twice (line {key_node.start_mark.line + 1})")
            if isinstance(key, typing.Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, subject: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"In {subject}, {exc}: YAML keeps only the last one, so merge them into one.") from exc
    except yaml.YAMLError as exc:
        raise yaml_syntax_error(subject, exc) from exc
    except RecursionError as exc:
        raise ConfigError(f"{subject} is nested too deeply to be a config: check its brackets.") from exc


def read_yaml(path: str | Path, what: str = "Config file") -> Any:
    """A YAML file's content ({} when empty), or one sentence for a missing, unreadable or malformed file."""
    return parse_yaml(read_text(path, what), Path(path).name) or {}


def load(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    text = read_text(path)
    raw = parse_yaml(text, Path(path).name)
    if raw is None:
        raise ConfigError(
            f"Config file {Path(path).name} is empty: start from a recipe, e.g. templates/recipes/demo-sft.yaml."
        )
    return from_dict(apply_overrides(raw, overrides or []))


def dump(config: RunConfig, path: str | Path, header: str = "") -> None:
    """Write the config in one step (a kill or a full disk mid-write leaves the old file, never half of one)."""
    text = yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
    write_text_atomic(Path(path), header + text)
