"""Train tab: method, model, PEFT kind and the main numbers as real inputs; a YAML editor for the rest."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import gradio as gr
import yaml

from core import settings
from core.errors import StudioError, user_message
from data.formats import INSTRUCTION, PREFERENCE, PROMPTS, UNPAIRED
from jobs import access, precheck
from jobs.chain import PREVIOUS
from jobs.probe import check_on_this_hardware
from trainers import autofit, hf_jobs, methods
from trainers import config as config_mod
from trainers import estimate as estimator
from ui import api_names, auth
from ui.boxes import hide, problem_update, shown
from ui.context import AppContext
from ui.errors import in_ui_words, ui_error
from ui.handlers import handler, sign_in_sentence
from ui.train_form import (
    DPO_LOSSES,
    FIELDS,
    METHODS,
    PEFT_KINDS,
    REWARD_CHOICES,
    SOURCE_LABELS,
    TrainForm,
    apply_checked,
    config_problem,
    form_lr,
    gpu_count,
    initial_form,
    launch_profiles,
    merge_form,
    method_notes,
    parse_yaml,
    preset_yaml,
    yaml_edited,
)


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
        words += f", ~{estimator.hours_text(tier['hours_per_epoch'])} per epoch on {tier['name']}"
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


FIT_TARGETS = [("this machine", "this")] + [(t["name"], t["name"]) for t in estimator.tiers()]


def fit_yaml(text: str, target_name: str) -> tuple[str, str]:
    """(the config fitted to a target, what changed and why as Markdown): every document is fitted
    (trainers.autofit: the largest per-device batch keeping the effective batch, then activation checkpointing, else
    suggestions) and keeps its `autofit:` notes, so the run's config.yaml says what was changed."""
    docs = parse_yaml(text)
    lines, fitted = [], []
    for i, doc in enumerate(docs):
        raw = {k: v for k, v in doc.items() if k != "init_from"}
        before = config_mod.from_dict(copy.deepcopy(raw)).to_dict()
        after, fits, changes = autofit.fit_raw(raw, tier=target_name)
        out = copy.deepcopy(doc)  # only what auto-fit changed is written into the document shown
        for section, values in after.items():
            if isinstance(values, dict) and isinstance(before.get(section), dict):
                changed = {
                    k: v
                    for k, v in values.items()
                    if before[section].get(k) != v and (k in before[section] or v not in (None, False))
                }
                if changed:
                    out[section] = {**(out.get(section) or {}), **changed}
        if any(before.get(k) != after.get(k) for k in after if k != "autofit"):
            out["autofit"] = after.get("autofit")
        fitted.append(out)
        stage = f"Stage {i + 1} ({methods.get(doc.get('method', 'sft')).label}): " if len(docs) > 1 else ""
        verdict = "fits" if fits else "does not fit even so"
        lines.append(f"{stage}**{verdict}** on {target_name}" + "".join(f"\n- {c}" for c in changes))
    return yaml.safe_dump_all(fitted, sort_keys=False, allow_unicode=True), "\n\n".join(lines)


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
        with gr.Accordion("Check on this hardware, or fit the config to a GPU", open=False):
            with gr.Row():
                probe_steps = gr.Number(10, label="Optimizer steps to measure", precision=0, minimum=1, maximum=100)
                probe_btn = gr.Button("Check on this hardware")
                fit_target = gr.Dropdown(FIT_TARGETS, value="this", label="Fit to (Spaces tier / HF Jobs flavour)")
                fit_btn = gr.Button("Fit the config to it")
            probe_md = gr.Markdown(visible=False, elem_id="train-probe")
            fit_md = gr.Markdown(visible=False, elem_id="train-fit")
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

        @handler("check on this hardware", launch=True)  # it trains a few steps, in a child process
        def probe_clicked(user, text, steps, progress=gr.Progress()):  # noqa: B008 - gradio's progress idiom
            progress(0, desc="Training a few steps in a child process to measure memory and speed…")
            try:
                return shown(check_on_this_hardware(ctx.home, parse_yaml(text), user.owner, user.token, int(steps)))
            except StudioError as exc:
                raise ui_error(exc) from None

        probe_btn.click(hide, None, probe_md, api_name=False).then(
            probe_clicked, [config, probe_steps], probe_md, api_name=False
        )

        @handler("fit a config")
        def fit_clicked(user, text, target_name):
            try:
                fitted, notes = fit_yaml(text, target_name)
            except StudioError as exc:
                raise ui_error(exc) from None
            values, sentence = yaml_edited(fitted)
            return {
                config: fitted,
                **form_updates(values),
                problem: problem_update(sentence),
                fit_md: shown(notes),
            }

        fit_btn.click(hide, None, fit_md, api_name=False).then(
            fit_clicked, [config, fit_target], [config, *components, problem, fit_md], api_name=False
        )

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
