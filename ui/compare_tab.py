"""Compare tab: SFT vs DPO vs SFT→DPO on one base, one click. The form writes a comparison config; the
arms are ordinary queued runs (also on the Runs tab); jobs/comparisons.py keeps each comparison's state in
its folder and launches the report child; this file only draws it."""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import yaml

from core.errors import StudioError, user_message
from data.formats import INSTRUCTION, PREFERENCE, PROMPTS, UNPAIRED
from evaluation import compare
from jobs import comparisons
from jobs.comparisons import (
    ARM_LABELS,
    ARM_ORDER,
    comparison_status,
    comparisons_root,
    list_comparisons,
    render_report,
)
from trainers import methods
from trainers.config import yaml_syntax_error
from ui import api_names, auth
from ui.boxes import hide, problem_update, shown
from ui.context import DEMO_DPO, DEMO_SFT, RECIPES, AppContext
from ui.errors import as_gr_error, in_ui_words, ui_error
from ui.handlers import handler
from ui.train_form import default_lr, is_number, section_of, trained_on
from ui.train_tab import REMEASURE

METHOD_CHOICES = methods.choices()
DEMO_LR = {"sft": 5e-3, "dpo": 6e-4}  # templates/recipes/demo-compare.yaml: the tiny demo model's rates

DEMO_EVAL = {
    str(DEMO_SFT): str(DEMO_SFT.with_name("sft_eval.jsonl")),
    str(DEMO_DPO): str(DEMO_DPO.with_name("dpo_eval.jsonl")),
}


# --- the form and the YAML ----------------------------------------------------------------------------


def demo_yaml() -> str:
    return (RECIPES / "demo-compare.yaml").read_text(encoding="utf-8")


SHOWN_DEFAULTS = ("beta",)  # method defaults the comparison YAML spells out beside the learning rate


