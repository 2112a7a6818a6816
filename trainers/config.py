"""RunConfig: the one YAML file a run is defined by.

Our own keys live in `model`, `peft`, `data` and `init_from`; everything under `training` is passed
unchanged to TRL's `SFTConfig` / `DPOConfig`, so every TRL option works and is checked against TRL's
own field list.  No heavy imports at module level except where a function needs them.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainers.errors import ConfigError

METHODS = ("sft", "dpo")


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
    method: str = field(default="sft", metadata={"help": "Training method.", "choices": list(METHODS)})
    peft: PeftSection = field(default_factory=PeftSection)
    init_from: str | None = field(
        default=None, metadata={"help": "Run folder or adapter (path or Hub id) to start from."}
    )
    training: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Passed unchanged to SFTConfig/DPOConfig."}
    )
    launch: LaunchSection = field(default_factory=LaunchSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
    "sft": {"max_length": 1024, "packing": True, "packing_strategy": "bfd"},
    "dpo": {"max_length": 1024, "beta": 0.1, "learning_rate": 5.0e-6},
}
SECRET_KEYS = ("hub_token", "token", "hf_token")
POSITIVE = ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs")


def _suggest(key: str, known: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _type_ok(value: Any, annotation: Any) -> bool:
    """A small structural type check for YAML values against dataclass annotations."""
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing), {"Any": Any})  # annotations are postponed strings
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
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
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _coerce(value: Any, annotation: Any) -> Any:
    """YAML 1.1 reads 5e-4 (no dot) as text: accept it where a number is expected."""
    numeric = _type_ok(1.0, annotation) or _type_ok(1, annotation)
    if isinstance(value, str) and numeric and not _type_ok("x", annotation):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and _type_ok(1, annotation) else number
    return value


def _type_name(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "")
    return {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false"}.get(text, text)


def _build_section(name: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"'{name}' must be a mapping of keys, e.g. {name}: {{...}}; got {raw!r}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    raw = dict(raw)
    for key, value in list(raw.items()):
        if key not in fields:
            raise ConfigError(f"Unknown key '{name}.{key}' in the config.{_suggest(key, fields)}")
        f = fields[key]
        value = raw[key] = _coerce(value, f.type)
        if not _type_ok(value, f.type):
            raise ConfigError(f"'{name}.{key}' must be {_type_name(f.type)}, got {value!r}.")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"'{name}.{key}' must be one of {', '.join(map(str, choices))}; got {value!r}.")
    missing = [
        k
        for k, f in fields.items()
        if k not in raw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"'{name}.{missing[0]}' is required: {fields[missing[0]].metadata.get('help', '')}")
    return cls(**raw)


def from_dict(raw: Any) -> RunConfig:
    """Validate a raw mapping (from YAML) into a RunConfig, with TRL defaults for `training`."""
    if not isinstance(raw, dict):
        raise ConfigError("The config must be a YAML mapping with keys method, model, peft, data, training.")
    known = {f.name for f in dataclasses.fields(RunConfig)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"Unknown key '{key}' in the config.{_suggest(key, known)}")
    method = raw.get("method", "sft")
    if method not in METHODS:
        raise ConfigError(f"'method' must be one of {', '.join(METHODS)}; got {method!r}.")
    for required in ("model", "data"):
        if required not in raw:
            raise ConfigError(f"The config needs a '{required}' section.")
    if isinstance(raw.get("model"), str):
        raw = {**raw, "model": {"name_or_path": raw["model"]}}
    sections = {name: _build_section(name, cls, raw.get(name, {})) for name, cls in SECTIONS.items()}
    init_from = raw.get("init_from")
    if init_from is not None and not isinstance(init_from, str):
        raise ConfigError(f"'init_from' must be a run folder or adapter path, got {init_from!r}.")
    training = raw.get("training") or {}
    if not isinstance(training, dict):
        raise ConfigError("'training' must be a mapping of SFTConfig/DPOConfig options.")
    training = {**TRAINING_DEFAULTS["common"], **TRAINING_DEFAULTS[method], **training}
    validate_training(method, training)
    if sections["model"].quantization != "none" and sections["peft"].type == "none" and not init_from:
        raise ConfigError(
            f"{sections['model'].quantization} quantization needs an adapter: quantized weights cannot be "
            "fully fine-tuned, so set peft.type to lora or dora, or model.quantization to none."
        )
    launch = sections["launch"]
    if launch.num_processes < 1 or (launch.profile is None and launch.num_processes != 1):
        raise ConfigError(
            "launch.num_processes must be 1 without a launch.profile, and at least 1 with one "
            "(e.g. launch: {profile: ddp, num_processes: 2})."
        )
    return RunConfig(method=method, init_from=init_from, training=training, **sections)


def trl_config_class(method: str):
    if method == "dpo":
        from trl import DPOConfig

        return DPOConfig
    from trl import SFTConfig

    return SFTConfig


RENAMED = {
    "max_seq_length": "max_length",
    "evaluation_strategy": "eval_strategy",
    "no_cuda": "use_cpu",
    "torch_dtype": "model.dtype",
    "max_prompt_length": "max_length",
    "max_completion_length": "max_length",
}


def validate_training(method: str, training: dict[str, Any]) -> None:
    """Check `training` keys and value types against TRL's own config dataclass."""
    cls = trl_config_class(method)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in list(training.items()):
        if key in SECRET_KEYS:
            raise ConfigError(
                f"Remove training.{key}: tokens never go in a config; set the HF_TOKEN environment variable."
            )
        if key not in fields:
            hint = f" It is now '{RENAMED[key]}'." if key in RENAMED else _suggest(key, fields)
            raise ConfigError(f"'training.{key}' is not a {cls.__name__} option.{hint}")
        if key == "output_dir":
            raise ConfigError("Set the run folder with --output-dir, not training.output_dir.")
        f = fields[key]
        value = training[key] = _coerce(value, f.type)
        if value is not None and not _type_ok(value, f.type) and not isinstance(value, str):
            raise ConfigError(f"'training.{key}' must be {_type_name(f.type)}, got {value!r}.")
        if isinstance(value, str) and f.type in ("float", "int", float, int):
            raise ConfigError(f"'training.{key}' must be a number, got {value!r}.")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"'training.{key}' must be one of {', '.join(map(str, choices))}; got {value!r}.")
    for key in POSITIVE:
        if key in training and isinstance(training[key], (int, float)) and training[key] <= 0:
            raise ConfigError(f"'training.{key}' must be greater than 0, got {training[key]!r}.")


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key.path=value` overrides; values are parsed as YAML (numbers, booleans, lists)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set takes key.path=value, got {item!r}.")
        path, _, text = item.partition("=")
        keys = path.strip().split(".")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        node = raw
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[keys[-1]] = value
    return raw


def yaml_syntax_error(subject: str, exc: yaml.YAMLError) -> ConfigError:
    """One sentence naming the line of a YAML syntax error (file, editor or form alike)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark else ""
    return ConfigError(f"{subject} is not valid YAML{where}: fix the syntax there.")


def read_yaml(path: str | Path, what: str = "Config file") -> Any:
    """A YAML file's content ({} when empty), or one sentence for a missing file or bad syntax."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist.")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise yaml_syntax_error(path.name, exc) from exc


def load(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    return from_dict(apply_overrides(read_yaml(path), overrides or []))


def dump(config: RunConfig, path: str | Path, header: str = "") -> None:
    text = yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
    Path(path).write_text(header + text, encoding="utf-8")
