"""The Train tab's form and its YAML, one truth: TrainForm (the form's fields) written as RunConfig YAML, merged
into the YAML shown (keeping what the form does not show), and read back from a YAML edit; the Data tab's checked
dataset applied to both.  Pure functions of text and values: ui/train_tab.py wires them to components."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import yaml

from core.errors import StudioError, user_message
from data.formats import INSTRUCTION, PREFERENCE, PROMPTS, UNPAIRED
from hub.checkpoints import sync_settings
from jobs import precheck
from jobs.chain import PREVIOUS
from trainers import config as config_mod
from trainers import methods
from trainers import rewards as rewards_mod
from trainers.config import LAUNCH_PROFILES, TRAINING_DEFAULTS, DataSection, yaml_syntax_error
from ui.context import DEMO_DPO, DEMO_GRPO, DEMO_KTO, DEMO_SFT, RECIPES, AppContext
from ui.errors import in_ui_words

PEFT_KINDS = {  # label -> (peft.type, model.quantization)
    "LoRA": ("lora", "none"),
    "QLoRA 4-bit": ("lora", "4bit"),
    "QLoRA 8-bit": ("lora", "8bit"),
    "DoRA": ("dora", "none"),
    "Full fine-tuning": ("none", "none"),
}


METHODS = methods.arms()  # {arm: label}: each method, then the chains (SFT→DPO)


DEMO_LR_FACTOR = 25  # the offline demo model is tiny: it learns at 25x the engine's learning rates


DATA_KIND_SOURCE = {  # data kind -> the form field naming it
    INSTRUCTION: "data_source",
    PREFERENCE: "pref_source",
    UNPAIRED: "feedback_source",
    PROMPTS: "prompt_source",
}


DPO_LOSSES = config_mod.option_choices("dpo", "loss_type")  # TRL's DPOConfig.loss_type values


# GRPO rewards a checkbox can add (the ones that need no option); regex, reward_model and python go in the YAML
REWARD_CHOICES = [n for n, opts in rewards_mod.OPTIONS.items() if rewards_mod.REQUIRED not in opts.values()]


def method_notes() -> str:
    """What each method trains on, in the method table's words (experimental-in-TRL ones say so)."""
    lines = []
    for label, name in methods.choices():
        m = methods.get(name)
        kinds = ", ".join(KIND_WORDS.get(k, k) for k in m.data_kinds)
        lines.append(f"- **{label}** ({kinds}){': ' + m.note if m.note else ''}")
    lines.append("- **SFT→DPO**: SFT, then DPO starting from the SFT adapter")
    lines.append("- Continued pre-training is SFT on plain text (a `text` column): the loss falls on every token.")
    return "\n".join(lines)


KIND_WORDS = {
    INSTRUCTION: "instruction data",
    PREFERENCE: "preference pairs",
    UNPAIRED: "feedback with a true/false label",
    PROMPTS: "prompts + rewards",
}


def trained_on(kind: str) -> str:
    """The labels of the methods that train on a data kind, e.g. "SFT" for instruction data."""
    return "/".join(label for label, name in methods.choices() if kind in methods.get(name).data_kinds)


SOURCE_LABELS = {  # data kind -> the label of its form field
    INSTRUCTION: f"{trained_on(INSTRUCTION)} data",
    PREFERENCE: f"{trained_on(PREFERENCE)} preference data",
    UNPAIRED: f"{trained_on(UNPAIRED)} feedback data",
    PROMPTS: f"{trained_on(PROMPTS)} prompts",
}


def preset_yaml(name: str) -> str:
    path = RECIPES / f"{name}.yaml"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def default_lr(method: str) -> float:
    """The engine's learning rate for a method (trainers.config.TRAINING_DEFAULTS over the method table)."""
    return float(methods.get(method).defaults.get("learning_rate", TRAINING_DEFAULTS["common"]["learning_rate"]))


def form_lr(arm: str, demo: bool) -> float:
    """The form's learning-rate default for an arm: its first stage's engine default (x DEMO_LR_FACTOR offline)."""
    return default_lr(methods.stages(arm)[0]) * (DEMO_LR_FACTOR if demo else 1)


def default_eval_size() -> float:
    return next(f.default for f in dataclasses.fields(DataSection) if f.name == "eval_size")


def arm_of(method: str) -> str:
    """An arm name from its name or its label ("sft_dpo" or "SFT→DPO")."""
    if method in METHODS:
        return method
    by_label = {label: arm for arm, label in METHODS.items()}
    if method not in by_label:
        raise StudioError(f"Unknown method {method!r}: choose one of {', '.join(METHODS.values())}.")
    return by_label[method]