@dataclass(frozen=True)
class CompareForm:
    """The Compare tab's form; `from_inputs` turns gradio's {component: value} into one."""

    model: str
    sft_source: str
    pref_source: str
    one_dataset: bool
    arms: list
    rank: int
    steps: int
    learning_rates: dict  # {method name: learning rate}, one per method of the table
    max_length: int
    existing: str = ""  # run ids of yours, comma-separated
    feedback_source: str = ""  # KTO arms' feedback data
    prompt_source: str = ""  # GRPO arms' prompts
    primary_judge: str = "verifiable"  # the judge the verdict follows
    reward_judge: str = ""  # "train" (on the preference data), a reward run folder or Hub id; "" = off
    llm_judge: str = ""  # the pairwise LLM judge's model id; "" = off
    llm_backend: str = "inference"  # inference (Inference Providers, your token) | local (this Space's GPU)
    forgetting_tasks: str = ""  # lm-eval task names, comma-separated; "" = off

    @classmethod
    def from_inputs(cls, form: dict, values: dict) -> CompareForm:
        """From {field: component} ({method: component} under "learning_rates") and gradio's {component: value}."""
        named = {name: values[c] for name, c in form.items() if name != "learning_rates"}
        rates = {method: values[c] for method, c in form["learning_rates"].items()}
        return cls(**named, learning_rates=rates)

    @classmethod
    def defaults(cls, model: str, demo: bool) -> CompareForm:
        """The form as first shown: every arm, and each method's engine learning rate (demo: the recipe's)."""
        sources = (str(DEMO_SFT), str(DEMO_DPO)) if demo else ("trl-lib/Capybara", "trl-lib/ultrafeedback_binarized")
        rates = {name: DEMO_LR.get(name, default_lr(name)) if demo else default_lr(name) for _, name in METHOD_CHOICES}
        steps, rank, length = (200, 64, 128) if demo else (0, 16, 1024)
        arms = ["prompting", "sft", "dpo", "sft_dpo"]
        return cls(model, *sources, False, arms, rank, steps, rates, length, "", reward_judge="train" if demo else "")

    def to_yaml(self) -> str:
        """The form as a comparison config (the format of templates/recipes/demo-compare.yaml)."""

        def data(source):
            source = (source or "").strip()
            section = {"source": source}
            if source in DEMO_EVAL:  # the shipped demo sets have their own held-out files
                section["eval_source"] = DEMO_EVAL[source]
            return section

        training = {"per_device_train_batch_size": 8, "max_length": int(self.max_length), "report_to": "none"}
        if self.steps and int(self.steps) > 0:
            training["max_steps"] = int(self.steps)
            training["logging_steps"] = max(1, min(10, int(self.steps) // 20))
        else:
            training["num_train_epochs"] = 1
        cfg = {
            "model": {"name_or_path": (self.model or "").strip()},
            "peft": {
                "type": "lora",
                "r": int(self.rank),
                "lora_alpha": int(self.rank) * 2,
                "target_modules": "all-linear",
            },
            **(
                {"data": data(self.sft_source)}
                if self.one_dataset
                else {"sft_data": data(self.sft_source), "preference_data": data(self.pref_source)}
            ),
            "arms": [a for a in ARM_ORDER if a in (self.arms or [])],
            "seed": 42,
            "training": training,
        }
        for name, lr in self.learning_rates.items():
            engine = {k: v for k, v in methods.get(name).defaults.items() if k in SHOWN_DEFAULTS}
            cfg[f"{name}_training"] = {"learning_rate": float(lr), **engine}
        ids = [x.strip() for x in (self.existing or "").replace("\n", ",").split(",") if x.strip()]
        if ids:
            cfg["existing"] = {run_id: run_id for run_id in ids}
        for key, source in (("feedback_data", self.feedback_source), ("prompt_data", self.prompt_source)):
            if (source or "").strip():
                cfg[key] = data(source)
        cfg["judges"] = self.judges()
        return yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)

    def judges(self) -> dict:
        """The `judges:` section (evaluation/judging.py): verifiable always; the others when filled in."""
        out: dict = {"verifiable": {"mode": "normalised"}}
        reward = (self.reward_judge or "").strip()
        if reward:
            out["reward_model"] = {"train": True} if reward == "train" else {"model": reward}
        if (self.llm_judge or "").strip():
            out["llm"] = {"model": self.llm_judge.strip(), "backend": self.llm_backend or "inference"}
        tasks = [t.strip() for t in (self.forgetting_tasks or "").split(",") if t.strip()]
        if tasks:
            out["forgetting"] = {"tasks": tasks}
        primary = {"verifiable": "verifiable", "reward model": "reward_model", "LLM judge": "llm"}.get(
            self.primary_judge, self.primary_judge
        )
        out["primary"] = primary if primary in out else "verifiable"
        return out


def _source(cfg: dict, key: str) -> str | None:
    source = section_of(cfg, key).get("source")
    return source if isinstance(source, str) else None


def form_values(cfg: dict) -> dict:
    """The form fields a comparison config covers, {CompareForm field: value} ("learning_rates" a dict); a
    section the config leaves out reads as the form's empty value (no feedback data, no LLM judge ...)."""
    out: dict = {}
    if isinstance(section_of(cfg, "model").get("name_or_path"), str):
        out["model"] = cfg["model"]["name_or_path"]
    out["one_dataset"] = "data" in cfg
    sft = _source(cfg, "data") if "data" in cfg else _source(cfg, "sft_data")
    if sft is not None:
        out["sft_source"] = sft
    if not out["one_dataset"] and _source(cfg, "preference_data") is not None:
        out["pref_source"] = _source(cfg, "preference_data")
    out["feedback_source"] = _source(cfg, "feedback_data") or ""
    out["prompt_source"] = _source(cfg, "prompt_data") or ""
    if isinstance(cfg.get("arms"), list):
        out["arms"] = [a for a in cfg["arms"] if a in ARM_LABELS]
    if is_number(section_of(cfg, "peft").get("r")):
        out["rank"] = int(cfg["peft"]["r"])
    training = section_of(cfg, "training")
    per_method = [section_of(cfg, f"{name}_training").get("max_steps") for _, name in METHOD_CHOICES]
    steps = training.get(
        "max_steps", 0 if "num_train_epochs" in training else next(filter(is_number, per_method), None)
    )
    if is_number(steps):
        out["steps"] = int(steps)
    if is_number(training.get("max_length")):
        out["max_length"] = int(training["max_length"])
    rates = {name: section_of(cfg, f"{name}_training").get("learning_rate") for _, name in METHOD_CHOICES}
    out["learning_rates"] = {name: float(lr) for name, lr in rates.items() if is_number(lr)}
    existing = cfg.get("existing")
    out["existing"] = ", ".join(map(str, existing)) if isinstance(existing, dict | list) else ""
    judges = section_of(cfg, "judges")
    reward, llm = section_of(judges, "reward_model"), section_of(judges, "llm")
    out["reward_judge"] = "train" if reward.get("train") else str(reward.get("model") or "")
    out["llm_judge"] = str(llm.get("model") or "")
    if llm.get("backend") in ("inference", "local"):
        out["llm_backend"] = llm["backend"]
    tasks = section_of(judges, "forgetting").get("tasks")
    out["forgetting_tasks"] = ", ".join(map(str, tasks)) if isinstance(tasks, list) else ""
    if judges.get("primary") in ("verifiable", "reward_model", "llm"):
        out["primary_judge"] = judges["primary"]
    return out


def _data_section(old: dict, new: dict) -> dict:
    """A data section the form wrote into the one shown: the shown one's other keys (columns ...) survive while
    the source stays."""
    if old.get("source") == new.get("source"):
        return {**old, **new}
    return dict(new)


def merge_form(text: str, form: CompareForm) -> str:
    """The fields of the form that differ from what the YAML shown says, written into it: keys the form does
    not show (prompting:, evaluation:, per-method TRL options, data columns) survive.  Raises on a broken YAML."""
    old = parse_yaml(text) if (text or "").strip() else {}
    said = form_values(old)
    new = yaml.safe_load(form.to_yaml())
    mine = dataclasses.asdict(form)
    changed = {k for k, v in mine.items() if k != "learning_rates" and said.get(k, object()) != v}
    out = copy.deepcopy(old)
    if "model" in changed:
        out["model"] = {**section_of(old, "model"), **new["model"]}
    if changed & {"sft_source", "pref_source", "one_dataset"}:
        if form.one_dataset:
            prev = section_of(old, "data") or section_of(old, "sft_data")
            out.pop("sft_data", None), out.pop("preference_data", None)
            out["data"] = _data_section(prev, new["data"])
        else:
            sft_prev = section_of(old, "sft_data") or section_of(old, "data")
            out.pop("data", None)
            out["sft_data"] = _data_section(sft_prev, new["sft_data"])
            out["preference_data"] = _data_section(section_of(old, "preference_data"), new["preference_data"])
    for field, key in (("feedback_source", "feedback_data"), ("prompt_source", "prompt_data")):
        if field in changed:
            if key in new:
                out[key] = _data_section(section_of(old, key), new[key])
            else:
                out.pop(key, None)
    if "arms" in changed:
        out["arms"] = new["arms"]
    if "rank" in changed:
        out["peft"] = {**section_of(old, "peft"), **new["peft"]}
    training = {**section_of(old, "training")}
    if "steps" in changed:
        for key in ("max_steps", "num_train_epochs", "logging_steps"):
            training.pop(key, None)
        training.update({k: v for k, v in new["training"].items() if k in ("max_steps", "num_train_epochs")})
        training.setdefault("logging_steps", new["training"].get("logging_steps", 10))
        for _, name in METHOD_CHOICES:  # "Steps per arm" is every arm's: per-method step counts go
            if isinstance(out.get(f"{name}_training"), dict):
                out[f"{name}_training"].pop("max_steps", None)
    if "max_length" in changed:
        training["max_length"] = new["training"]["max_length"]
    if training or "training" in new and not old:
        out["training"] = {**new["training"], **training} if not old else training
    for name, lr in form.learning_rates.items():
        if said.get("learning_rates", {}).get(name) != lr:
            out[f"{name}_training"] = {**new[f"{name}_training"], **section_of(out, f"{name}_training")}
            out[f"{name}_training"]["learning_rate"] = float(lr)
    if "existing" in changed:
        if "existing" in new:
            out["existing"] = new["existing"]
        else:
            out.pop("existing", None)
    judge_fields = {"primary_judge", "reward_judge", "llm_judge", "llm_backend", "forgetting_tasks"}
    if changed & judge_fields:
        judges = {k: v for k, v in section_of(old, "judges").items() if k not in ("reward_model", "llm", "forgetting")}
        out["judges"] = {**new["judges"], **{k: v for k, v in judges.items() if k != "primary"}}
        out["judges"]["primary"] = new["judges"]["primary"]
    for key in ("seed",):
        out.setdefault(key, new[key])
    return yaml.safe_dump(out, sort_keys=False, allow_unicode=True)


def config_problem(text: str) -> str:
    """The comparison config's problem as one sentence, or ""."""
    try:
        compare.validate(parse_yaml(text))
    except Exception as exc:  # noqa: BLE001 - shown while the user types, not raised
        return in_ui_words(user_message(exc))
    return ""


def apply_checked(checked: dict, text: str, form: CompareForm) -> str:
    """The Data tab's checked dataset into the Compare form's field for its kind (instruction or preference
    data; feedback and prompts for KTO/GRPO arms) and the YAML's section, columns and split included."""
    kind, source = checked["kind"], str(checked["source"])
    field, key = {
        INSTRUCTION: ("sft_source", "sft_data"),
        PREFERENCE: ("pref_source", "preference_data"),
        UNPAIRED: ("feedback_source", "feedback_data"),
        PROMPTS: ("prompt_source", "prompt_data"),
    }[kind]
    if form.one_dataset and key in ("sft_data", "preference_data"):
        field, key = "sft_source", "data"
    text = merge_form(text, dataclasses.replace(form, **{field: source}))
    cfg = parse_yaml(text)
    section = cfg.setdefault(key, {"source": source})
    section.update(source=source, split=checked.get("split") or "train", columns=dict(checked.get("columns") or {}))
    if checked.get("subset"):
        section["subset"] = checked["subset"]
    else:
        section.pop("subset", None)
    return yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)


