"""Train tab: method, model, PEFT kind and the main numbers as real inputs; a YAML editor for the rest."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import yaml

from core import settings
from core.errors import StudioError, user_message
from data.formats import INSTRUCTION, PREFERENCE, PROMPTS, UNPAIRED
from hub.checkpoints import sync_settings
from jobs import access, precheck
from jobs.chain import PREVIOUS
from trainers import config as config_mod
from trainers import estimate as estimator
from trainers import hf_jobs, methods
from trainers import rewards as rewards_mod
from trainers.config import LAUNCH_PROFILES, TRAINING_DEFAULTS, DataSection, yaml_syntax_error
from ui import api_names, auth
from ui.context import DEMO_DPO, DEMO_GRPO, DEMO_KTO, DEMO_SFT, RECIPES, AppContext
from ui.errors import in_ui_words, ui_error
from ui.handlers import handler, sign_in_sentence

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


# --- the form and the YAML: one truth, synced both ways --------------------------------------------------------

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


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _section(doc: dict, name: str) -> dict:
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
    model, peft, training = _section(first, "model"), _section(first, "peft"), _section(first, "training")
    if isinstance(model.get("name_or_path"), str):
        out["model"] = model["name_or_path"]
    kinds = (peft.get("type", "lora"), model.get("quantization", "none"))
    if kinds in PEFT_LABELS:
        out["peft_kind"] = PEFT_LABELS[kinds]
    for doc in docs:
        name = str(doc.get("method", "sft"))
        source = _section(doc, "data").get("source")
        if name in methods.names() and isinstance(source, str):
            out.setdefault(DATA_KIND_SOURCE[methods.get(name).data_kinds[0]], source)
        dpo_loss = _section(doc, "training").get("loss_type")
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
    out.update({k: v for k, v in numbers.items() if _number(v)})
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


def launch_profiles() -> list[str]:
    """Multi-GPU profiles, offered only when this machine has more than one GPU."""
    return [p for p in LAUNCH_PROFILES if p not in ("single_gpu", "cpu_ddp")] if gpu_count() > 1 else []


def hf_jobs_command(text: str, flavor: str, push_to: str, code_repo: str) -> str:
    """The `hf jobs run` command for the first document of the config (the token goes as a secret)."""
    import tempfile

    docs = parse_yaml(text)
    doc = dict(docs[0])
    if len(docs) > 1 or doc.get("init_from") == PREVIOUS:
        stages = "→".join(str(d.get("method", "?")).upper() for d in docs)
        raise StudioError(
            f"HF Jobs runs one config at a time and this one has {len(docs)} stages ({stages}): run the first stage "
            "with 'Push the adapter to', then the next one with init_from set to that repo."
        )
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as f:
        yaml.safe_dump(doc, f)
    try:
        spec = hf_jobs.job_spec(f.name, flavor, (push_to or "").strip(), (code_repo or "").strip() or None)
    finally:
        Path(f.name).unlink(missing_ok=True)
    return hf_jobs.cli_command(spec)


def parse_yaml(text: str) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(text or "") if d is not None]
    except yaml.YAMLError as exc:
        raise yaml_syntax_error("The config", exc) from exc
    if not docs or not all(isinstance(d, dict) for d in docs):
        raise StudioError("The config is empty: pick a preset, or change a form field to write it again.")
    return docs


def check_data(docs: list[dict], fetch: bool = False, token: str | None = None) -> None:
    """The data doctor's verdict on every stage's data against its method, before anything is queued (a Hub
    dataset's first rows when `fetch`): one sentence naming the form field to change."""
    try:
        precheck.check_stages(docs, fetch, token)
    except precheck.StageDataError as exc:
        kind = methods.get(exc.method).data_kinds[0]
        label = methods.get(exc.method).label
        stage = f" (stage {exc.stage + 1} of {len(docs)})" if len(docs) > 1 else ""
        raise StudioError(f"'{SOURCE_LABELS[kind]}' does not suit {label}{stage} — {exc}") from None


def submit_run(ctx: AppContext, text: str, owner: str | None, token: str | None, profile=None) -> list[str]:
    """Queue every document of the YAML; `init_from: previous` points at the run queued just before.  The shared
    Space's path rules come first (nobody probes another user's files through the data check), then every
    stage's data against its method (the doctor), then the queue."""
    refusal = auth.may_launch(owner, profile)
    if refusal:
        raise StudioError(refusal)
    docs = parse_yaml(text)
    access.check_config(docs, owner, ctx.home, ctx.queue.store)
    check_data(docs, fetch=ctx.online, token=token)
    return ctx.queue.submit_chain(docs, owner, token)


def cli_command(text: str) -> str:
    docs = parse_yaml(text)
    lines = ["# Save each document as its own file, then:"]
    for i, doc in enumerate(docs):
        name = f"run{i + 1}-{doc.get('method', 'sft')}.yaml"
        if doc.get("init_from") == PREVIOUS:
            lines.append(f"# (set init_from in {name} to the previous run folder)")
        lines.append(f"python -m trainers train {name}")
    return "\n".join(lines) + "\n\n" + text


def estimate(text: str, ctx: AppContext | None = None, owner: str | None = "local") -> str:
    """The pre-flight estimate (trainers/estimate.py) of the first document: parameters, peak memory, time and
    cost per Spaces tier, full vs LoRA vs QLoRA, and a warning when this machine will likely run out of memory."""
    doc = dict(parse_yaml(text)[0])
    doc.pop("init_from", None)
    if access.enforced():  # the estimate reads the model's config: a path is checked like a submitted one
        if ctx is None:
            raise StudioError(access.NO_OWNER)
        access.check_config(doc, owner, ctx.home, ctx.queue.store)
    cfg = config_mod.from_dict(doc)
    plan = precheck.stage_plan(doc) if precheck.readable_here(cfg.data.source) else None
    # the summary line's counts (training rows after the held-out split, the doctor's tokens), not a recount
    est = estimator.estimate(cfg, plan and plan.rows, plan and plan.tokens_per_row)
    local = est["local"]
    warning = ""
    if local["fits"] != "fits":
        warning = (
            f"**Warning: likely out of memory on this machine** ({local['device']}, {local['memory_gb']} GB, "
            f"{local['fits']}): lower the batch size or max length, turn on gradient checkpointing, use QLoRA, "
            "or pick a bigger tier below.\n\n"
        )
    return warning + estimator.render(est)


def live_estimate(text: str, ctx: AppContext | None = None, owner: str | None = "local") -> str:
    """For change events: a half-typed config shows its problem as text instead of raising."""
    try:
        return estimate(text, ctx, owner)
    except Exception as exc:  # noqa: BLE001 - shown, not raised, while the user types
        return f"Estimate unavailable: {user_message(exc)}"


LOSS_WORDS = {
    "assistant_only": "loss on the assistant replies",
    "completion_only": "loss on the completions",
    "full_sequence": "loss on every token",
}


def _stage_line(plan: precheck.StagePlan, chain: bool) -> str:
    name = methods.get(plan.method).label if plan.method in methods.names() else plan.method
    head = f"**{name}**: " if chain else ""
    if plan.error:
        return f"{head}not trainable — {in_ui_words(plan.error)}"
    if plan.rows is None:
        steps = f"{plan.steps} steps" if plan.steps else "steps"
        return (
            f"{head}rows and tokens: counted when the run starts (the Hub dataset {plan.source} is downloaded by "
            f"the run, not before) · {steps} at effective batch {plan.effective_batch}"
        )
    parts = [f"{plan.rows:,} rows" + (f" (+{plan.eval_rows:,} held out)" if plan.eval_rows else "")]
    if plan.tokens_per_epoch is not None:
        parts.append(f"~{plan.tokens_per_epoch:,} tokens per epoch")
    parts.append(f"{plan.steps:,} steps at effective batch {plan.effective_batch}")
    if plan.loss_mask:
        parts.append(LOSS_WORDS.get(plan.loss_mask, plan.loss_mask))
    return head + " · ".join(parts)


def _estimate_words(doc: dict, plan: precheck.StagePlan) -> str:
    try:
        cfg = precheck.stage_config(doc)
        est = estimator.estimate(cfg, plan.rows, plan.tokens_per_row)
    except Exception as exc:  # noqa: BLE001 - the summary says what it could not estimate, in a clause
        return f"estimate unavailable: {in_ui_words(user_message(exc))}"
    tier = next((t for t in est["tiers"] if t["fits"] != "does not fit"), None)
    local = est["local"]
    words = f"peak ~{est['peak_memory_gb']:.2f} GB on a GPU, {local['fits']} here ({local['device']})"
    if tier:
        words += f", ~{estimator._duration(tier['hours_per_epoch'])} per epoch on {tier['name']}"
    return words


def run_summary(ctx: AppContext | None, text: str, owner: str | None = "local", fetch: bool = False) -> str:
    """One short line: per stage, the rows and tokens the data doctor keeps, steps, effective batch, loss mask;
    then the first stage's estimate.  Raises on a config that is not valid."""
    docs = parse_yaml(text)
    if access.enforced():  # the doctor reads the paths: they are checked like a submitted config's
        if ctx is None:
            raise StudioError(access.NO_OWNER)
        access.check_config(docs, owner, ctx.home, ctx.queue.store)
    plans = precheck.stage_plans(docs, fetch=fetch)
    lines = [_stage_line(p, len(plans) > 1) for p in plans]
    if not plans[0].error:
        lines[0] += " · " + _estimate_words(docs[0], plans[0])
    return "  \n".join(lines)


def live_summary(ctx: AppContext | None, text: str, owner: str | None = "local", fetch: bool = False) -> str:
    try:
        return run_summary(ctx, text, owner, fetch)
    except Exception as exc:  # noqa: BLE001 - shown, not raised, while the user types
        return f"Not ready to start: {in_ui_words(user_message(exc))}"


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


def shown(value) -> dict:
    """An output box shown with its content (output boxes stay hidden until they have some)."""
    return gr.update(visible=True, value=value)


HIDDEN = {"visible": False, "value": None}
# A code editor drawn while its tab was hidden, or before the page's fonts loaded, numbers its lines at the wrong
# height (1-17 beside 19 lines): a resize once the fonts are there makes CodeMirror measure again.
REMEASURE = "() => { document.fonts.ready.then(() => window.dispatchEvent(new Event('resize'))); }"


def build(ctx: AppContext, selected_run, demo_default: bool, checked_data=None, tabs=None):
    first = initial_form(ctx, demo_default)
    with gr.Tab("Train", id="train") as tab:
        tab.select(None, js=REMEASURE)
        with gr.Row():
            preset = gr.Dropdown(ctx.recipes(), label="Preset (templates/recipes)", value=None)
            method = gr.Radio([(label, arm) for arm, label in METHODS.items()], value=first.method, label="Method")
            peft_kind = gr.Dropdown(list(PEFT_KINDS), value=first.peft_kind, label="Adapter")
        with gr.Accordion("What each method trains on", open=False):
            gr.Markdown(method_notes())
        with gr.Row():
            model = gr.Textbox(first.model, label="Base model (Hub id or local path)")
            data_source = gr.Textbox(first.data_source, label=SOURCE_LABELS[INSTRUCTION])
            pref_source = gr.Textbox(first.pref_source, label=SOURCE_LABELS[PREFERENCE])
        with gr.Row():
            feedback_source = gr.Textbox(
                first.feedback_source,
                label=SOURCE_LABELS[UNPAIRED],
                info="a reply per row with a true/false label",
            )
            prompt_source = gr.Textbox(
                first.prompt_source,
                label=SOURCE_LABELS[PROMPTS],
                info="with a solution/answer column for the accuracy reward",
            )
        with gr.Row():
            lr = gr.Number(first.lr, label="Learning rate (first stage)", minimum=0)
            epochs = gr.Number(first.epochs, label="Epochs", minimum=0)
            max_steps = gr.Number(first.max_steps, label="Max steps (0 = use epochs)", precision=0)
            batch = gr.Slider(1, 64, value=first.batch, step=1, label="Batch size per device")
            max_length = gr.Slider(64, 8192, value=first.max_length, step=64, label="Max length")
            rank = gr.Slider(1, 256, value=first.r, step=1, label="LoRA rank")
        with gr.Accordion("Advanced: DPO loss, GRPO rewards", open=False), gr.Row():
            dpo_loss = gr.Dropdown(DPO_LOSSES, value="sigmoid", label="DPO loss_type (TRL's DPOConfig)")
            rewards = gr.CheckboxGroup(
                REWARD_CHOICES,
                value=[],
                label="GRPO rewards (regex, reward_model and python rewards: edit rewards: in the config)",
            )
        sync_repo = gr.Textbox(
            "",
            label="Sync checkpoints to a private Hub repo (optional; the run resumes from it after a Space restart)",
            placeholder="your-name/my-run-checkpoints",
        )
        profiles = launch_profiles()
        launch_profile = gr.Dropdown(
            [None, *profiles], value=None, label=f"Multi-GPU launch ({gpu_count()} GPUs)", visible=bool(profiles)
        )
        config = gr.Code(
            first.to_yaml(),
            language="yaml",
            max_lines=32,  # scrolls inside: CodeMirror draws (and numbers) every line of its own viewport
            label="RunConfig: the form writes into it, and edits here fill the form (every TRL option goes "
            "under training:)",
            elem_id="train-config",
        )
        problem = gr.Markdown(visible=False, elem_id="train-config-problem")
        reset_btn = gr.Button("Reset YAML from the form", size="sm")
        summary = gr.Markdown(elem_id="train-summary")
        with gr.Row():
            estimate_btn = gr.Button("Estimate memory, time and cost")
            cli_btn = gr.Button("Show CLI command")
            start = gr.Button("Start", variant="primary")
        info = gr.Markdown(visible=False)
        estimate_md = gr.Markdown(visible=False, label="Pre-flight estimate")
        cli = gr.Code(language="shell", label="Equivalent command", visible=False)
        with gr.Accordion("Run it on HF Jobs instead (bigger hardware, billed per minute)", open=False):
            with gr.Row():
                flavor = gr.Dropdown(hf_jobs.flavors(), value="a10g-large", label="Flavor")
                push_to = gr.Textbox(label="Push the adapter to (NAMESPACE/NAME)")
                code_repo = gr.Textbox(
                    settings.space_url() or "",
                    label="Code repo the Job clones (this Space by default)",
                )
            jobs_btn = gr.Button("Show the HF Jobs command")
            jobs_cmd = gr.Code(
                language="shell", label="Run with HF_TOKEN set in your shell (sent as a secret)", visible=False
            )

        components = [method, model, peft_kind, data_source, pref_source, lr, epochs, max_steps, batch, max_length]
        components += [rank, sync_repo, launch_profile, feedback_source, prompt_source, dpo_loss, rewards]
        form = dict(zip(FIELDS, components, strict=True))  # TrainForm field -> its component
        inputs = set(form.values())

        def form_updates(values: dict) -> dict:
            """{component: value} for the fields a config covers (the others keep what they show)."""
            return {form[name]: value for name, value in values.items() if name in form}

        def problem_update(sentence: str) -> dict:
            return gr.update(visible=bool(sentence), value=f"**Config problem:** {sentence}" if sentence else "")

        @handler(None)
        def hide(user):
            return gr.update(**HIDDEN)

        @handler("show the HF Jobs command")
        def jobs_clicked(user, text, flavor_name, push_repo, code):
            try:
                return shown(hf_jobs_command(text, flavor_name, push_repo, code))
            except StudioError as exc:
                raise ui_error(exc) from None

        jobs_btn.click(hide, None, jobs_cmd, api_name=False).then(
            jobs_clicked, [config, flavor, push_to, code_repo], jobs_cmd, api_name=False
        )

        @handler("build a config")
        def build_config(user, values: dict):  # gradio passes a set of inputs as one {component: value}
            return TrainForm.from_inputs(form, values).to_yaml()

        reset_btn.click(build_config, inputs, config, api_name=api_names.BUILD_CONFIG)

        @handler(None)  # the form's values written into the YAML shown: nothing on the server is read
        def form_edited(user, values: dict):
            text = values[config]
            try:
                merged = merge_form(text, TrainForm.from_inputs(form, values))
                return {config: merged, problem: problem_update(config_problem(merged))}
            except Exception as exc:  # noqa: BLE001 - a broken YAML is not overwritten: the user fixes it first
                sentence = in_ui_words(user_message(exc))
                return {problem: problem_update(sentence + " Fix it so the form can write into it.")}

        form_inputs = inputs | {config}
        others = [c.input for c in components if c is not method]
        gr.on(others, form_edited, form_inputs, [config, problem], api_name=False, trigger_mode="always_last")

        @handler(None)
        def method_picked(user, arm):
            return form_lr(arm, demo_default)

        method.input(method_picked, method, lr, api_name=False).then(
            form_edited, form_inputs, [config, problem], api_name=False
        )

        @handler(None)  # a YAML edit fills the form fields it covers; the text typed is left as it is
        def config_typed(user, text):
            values, sentence = yaml_edited(text)
            return {**form_updates(values), problem: problem_update(sentence)}

        config.input(
            config_typed,
            config,
            [*components, problem],
            api_name=False,
            trigger_mode="always_last",
            show_progress="hidden",
        )

        @handler(None)
        def preset_picked(user, name):
            text = preset_yaml(name)
            values, sentence = yaml_edited(text)
            return {config: text, **form_updates(values), problem: problem_update(sentence)}

        preset.change(preset_picked, preset, [config, *components, problem], api_name=False)

        @handler(None)  # on page load and whenever the YAML shown changes (typed, or written by the form)
        def config_changed(user, text):
            if not user.signed_in:
                return sign_in_sentence("see what the run will be")
            return live_summary(ctx, text, user.owner, fetch=ctx.online)

        gr.on(None, config_changed, config, summary, api_name=False, trigger_mode="always_last")

        @handler("estimate memory, time and cost")
        def estimate_clicked(user, text):
            try:
                return shown(estimate(text, ctx, user.owner))
            except StudioError as exc:
                raise ui_error(exc) from None

        estimate_btn.click(hide, None, estimate_md, api_name=False).then(
            estimate_clicked, config, estimate_md, api_name=api_names.ESTIMATE
        )

        @handler("show the CLI command")
        def cli_clicked(user, text):
            try:
                return shown(cli_command(text))
            except StudioError as exc:
                raise ui_error(exc) from None

        cli_btn.click(hide, None, cli, api_name=False).then(cli_clicked, config, cli, api_name=False)

        @handler("start runs", launch=True)
        def start_run(user, text, _selected):
            try:
                ids = submit_run(ctx, text, user.owner, user.token, user.profile)
            except StudioError as exc:
                raise ui_error(exc) from None
            return shown(f"Queued {', '.join(ids)} — follow it on the Runs tab."), ids[-1]

        start.click(hide, None, info, api_name=False).then(
            start_run, [config, selected_run], [info, selected_run], api_name=False
        )

        if checked_data is not None:

            @handler(None)  # the Data tab checked a dataset: it goes into the form and the YAML
            def data_checked(user, values: dict):  # one {component: value} of the State and the form
                checked = values[checked_data]
                if not checked:
                    return {}
                current = TrainForm.from_inputs(form, values)
                text, new_form = apply_checked(checked, values[config], current, demo_default)
                changed = {config: text, problem: problem_update(config_problem(text))}
                changed |= form_updates(dataclasses.asdict(new_form))
                if tabs is not None:
                    changed[tabs] = gr.Tabs(selected="train")
                return changed

            outputs = [config, problem, *components, *([tabs] if tabs is not None else [])]
            checked_data.change(data_checked, {checked_data} | form_inputs, outputs, api_name=False)
    return {"config": config, "build": reset_btn, "start": start, "info": info, "summary": summary, "form": form}