@dataclass(frozen=True)
class TrainForm:
    """The Train tab's form; `build` turns gradio's {component: value} into one (see FIELDS)."""

    method: str  # an arm: a method name or a chain ("sft_dpo"); labels are accepted too
    model: str
    peft_kind: str
    data_source: str
    pref_source: str
    lr: float  # the first stage's; later stages keep the engine's ratio between the methods' defaults
    epochs: float
    max_steps: int
    batch: int
    max_length: int
    r: int
    sync_repo: str = ""  # push checkpoints to this private Hub repo while training (TRL's own hub_* options)
    launch_profile: str | None = None  # an accelerate profile (templates/accelerate) over every visible GPU
    feedback_source: str = ""  # KTO's unpaired feedback
    prompt_source: str = ""  # GRPO's prompts
    dpo_loss: str = "sigmoid"  # DPOConfig.loss_type (one of DPO_LOSSES)
    rewards: tuple[str, ...] = ()  # GRPO: reward names (trainers/rewards.py)

    @classmethod
    def from_inputs(cls, form: dict, values: dict) -> TrainForm:
        """From {field: component} and gradio's {component: value}."""
        return cls(**{name: values[component] for name, component in form.items()})

    def to_yaml(self) -> str:
        """The form as RunConfig YAML; a chain is one document per stage, each starting from the one before."""
        peft_type, quant = PEFT_KINDS[self.peft_kind]
        stages = methods.stages(arm_of(self.method))
        training = {"per_device_train_batch_size": int(self.batch), "max_length": int(self.max_length)}
        if self.max_steps and int(self.max_steps) > 0:
            training["max_steps"] = int(self.max_steps)
            training["logging_steps"] = max(1, min(10, int(self.max_steps) // 20))
        else:
            training["num_train_epochs"] = float(self.epochs)
        sync = (self.sync_repo or "").strip()
        docs = []
        for i, name in enumerate(stages):
            lr = float(f"{float(self.lr) * default_lr(name) / default_lr(stages[0]):.6g}")
            kind = methods.get(name).data_kinds[0]
            extra = {}
            if not config_mod.has_option(name, "max_length"):
                extra["max_length"] = None  # GRPO has no max_length: its replies are max_completion_length long
            if name == "dpo" and self.dpo_loss and self.dpo_loss != "sigmoid":
                extra["loss_type"] = [self.dpo_loss]
            docs.append(
                {
                    "method": name,
                    "model": {"name_or_path": self.model, "quantization": quant},
                    "peft": {"type": peft_type, "r": int(self.r), "lora_alpha": int(self.r) * 2},
                    "data": {"source": getattr(self, DATA_KIND_SOURCE[kind]), "eval_size": default_eval_size()},
                    "training": {
                        "learning_rate": lr,
                        **{k: v for k, v in training.items() if not (k in extra and extra[k] is None)},
                        **{k: v for k, v in extra.items() if v is not None},
                        **(sync_settings(f"{sync}-{name}") if sync else {}),
                    },
                    **({"rewards": [{"name": r} for r in self.rewards]} if name == "grpo" else {}),
                    **({"init_from": PREVIOUS} if i else {}),
                    **(
                        {"launch": {"profile": self.launch_profile, "num_processes": gpu_count()}}
                        if self.launch_profile
                        else {}
                    ),
                }
            )
        return yaml.safe_dump_all(docs, sort_keys=False)


FIELDS = tuple(f.name for f in dataclasses.fields(TrainForm))


def fields_to_yaml(*values, **named) -> str:
    """TrainForm(*values, **named).to_yaml(): the form's values in FIELDS order."""
    return TrainForm(*values, **named).to_yaml()


SOURCE_KEYS = ("subset", "split", "revision", "columns", "format", "eval_source", "eval_split")  # bound to a source


SYNC_KEYS = tuple(sync_settings("x/y"))  # TRL's checkpoint-sync options the sync field writes


PEFT_LABELS = {kinds: label for label, kinds in PEFT_KINDS.items()}


def _merge_doc(prev: dict, new: dict, first: bool) -> dict:
    """`new` (a document the form wrote) written into `prev` (the document shown): keys the form does not show
    survive; keys of another method's TRL config are dropped when the method changed."""
    out = copy.deepcopy(prev)
    method = new["method"]
    if prev.get("method") not in (None, method):
        training = out.get("training") if isinstance(out.get("training"), dict) else {}
        out["training"] = {k: v for k, v in training.items() if config_mod.has_option(method, k)}
        out.pop("rewards", None)
    out["method"] = method
    for section in ("model", "peft", "data", "training"):
        old = out.get(section) if isinstance(out.get(section), dict) else {}
        merged = {**old, **new[section]}
        if section == "data":
            if old.get("source") != new["data"]["source"]:
                merged = {k: v for k, v in merged.items() if k not in SOURCE_KEYS}
            if "eval_size" in old:
                merged["eval_size"] = old["eval_size"]
        if section == "peft" and "lora_alpha" in old and old.get("lora_alpha") != 2 * (old.get("r") or 0):
            merged["lora_alpha"] = old["lora_alpha"]  # a hand-set alpha is not the form's 2 x rank
        if section == "training":
            merged.pop("num_train_epochs" if "max_steps" in new[section] else "max_steps", None)
            if "logging_steps" in old:
                merged["logging_steps"] = old["logging_steps"]
            for key in SYNC_KEYS:
                if key not in new[section]:
                    merged.pop(key, None)
            loss = old.get("loss_type")
            if method == "dpo" and "loss_type" not in new[section] and (isinstance(loss, str) or len(loss or []) < 2):
                merged.pop("loss_type", None)  # the form's sigmoid; a hand-made mix of losses stays
            if not config_mod.has_option(method, "max_length"):
                merged.pop("max_length", None)
        out[section] = merged
    if "rewards" in new:
        kept = [r for r in out.get("rewards") or [] if isinstance(r, dict) and r.get("name") not in REWARD_CHOICES]
        out["rewards"] = kept + new["rewards"]
    if "init_from" in new:
        out["init_from"] = new["init_from"]
    elif first and out.get("init_from") == PREVIOUS:
        out.pop("init_from")
    if "launch" in new:
        out["launch"] = new["launch"]
    elif launch_profiles():
        out.pop("launch", None)  # the multi-GPU dropdown is shown: it owns launch
    return out


def merge_form(text: str, form: TrainForm) -> str:
    """The form's values written into the YAML shown (a document per stage); keys the form does not show
    (TRL options, data.columns, another document's settings) survive.  Raises when the YAML shown is broken."""
    old = parse_yaml(text) if (text or "").strip() else []
    pool = list(old)
    docs = []
    for i, new in enumerate(yaml.safe_load_all(form.to_yaml())):
        prev = next((d for d in pool if d.get("method") == new["method"]), None)
        if prev is None and i < len(old) and old[i] in pool:
            prev = old[i]
        if prev is not None:
            pool.remove(prev)
        docs.append(_merge_doc(prev or {}, new, first=not i))
    if old and "method" not in form_values(old):
        docs += pool  # documents no arm of the form describes stay as they are
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)


def is_number(value) -> bool:
    """A YAML number (not a bool): what a numeric form field can show."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def section_of(doc: dict, name: str) -> dict:
    """A config's section as a mapping ({} when it is missing or not a mapping, as while typing)."""
    return doc.get(name) if isinstance(doc.get(name), dict) else {}


def form_values(docs: list[dict]) -> dict[str, object]:
    """The form fields a config covers, {TrainForm field: value}; fields it does not say (or says wrongly) are
    left out, so the form keeps them."""
    out: dict[str, object] = {}
    names = tuple(str(d.get("method", "sft")) for d in docs)
    arm = next((a for a in METHODS if methods.stages(a) == names), None)
    if arm:
        out["method"] = arm
    first = docs[0]
    model, peft, training = section_of(first, "model"), section_of(first, "peft"), section_of(first, "training")
    if isinstance(model.get("name_or_path"), str):
        out["model"] = model["name_or_path"]
    kinds = (peft.get("type", "lora"), model.get("quantization", "none"))
    if kinds in PEFT_LABELS:
        out["peft_kind"] = PEFT_LABELS[kinds]
    for doc in docs:
        name = str(doc.get("method", "sft"))
        source = section_of(doc, "data").get("source")
        if name in methods.names() and isinstance(source, str):
            out.setdefault(DATA_KIND_SOURCE[methods.get(name).data_kinds[0]], source)
        dpo_loss = section_of(doc, "training").get("loss_type")
        if name == "dpo":
            dpo_loss = dpo_loss[0] if isinstance(dpo_loss, list) and len(dpo_loss) == 1 else dpo_loss or "sigmoid"
            if dpo_loss in DPO_LOSSES:
                out["dpo_loss"] = dpo_loss
        if name == "grpo" and isinstance(doc.get("rewards"), list):
            out["rewards"] = [r.get("name") for r in doc["rewards"] if isinstance(r, dict)]
            out["rewards"] = [r for r in out["rewards"] if r in REWARD_CHOICES]
    numbers = {
        "lr": training.get("learning_rate"),
        "epochs": training.get("num_train_epochs"),
        "max_steps": training.get("max_steps", 0 if "num_train_epochs" in training else None),
        "batch": training.get("per_device_train_batch_size"),
        "max_length": training.get("max_length"),
        "r": peft.get("r"),
    }
    out.update({k: v for k, v in numbers.items() if is_number(v)})
    repo = training.get("hub_model_id")
    suffix = f"-{first.get('method', 'sft')}"
    if training.get("push_to_hub") and isinstance(repo, str) and repo.endswith(suffix):
        out["sync_repo"] = repo[: -len(suffix)]
    elif "push_to_hub" not in training:
        out["sync_repo"] = ""
    return out


def config_problem(text: str) -> str:
    """The config's problem as one sentence, or "" when every document is a valid RunConfig."""
    try:
        for doc in parse_yaml(text):
            precheck.stage_config(doc)
    except Exception as exc:  # noqa: BLE001 - shown while the user types, not raised
        return in_ui_words(user_message(exc))
    return ""


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parse_yaml(text: str) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(text or "") if d is not None]
    except yaml.YAMLError as exc:
        raise yaml_syntax_error("The config", exc) from exc
    if not docs or not all(isinstance(d, dict) for d in docs):
        raise StudioError("The config is empty: pick a preset, or change a form field to write it again.")
    return docs