def parse_yaml(text: str) -> dict:
    try:
        raw = yaml.safe_load(text or "")
    except yaml.YAMLError as exc:
        raise yaml_syntax_error("The comparison config", exc) from exc
    if raw is None:
        raise StudioError("The comparison config is empty: fill in the form or paste a comparison YAML.")
    if not isinstance(raw, dict):
        raise StudioError("A comparison config is a mapping with model, sft_data, preference_data and arms.")
    return raw


def start_comparison(ctx: AppContext, text: str, owner: str | None, token: str | None, profile=None) -> dict:
    """Sign-in check, then jobs.comparisons.start: {"comparison_id", "runs": {arm: run id}}."""
    refusal = auth.may_launch(owner, profile)
    if refusal:
        raise StudioError(refusal)
    return comparisons.start(ctx, parse_yaml(text), owner, token)


def rebuild_report(ctx: AppContext, comparison_id: str, owner: str | None, token: str | None, profile=None) -> str:
    refusal = auth.may_launch(owner, profile)
    if refusal:
        raise StudioError(refusal)
    return comparisons.rebuild_report(ctx, comparison_id, owner, token)


def arms_markdown(status: dict) -> str:
    lines = [f"**Comparison {status['comparison_id']}** — {status['title']}", "", "| arm | run | status | note |"]
    lines.append("|---|---|---|---|")
    for entry in status["arms"].values():
        state = entry["status"]
        if state == "running" and entry.get("step"):
            state += f" — step {entry['step']}" + (f" of {entry['max_steps']}" if entry.get("max_steps") else "")
        note = " ".join(str(entry.get("error") or "").split()).replace("|", "\\|")
        lines.append(f"| {entry['label']} | {entry.get('run_id') or '—'} | {state} | {note} |")
    lines.append("")
    lines.append(
        {
            "waiting": "The report is built once every arm has finished; a failed arm is reported as failed.",
            "running": "Building the report: the base and every finished arm are scored on the same held-out rows…",
            "ready": "Report ready (below); report.json can be downloaded.",
            "failed": status.get("report_error") or "The report failed.",
        }[status["report"]]
    )
    return "\n".join(lines)


