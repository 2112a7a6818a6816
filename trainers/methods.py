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
    sequences_option: str | None = None  # the TRL option that sets it instead (GRPO: num_generations)
    reference_forward: bool = False  # estimate: a frozen reference model's forward pass per step
    packs: bool = False  # SFT-style packing applies
    charted: tuple[str, ...] = ()  # metrics.jsonl keys worth a chart beyond loss / learning rate
    charted_if_logged: tuple[str, ...] = ()  # charted when the run logs them (GRPO's kl: only with beta > 0)
    card_tags: tuple[str, ...] = ()  # Hub model-card tags
    card_line: str = ""  # the model card's one-line description of the training
    experimental: bool = False  # TRL ships it under trl.experimental
    arm: bool = True  # can be an arm of a comparison
    init_tags: tuple[str, ...] = ()  # extra card tags when it starts from a trained adapter (init_from)
    init_line: str = ", starting from a previously trained adapter"  # the card's method line, with init_from
    init_after: str = ""  # the card's "trained with X<init_after>" when it starts from a trained adapter
    compare_data: str = "sft_data"  # the comparison config's key for this method's dataset
    model_class: str = "transformers:AutoModelForCausalLM"  # what is loaded and trained (reward: a scoring head)
    peft_task: str = "CAUSAL_LM"  # PEFT task type of its adapter
    output: str = "adapter"  # what a run leaves: "adapter" (a policy) or "reward_model" (a scorer)
    note: str = ""  # one line the method picker shows (e.g. "experimental in TRL")

    @property
    def charts(self) -> tuple[str, ...]:
        """Every key the Runs tab charts for this method."""
        return self.charted + self.charted_if_logged

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

    def sequences(self, training: dict) -> int:
        """Sequences one row becomes in a step under `training` (GRPO: its group of generations)."""
        if self.sequences_option and training.get(self.sequences_option):
            return int(training[self.sequences_option])
        return self.sequences_per_row

    def truncation_side(self, training: dict) -> str | None:
        """Which side of an overlong row the trainer keeps ("start" / "end"), or None when it keeps every token
        (packing that splits or wraps long rows)."""
        if self.packs:
            keeps_all = training.get("packing") and training.get("packing_strategy", "bfd") in ("bfd_split", "wrapped")
            return None if keeps_all else "start"
        return "end" if training.get("truncation_mode") == "keep_end" else "start"

    def model_cls(self):
        return _load(self.model_class)

    def config_cls(self):
        return _load(self.config_class)

    def trainer_cls(self):
        return _load(self.trainer_class)

    def make_trainer(self, model, tokenizer, training: dict, train_ds, eval_ds, peft_config, callbacks, **extra):
        """The method's TRL trainer with its TRL config built from `training` (extra: trainer-only arguments such as
        GRPO's reward_funcs); every builder module makes its trainer through here."""
        return self.trainer_cls()(
            model=model,
            args=self.config_cls()(**training),
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=callbacks,
            **extra,
        )

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
        Method(
            name="kto",
            label="KTO",
            config_class="trl:KTOConfig",
            trainer_class="trl:KTOTrainer",
            builder="trainers.kto",
            data_kinds=(formats.UNPAIRED,),
            defaults={"max_length": 1024, "beta": 0.1, "learning_rate": 5.0e-6},
            sequences_per_row=2,  # the completion and its mismatched KL completion
            reference_forward=True,
            charted=("rewards/chosen", "rewards/rejected", "rewards/margins", "kl"),
            card_tags=("kto",),
            card_line="KTO (unpaired desirable / undesirable feedback)",
            init_tags=("sft",),
            init_line=", starting from a previously trained SFT adapter",
            init_after=" after SFT",
            compare_data="feedback_data",
            note="thumbs-up / thumbs-down feedback: one reply per row with a true/false label",
        ),
        Method(
            name="orpo",
            label="ORPO",
            config_class="trl.experimental.orpo:ORPOConfig",
            trainer_class="trl.experimental.orpo:ORPOTrainer",
            builder="trainers.pairwise",
            data_kinds=(formats.PREFERENCE,),
            defaults={"max_length": 1024, "beta": 0.1, "learning_rate": 5.0e-5},
            sequences_per_row=2,
            charted=("rewards/accuracies", "rewards/margins", "log_odds_ratio", "nll_loss"),
            card_tags=("orpo",),
            card_line="ORPO (reference-free, one stage from preference pairs)",
            experimental=True,
            compare_data="preference_data",
            note="reference-free, one stage from preference pairs (experimental in TRL)",
        ),
        Method(
            name="simpo",
            label="SimPO",
            config_class="trl.experimental.cpo:CPOConfig",
            trainer_class="trl.experimental.cpo:CPOTrainer",
            builder="trainers.pairwise",
            data_kinds=(formats.PREFERENCE,),
            defaults={
                "max_length": 1024,
                "loss_type": "simpo",
                "cpo_alpha": 0.0,
                "simpo_gamma": 0.5,
                "beta": 2.0,
                "learning_rate": 5.0e-5,
            },
            sequences_per_row=2,
            charted=("rewards/accuracies", "rewards/margins"),
            card_tags=("simpo", "cpo"),
            card_line="SimPO (CPO with loss_type simpo: reference-free, length-normalised)",
            experimental=True,
            compare_data="preference_data",
            note="reference-free, length-normalised preference loss (CPOTrainer, experimental in TRL)",
        ),
        Method(
            name="cpo",
            label="CPO",
            config_class="trl.experimental.cpo:CPOConfig",
            trainer_class="trl.experimental.cpo:CPOTrainer",
            builder="trainers.pairwise",
            data_kinds=(formats.PREFERENCE,),
            defaults={"max_length": 1024, "beta": 0.1, "learning_rate": 5.0e-5},
            sequences_per_row=2,
            charted=("rewards/accuracies", "rewards/margins", "nll_loss"),
            card_tags=("cpo",),
            card_line="CPO (contrastive preference optimisation with an NLL term)",
            experimental=True,
            compare_data="preference_data",
            note="reference-free preference loss plus NLL on the chosen reply (experimental in TRL)",
        ),
        Method(
            name="reward",
            label="Reward model",
            config_class="trl:RewardConfig",
            trainer_class="trl:RewardTrainer",
            builder="trainers.reward",
            data_kinds=(formats.PREFERENCE,),
            defaults={"max_length": 1024, "learning_rate": 1.0e-4},
            sequences_per_row=2,
            charted=("accuracy", "margin"),
            card_tags=("reward-model",),
            card_line="a reward model (a scoring head trained on preference pairs)",
            arm=False,
            compare_data="preference_data",
            model_class="transformers:AutoModelForSequenceClassification",
            peft_task="SEQ_CLS",
            output="reward_model",
            note="scores replies; a judge for comparisons and a reward for GRPO",
        ),
        Method(
            name="grpo",
            label="GRPO",
            config_class="trl:GRPOConfig",
            trainer_class="trl:GRPOTrainer",
            builder="trainers.grpo",
            data_kinds=(formats.PROMPTS,),
            defaults={
                "max_completion_length": 64,
                "num_generations": 4,
                "learning_rate": 1.0e-5,
                "beta": 0.0,
            },
            sequences_per_row=4,  # num_generations completions per prompt
            sequences_option="num_generations",
            charted=("reward", "reward_std", "completions/mean_length", "entropy"),
            charted_if_logged=("kl",),  # TRL logs it only with beta > 0 (a KL penalty against the reference)
            card_tags=("grpo",),
            card_line="GRPO (online RL from rewards on generated replies)",
            compare_data="prompt_data",
            note="online RL: the model answers prompts, rewards score the answers",
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