def initial_form(ctx: AppContext, demo_default: bool) -> TrainForm:
    """The form as first shown (the offline demo's model and data when the Hub cannot be reached)."""
    demo = demo_default
    return TrainForm(
        method=methods.names()[0],
        model=ctx.default_model,
        peft_kind="LoRA",
        data_source=str(DEMO_SFT) if demo else "trl-lib/Capybara",
        pref_source=str(DEMO_DPO) if demo else "trl-lib/ultrafeedback_binarized",
        lr=form_lr(methods.names()[0], demo),
        epochs=1,
        max_steps=200 if demo else 0,
        batch=8,
        max_length=128 if demo else 1024,
        r=64 if demo else 16,
        feedback_source=str(DEMO_KTO) if demo else "trl-lib/kto-mix-14k",
        prompt_source=str(DEMO_GRPO) if demo else "openai/gsm8k",
    )


def yaml_edited(text: str) -> tuple[dict, str]:
    """A YAML edit: ({TrainForm field: value} for the fields it covers, its problem in one sentence or "")."""
    try:
        return form_values(parse_yaml(text)), config_problem(text)
    except Exception as exc:  # noqa: BLE001 - shown under the editor while the user types, never raised
        return {}, in_ui_words(user_message(exc))


def apply_checked(checked: dict, text: str, form: TrainForm, demo: bool = False) -> tuple[str, TrainForm]:
    """The Data tab's checked dataset into the form and the YAML: its kind's field, a method that trains on that
    kind (kept when the current one does), and data.source/subset/split/columns of every stage of that kind."""
    kind, source = checked["kind"], str(checked["source"])
    if not any(kind in methods.get(m).data_kinds for m in methods.stages(arm_of(form.method))):
        picked = checked.get("method")
        arm = picked if picked in methods.names() and kind in methods.get(picked).data_kinds else None
        arm = arm or methods.for_kind(kind).name
        form = dataclasses.replace(form, method=arm, lr=form_lr(arm, demo))
    form = dataclasses.replace(form, **{DATA_KIND_SOURCE[kind]: source})
    docs = list(yaml.safe_load_all(merge_form(text, form)))
    for doc in docs:
        if kind in methods.get(doc["method"]).data_kinds:
            data = doc.setdefault("data", {})
            data.update(
                source=source, split=checked.get("split") or "train", columns=dict(checked.get("columns") or {})
            )
            if checked.get("subset"):
                data["subset"] = checked["subset"]
            else:
                data.pop("subset", None)
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True), form


def launch_profiles() -> list[str]:
    """Multi-GPU profiles, offered only when this machine has more than one GPU."""
    return [p for p in LAUNCH_PROFILES if p not in ("single_gpu", "cpu_ddp")] if gpu_count() > 1 else []