def _servable(folder: Path, version: int, paths: list[str]) -> dict[str, str]:
    """Copies of report files in the temp dir (files the page may serve), one folder per report version."""
    dest = Path(tempfile.gettempdir()) / "fine-tune-studio" / f"compare-{folder.name}-{version}"
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for src in map(Path, paths):
        target = dest / src.name
        if not target.exists():
            tmp = dest / f".{src.name}.{os.getpid()}.{threading.get_ident()}"
            shutil.copyfile(src, tmp)
            tmp.replace(target)
        out[src.name] = str(target)
    return out


def refresh_view(ctx: AppContext, comparison_id, known_choices, shown_version, owner, token) -> tuple:
    """The timer's view: (picker update, its choices, arms Markdown, report Markdown above the images,
    loss-curves PNG, metrics PNG, report Markdown below the images, report.json, shown report version).
    Report outputs are skipped while the page already shows that version of the report."""
    choices = [list(c) for c in list_comparisons(ctx, owner)]
    picker_out = gr.update(choices=[tuple(c) for c in choices]) if choices != known_choices else gr.skip()
    clear = [gr.skip()] * 6 if shown_version is None else ["", None, None, "", None, None]
    if not comparison_id or not owner:
        text = "Start a comparison, or pick one of yours." if owner else "Sign in to see your comparisons."
        return picker_out, choices, text, *clear
    try:
        status = comparison_status(ctx, comparison_id, owner, token)
    except Exception as exc:  # noqa: BLE001 - the page shows one sentence, never a traceback
        return picker_out, choices, as_gr_error(exc).message, *clear
    text = arms_markdown(status)
    if status["report"] != "ready":
        return picker_out, choices, text, *clear
    folder = comparisons_root(ctx) / status["comparison_id"]
    version = (folder / "report.md").stat().st_mtime_ns
    if shown_version == f"{folder.name}:{version}":
        return picker_out, choices, text, *([gr.skip()] * 6)
    top, bottom, images = render_report(folder)
    files = _servable(folder, version, [*images.values(), *filter(None, [status["report_json"]])])
    served = lambda path: files.get(Path(path).name) if path else None  # noqa: E731
    return (
        picker_out,
        choices,
        text,
        top,
        served(images.get("loss_curves")),
        served(images.get("metrics")),
        bottom,
        served(status["report_json"]),
        f"{folder.name}:{version}",
    )


