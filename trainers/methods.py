"""The method table: the one place a training method exists.

Everything that differs between methods is a field here; the config's choices, the data doctor's accepted
kinds, the UI radios, the estimator, the model card, the Runs-tab charts and the comparison arms all read it.
Adding a method = one `Method(...)` entry + one builder module (trainers/<name>.py with `build(...)`).

TRL classes are named by import path and imported only when used, so reading the table is instant.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from data import formats


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
    init_tags: tuple[str, ...] = ()  # extra card tags when it starts from a trained adapter (init_from)
    init_line: str = ", starting from a previously trained adapter"  # the card's method line, with init_from
    init_after: str = ""  # the card's "trained with X<init_after>" when it starts from a trained adapter
    compare_data: str = "sft_data"  # the comparison config's key for this method's dataset

    @property
    def config_name(self) -> str:
        return self.config_class.partition(":")[2]

    @property
    def trainer_name(self) -> str:
        return self.trainer_class.partition(":")[2]

    @property
    def task(self) -> formats.Task:
        """What the data layer needs to know of this method: its name, label, accepted kinds, and which method
        trains on every other kind (for the hint when the data is of the wrong kind)."""
        others = tuple((kind, m.name) for m in METHODS.values() for kind in m.data_kinds)
        return formats.Task(self.name, self.label, self.data_kinds, others)

    def truncation_side(self, training: dict) -> str | None:
        """Which side of an overlong row the trainer keeps ("start" / "end"), or None when it keeps every token
        (packing that splits or wraps long rows)."""
        if self.packs:
            keeps_all = training.get("packing") and training.get("packing_strategy", "bfd") in ("bfd_split", "wrapped")
            return None if keeps_all else "start"
        return "end" if training.get("truncation_mode") == "keep_end" else "start"

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
            data_kinds=(formats.INSTRUCTION,),
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
            data_kinds=(formats.PREFERENCE,),
            defaults={"max_length": 1024, "beta": 0.1, "learning_rate": 5.0e-6},
            sequences_per_row=2,
            reference_forward=True,
            charted=("rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected"),
            card_tags=("dpo",),
            card_line="DPO",
            init_tags=("sft",),
            init_line=", starting from a previously trained SFT adapter (SFT→DPO)",
            init_after=" after SFT",
            compare_data="preference_data",
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


def for_kind(kind: str) -> Method:
    """The first method that trains on data of `kind` (evaluation scores held-out rows of each kind)."""
    return next(m for m in METHODS.values() if kind in m.data_kinds)


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
