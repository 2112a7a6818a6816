"""Train tab: method, model, PEFT kind and the main numbers as real inputs; a YAML editor for the rest."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import yaml

from core import settings
from core.errors import StudioError, user_message
from data.formats import INSTRUCTION, PREFERENCE, PROMPTS, UNPAIRED
from hub.checkpoints import sync_settings
from jobs import access
from jobs.chain import PREVIOUS
from trainers import config as config_mod
from trainers import estimate as estimator
from trainers import hf_jobs, methods
from trainers import rewards as rewards_mod
from trainers.config import LAUNCH_PROFILES, TRAINING_DEFAULTS, DataSection, yaml_syntax_error
from ui import api_names, auth
from ui.context import DEMO_DPO, DEMO_GRPO, DEMO_KTO, DEMO_SFT, RECIPES, AppContext
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
        raise StudioError("The config is empty: pick a preset or fill in the form, then build the config.")
    return docs


def submit_run(ctx: AppContext, text: str, owner: str | None, token: str | None, profile=None) -> list[str]:
    """Queue every document of the YAML; `init_from: previous` points at the run queued just before."""
    refusal = auth.may_launch(owner, profile)
    if refusal:
        raise StudioError(refusal)
    return ctx.queue.submit_chain(parse_yaml(text), owner, token)


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
    est = estimator.estimate(config_mod.from_dict(doc))
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


def build(ctx: AppContext, selected_run, demo_default: bool):
    with gr.Tab("Train"):
        with gr.Row():
            preset = gr.Dropdown(ctx.recipes(), label="Preset (templates/recipes)", value=None)
            method = gr.Radio(
                [(label, arm) for arm, label in METHODS.items()], value=methods.names()[0], label="Method"
            )
            peft_kind = gr.Dropdown(list(PEFT_KINDS), value="LoRA", label="Adapter")
        with gr.Accordion("What each method trains on", open=False):
            gr.Markdown(method_notes())
        with gr.Row():
            model = gr.Textbox(ctx.default_model, label="Base model (Hub id or local path)")
            data_source = gr.Textbox(
                str(DEMO_SFT) if demo_default else "trl-lib/Capybara", label=f"{trained_on(INSTRUCTION)} data"
            )
            pref_source = gr.Textbox(
                str(DEMO_DPO) if demo_default else "trl-lib/ultrafeedback_binarized",
                label=f"{trained_on(PREFERENCE)} preference data",
            )
        with gr.Row():
            feedback_source = gr.Textbox(
                str(DEMO_KTO) if demo_default else "trl-lib/kto-mix-14k",
                label=f"{trained_on(UNPAIRED)} feedback data (a reply per row with a true/false label)",
            )
            prompt_source = gr.Textbox(
                str(DEMO_GRPO) if demo_default else "openai/gsm8k",
                label=f"{trained_on(PROMPTS)} prompts (with a solution/answer column for the accuracy reward)",
            )
        with gr.Row():
            lr = gr.Number(form_lr(methods.names()[0], demo_default), label="Learning rate (first stage)", minimum=0)
            epochs = gr.Number(1, label="Epochs", minimum=0)
            max_steps = gr.Number(200 if demo_default else 0, label="Max steps (0 = use epochs)", precision=0)
            batch = gr.Slider(1, 64, value=8, step=1, label="Batch size per device")
            max_length = gr.Slider(64, 8192, value=128 if demo_default else 1024, step=64, label="Max length")
            rank = gr.Slider(1, 256, value=64 if demo_default else 16, step=1, label="LoRA rank")
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
        build_btn = gr.Button("Build config from the form")
        config = gr.Code(language="yaml", label="RunConfig (editable; every TRL option goes under training:)")
        with gr.Row():
            estimate_btn = gr.Button("Estimate memory, time and cost")
            cli_btn = gr.Button("Show CLI command")
            start = gr.Button("Start", variant="primary")
        info = gr.Markdown()
        estimate_md = gr.Markdown(label="Pre-flight estimate")
        cli = gr.Code(language="shell", label="Equivalent command", visible=True)
        profiles = launch_profiles()
        launch_profile = gr.Dropdown(
            [None, *profiles], value=None, label=f"Multi-GPU launch ({gpu_count()} GPUs)", visible=bool(profiles)
        )
        with gr.Accordion("Run it on HF Jobs instead (bigger hardware, billed per minute)", open=False):
            with gr.Row():
                flavor = gr.Dropdown(hf_jobs.flavors(), value="a10g-large", label="Flavor")
                push_to = gr.Textbox(label="Push the adapter to (NAMESPACE/NAME)")
                code_repo = gr.Textbox(
                    settings.space_url() or "",
                    label="Code repo the Job clones (this Space by default)",
                )
            jobs_btn = gr.Button("Show the HF Jobs command")
            jobs_cmd = gr.Code(language="shell", label="Run with HF_TOKEN set in your shell (sent as a secret)")

        @handler("show the HF Jobs command")
        def jobs_clicked(user, text, flavor_name, push_repo, code):
            return hf_jobs_command(text, flavor_name, push_repo, code)

        jobs_btn.click(jobs_clicked, [config, flavor, push_to, code_repo], jobs_cmd, api_name=False)

        components = [method, model, peft_kind, data_source, pref_source, lr, epochs, max_steps, batch, max_length]
        components += [rank, sync_repo, launch_profile, feedback_source, prompt_source, dpo_loss, rewards]
        form = dict(zip(FIELDS, components, strict=True))  # TrainForm field -> its component

        @handler("build a config")
        def build_config(user, values: dict):  # gradio passes a set of inputs as one {component: value}
            return TrainForm.from_inputs(form, values).to_yaml()

        build_btn.click(build_config, set(form.values()), config, api_name=api_names.BUILD_CONFIG)

        @handler(None)
        def method_picked(user, arm):
            return form_lr(arm, demo_default)

        method.change(method_picked, method, lr, api_name=False)

        @handler(None)
        def preset_picked(user, name):
            return preset_yaml(name)

        preset.change(preset_picked, preset, config, api_name=False)

        @handler("estimate memory, time and cost")
        def estimate_clicked(user, text):
            return estimate(text, ctx, user.owner)

        estimate_btn.click(estimate_clicked, config, estimate_md, api_name=api_names.ESTIMATE)

        @handler(None)
        def config_edited(user, text):
            if not user.signed_in:
                return "Estimate unavailable: " + sign_in_sentence("see estimates")
            return live_estimate(text, ctx, user.owner)

        config.change(config_edited, config, estimate_md, api_name=False, trigger_mode="always_last")

        @handler("show the CLI command")
        def cli_clicked(user, text):
            return cli_command(text)

        cli_btn.click(cli_clicked, config, cli, api_name=False)

        @handler("start runs", launch=True)
        def start_run(user, text, _selected):
            ids = submit_run(ctx, text, user.owner, user.token, user.profile)
            return f"Queued {', '.join(ids)} — follow it on the Runs tab.", ids[-1]

        start.click(start_run, [config, selected_run], [info, selected_run], api_name=False)
    return {"config": config, "build": build_btn, "start": start, "info": info}