# --- the tab ----------------------------------------------------------------------------------------------


def build(ctx: AppContext, demo_default: bool, checked_data=None):
    with gr.Tab("Compare", id="compare") as tab:
        tab.select(None, js=REMEASURE)
        gr.Markdown(
            f"{' vs '.join(ARM_LABELS.values())} on one base model: every arm gets the same model, LoRA settings, seed and "
            "held-out rows; the arms are queued runs (see the Runs tab), and the report appears here when they "
            "have finished. The form and the comparison YAML below are one: a form change writes into the YAML, and an "
            "edit of the YAML fills the form; Start runs the YAML shown."
        )
        initial = demo_yaml() if demo_default else CompareForm.defaults(ctx.default_model, False).to_yaml()
        first = dataclasses.replace(CompareForm.defaults(ctx.default_model, demo_default))
        said = form_values(parse_yaml(initial))  # the form shows what the YAML shown says
        first = dataclasses.replace(
            first,
            **{k: v for k, v in said.items() if k != "learning_rates"},
            learning_rates={**first.learning_rates, **said.get("learning_rates", {})},
        )
        with gr.Row():
            model = gr.Textbox(first.model, label="Base model (Hub id or local path)")
            sft_data = gr.Textbox(first.sft_source, label=f"Instruction dataset ({trained_on(INSTRUCTION)})")
            pref_data = gr.Textbox(first.pref_source, label=f"Preference dataset ({trained_on(PREFERENCE)})")
        with gr.Row():
            one_dataset = gr.Checkbox(first.one_dataset, label="One dataset for both (the instruction dataset field)")
            arms = gr.CheckboxGroup([(label, arm) for arm, label in ARM_LABELS.items()], value=first.arms, label="Arms")
            existing = gr.Textbox(first.existing, label="Existing runs of yours to add (run ids, comma-separated)")
        with gr.Row():
            rank = gr.Slider(1, 256, value=first.rank, step=1, label="LoRA rank")
            steps = gr.Number(first.steps, label="Steps per arm (0 = one epoch)", precision=0)
            rates = {
                name: gr.Number(first.learning_rates[name], label=f"{label} learning rate", minimum=0)
                for label, name in METHOD_CHOICES
            }
            max_length = gr.Slider(64, 8192, value=first.max_length, step=64, label="Max length")
        with gr.Row():
            feedback_data = gr.Textbox(first.feedback_source, label=f"Feedback dataset ({trained_on(UNPAIRED)} arms)")
            prompt_data = gr.Textbox(first.prompt_source, label=f"Prompts ({trained_on(PROMPTS)} arms)")
        with gr.Accordion("Judges: which arm answers better (the verdict follows the primary one)", open=False):
            with gr.Row():
                primary_judge = gr.Dropdown(
                    ["verifiable", "reward_model", "llm"], value=first.primary_judge, label="Primary judge"
                )
                reward_judge = gr.Textbox(
                    first.reward_judge,
                    label="Reward-model judge: 'train' (on the preference data), a reward run folder or Hub id",
                )
            with gr.Row():
                llm_judge = gr.Textbox(first.llm_judge, label="LLM judge model (Hub id; empty = off)")
                llm_backend = gr.Dropdown(
                    ["inference", "local"],
                    value=first.llm_backend,
                    label="LLM judge runs on (inference: Inference Providers with your token; local: this Space)",
                )
                forgetting = gr.Textbox(
                    first.forgetting_tasks, label="Forgetting check: lm-eval tasks, comma-separated (empty = off)"
                )
        form = {"model": model, "sft_source": sft_data, "pref_source": pref_data, "one_dataset": one_dataset}
        form |= {"feedback_source": feedback_data, "prompt_source": prompt_data, "primary_judge": primary_judge}
        form |= {"reward_judge": reward_judge, "llm_judge": llm_judge, "llm_backend": llm_backend}
        form["forgetting_tasks"] = forgetting
        form |= {"arms": arms, "rank": rank, "steps": steps, "learning_rates": rates, "max_length": max_length}
        form["existing"] = existing
        inputs = {c for name, c in form.items() if name != "learning_rates"} | set(rates.values())
        config = gr.Code(
            initial,
            language="yaml",
            max_lines=32,  # scrolls inside: CodeMirror draws (and numbers) every line of its own viewport
            label="Comparison config: the form writes into it, and edits here fill the form",
            elem_id="compare-config",
        )
        problem = gr.Markdown(visible=False)
        with gr.Row():
            start = gr.Button("Start comparison", variant="primary")
            rebuild = gr.Button("Rebuild the report")
        info = gr.Markdown(visible=False)
        picker = gr.Dropdown([], value=None, label="My comparisons (newest first)", interactive=True)
        arms_md = gr.Markdown()
        report_top = gr.Markdown()
        with gr.Row(visible=False) as figures:  # headings, not image labels: a label covers the figure's first title
            with gr.Column():
                gr.Markdown("**Loss curves**")
                loss_img = gr.Image(label="Loss curves", type="filepath", interactive=False, show_label=False)
            with gr.Column():
                gr.Markdown("**Held-out metrics**")
                metrics_img = gr.Image(label="Held-out metrics", type="filepath", interactive=False, show_label=False)
        report_bottom = gr.Markdown()
        report_file = gr.File(label="report.json", visible=False)
        known = gr.State(None)  # the picker's choices as last sent to this page
        report_version = gr.State(None)  # which report version this page shows
        timer = gr.Timer(3.0)

        fields = [c for name, c in form.items() if name != "learning_rates"] + list(rates.values())

        def form_updates(values: dict) -> dict:
            out = {form[k]: v for k, v in values.items() if k in form and k != "learning_rates"}
            return out | {rates[m]: lr for m, lr in values.get("learning_rates", {}).items() if m in rates}

        @handler(None)  # the form's changes written into the YAML shown: nothing on the server is read
        def form_changed(user, values: dict):  # gradio passes a set of inputs as one {component: value}
            try:
                text = merge_form(values[config], CompareForm.from_inputs(form, values))
            except Exception as exc:  # noqa: BLE001 - a broken YAML is not overwritten: the user fixes it first
                sentence = in_ui_words(user_message(exc))
                return {problem: problem_update(sentence + " Fix it so the form can write into it.")}
            return {config: text, problem: problem_update(config_problem(text))}

        gr.on(
            [c.input for c in fields],
            form_changed,
            inputs | {config},
            [config, problem],
            api_name=False,
            show_progress="hidden",
            trigger_mode="always_last",
        )

        @handler(None)  # a YAML edit fills the form fields it covers; the text typed is left as it is
        def config_typed(user, text):
            try:
                values = form_values(parse_yaml(text))
            except Exception as exc:  # noqa: BLE001 - shown under the editor while the user types, never raised
                return {problem: problem_update(in_ui_words(user_message(exc)))}
            return {**form_updates(values), problem: problem_update(config_problem(text))}

        config.input(
            config_typed, config, [*fields, problem], api_name=False, show_progress="hidden", trigger_mode="always_last"
        )

        if checked_data is not None:

            @handler(None)  # the Data tab checked a dataset: into this tab's field for its kind and the YAML
            def data_checked(user, values: dict):
                checked = values[checked_data]
                if not checked:
                    return {}
                text = apply_checked(checked, values[config], CompareForm.from_inputs(form, values))
                return {config: text, **form_updates(form_values(parse_yaml(text))), problem: problem_update("")}

            checked_data.change(
                data_checked, inputs | {config, checked_data}, [config, problem, *fields], api_name=False
            )

        @handler(None)
        def one_dataset_changed(user, one):
            return gr.update(interactive=not one)

        one_dataset.change(one_dataset_changed, one_dataset, pref_data, api_name=False)

        @handler(None)  # viewing: a signed-out visitor sees "Sign in to see your comparisons."
        def refresh(user, comparison_id, known_choices, shown_version):
            view = list(refresh_view(ctx, comparison_id, known_choices, shown_version, user.owner, user.token))
            loss, metrics, report_json = view[4], view[5], view[7]
            if isinstance(report_json, str | type(None)):  # output boxes are shown once they have content
                view[7] = gr.update(visible=bool(report_json), value=report_json)
            drawn = [v for v in (loss, metrics) if isinstance(v, str | type(None))]
            return *view, gr.update(visible=any(drawn)) if drawn else gr.skip()

        outputs = [
            picker,
            known,
            arms_md,
            report_top,
            loss_img,
            metrics_img,
            report_bottom,
            report_file,
            report_version,
        ]
        outputs.append(figures)
        inputs = [picker, known, report_version]
        timer.tick(refresh, inputs, outputs, api_name=False, show_progress="hidden")
        picker.change(refresh, inputs, outputs, api_name=False, show_progress="hidden")

        @handler("start comparisons", launch=True)
        def start_clicked(user, text):
            try:
                started = start_comparison(ctx, text, user.owner, user.token, user.profile)
            except StudioError as exc:
                raise ui_error(exc) from None
            runs = ", ".join(f"{ARM_LABELS.get(a, a)} {i}" for a, i in started["runs"].items())
            choices = list_comparisons(ctx, user.owner)
            return (
                shown(f"Comparison {started['comparison_id']} queued: {runs or 'no new runs'} (also on the Runs tab)."),
                gr.update(choices=choices, value=started["comparison_id"]),
                [list(c) for c in choices],
            )

        start.click(hide, None, info, api_name=False).then(
            start_clicked, [config], [info, picker, known], api_name=False
        )

        @handler("rebuild reports", launch=True)
        def rebuild_clicked(user, comparison_id):
            return shown(rebuild_report(ctx, comparison_id, user.owner, user.token, user.profile))

        rebuild.click(hide, None, info, api_name=False).then(rebuild_clicked, [picker], info, api_name=False)
        _api(ctx)  # inside the Tab: gr.Tabs takes only Tab children
    return {"config": config, "start": start, "picker": picker, "arms": arms_md, "report": report_top}


def _api(ctx: AppContext):
    @handler("start comparisons", launch=True)
    def start_comparison_api(user, config_yaml: str) -> dict:
        """Queue a comparison (comparison YAML); returns {"comparison_id", "runs": {arm: run id}}."""
        return start_comparison(ctx, config_yaml, user.owner, user.token, user.profile)

    @handler("see your comparisons")
    def comparison_status_api(user, comparison_id: str) -> dict:
        """Each arm's status; the report (Markdown without images, report_json) once every arm has finished."""
        return comparison_status(ctx, comparison_id, user.owner, user.token)

    gr.api(start_comparison_api, api_name=api_names.START_COMPARISON)
    gr.api(comparison_status_api, api_name=api_names.COMPARISON_STATUS)
