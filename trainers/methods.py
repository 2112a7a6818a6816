"""The method table: the one place a training method exists.

Everything that differs between methods is a field here; the config's choices, the data doctor's accepted
kinds, the UI radios, the estimator, the model card, the Runs-tab charts and the comparison arms all read it.
Adding a method = one `Method(...)` entry + one builder module (trainers/<name>.py with `build(...)`).

TRL classes are named by import path and imported only when used, so reading the table is instant.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Method:
    name: str  # config `method:` value, e.g. "sft"
    label: str  # what people read, e.g. "SFT"
    config_class: str  # TRL config, "module:Class"
    trainer_class: str  # TRL trainer, "module:Class"
    builder: str  # our module whose build(...) makes the trainer
    data_kinds: tuple[str, ...]  # data.formats kinds this method trains on ("sft", "preference", ...)
    defaults: dict = field(default_factory=dict)  # our defaults for its TRL config (over TRAINING_DEFAULTS common)
    sequences_per_row: int = 1  # estimate: sequences a row becomes in one step (DPO: chosen + rejected)
    reference_forward: bool = False  # estimate: a frozen reference model's forward pass per step
    packs: bool = False  # SFT-style packing applies
    charted: tuple[str, ...] = ()  # metrics.jsonl keys worth a chart beyond loss / learning rate
    card_tags: tuple[str, ...] = ()  # Hub model-card tags
    card_line: str = ""  # the model card's one-line description of the training
    experimental: bool = False  # TRL ships it under trl.experimental
    arm: bool = True  # can be an arm of a comparison

    def config_cls(self):
        return _load(self.config_class)

    def trainer_cls(self):
        return _load(self.trainer_class)

    def build_module(self):
        return importlib.import_module(self.builder)


def _load(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            name="sft",
            label="SFT",
            config_class="trl:SFTConfig",
            trainer_class="trl:SFTTrainer",
            builder="trainers.sft",
            data_kinds=("sft",),
            defaults={"max_length": 1024, "packing": True, "packing_strategy": "bfd"},
            packs=True,
            card_tags=("sft",),
            card_line="supervised fine-tuning (SFT), loss on completion tokens only",
        ),
        Method(
            name="dpo",
            label="DPO",
            config_class="trl:DPOConfig",
            trainer_class="trl:DPOTrainer",
            builder="trainers.dpo",
            data_kinds=("preference",),
            defaults={"max_length": 1024, "beta": 0.1, "learning_rate": 5.0e-6},
            sequences_per_row=2,
            reference_forward=True,
            charted=("rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected"),
            card_tags=("dpo",),
            card_line="DPO",
        ),
    )
}


@dataclass(frozen=True)
class Chain:
    """A comparison arm that trains several methods in turn, each starting from the previous one's adapter."""

    name: str
    label: str
    stages: tuple[str, ...]


CHAINS: dict[str, Chain] = {c.name: c for c in (Chain("sft_dpo", "SFT→DPO", ("sft", "dpo")),)}


def get(name: str) -> Method:
    """The method called `name`; KeyError names the choices."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


def names() -> list[str]:
    return list(METHODS)


def choices() -> list[tuple[str, str]]:
    """(label, name) pairs for radios and dropdowns."""
    return [(m.label, m.name) for m in METHODS.values()]


def arms() -> dict[str, str]:
    """Comparison arms in order: every method that can be an arm, then the chains; {name: label}."""
    out = {m.name: m.label for m in METHODS.values() if m.arm}
    out.update({c.name: c.label for c in CHAINS.values()})
    return out


def stages(arm: str) -> tuple[str, ...]:
    """The methods an arm trains, in order (one for a plain method)."""
    return CHAINS[arm].stages if arm in CHAINS else (get(arm).name,)
