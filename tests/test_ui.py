"""The app's handlers (no browser) and the launched app driven by gradio_client."""

import dataclasses
import time

import gradio as gr
import pytest
import yaml
from gradio_client import Client
from helpers import RECIPES, ROOT

import app
from core.errors import StudioError
from jobs import status as run_state
from jobs.runner import Worker
from trainers import config as config_mod
from trainers import methods
from ui import api_names, auth, data_tab, playground_tab, runs_tab, train_form, train_tab
from ui.context import DEMO_DPO, DEMO_GRPO, DEMO_KTO, DEMO_SFT, AppContext

DEMO = (RECIPES / "demo-sft.yaml").read_text()
QUICK = DEMO.replace("max_steps: 200", "max_steps: 40").replace("logging_steps: 20", "logging_steps: 5")
assert "max_steps: 40\n" in QUICK and "learning_rate: 5.0e-3" in QUICK, "demo-sft.yaml changed: update QUICK"


@pytest.fixture
def ctx(home):
    worker = Worker(home, poll_s=0.2)
    return AppContext(home=home, worker=worker, online=False)


def profile(name):
    return gr.OAuthProfile({"preferred_username": name, "name": name.title(), "picture": "", "profile": ""})


@pytest.mark.parametrize("method", train_form.METHODS)
@pytest.mark.parametrize("peft_kind", list(train_form.PEFT_KINDS))
def test_form_builds_valid_configs(method, peft_kind):
    form = train_form.TrainForm(
        method, "demo-tiny", peft_kind, str(DEMO_SFT), str(DEMO_DPO), 5e-3, 1, 50, 8, 128, 16,
        feedback_source=str(DEMO_KTO), prompt_source=str(DEMO_GRPO), dpo_loss="ipo", rewards=("think_format",),
    )  # fmt: skip
    docs = list(yaml.safe_load_all(form.to_yaml()))
    assert [d["method"] for d in docs] == list(methods.stages(method))
    for doc in docs:
        doc = {**doc, "init_from": None}
        if peft_kind == "Full fine-tuning":
            assert doc["peft"]["type"] == "none"
        cfg = config_mod.from_dict(doc)
        assert cfg.training["max_steps"] == 50
        if cfg.method == "dpo":  # the advanced section's DPO loss variant reaches DPOConfig.loss_type
            assert cfg.training["loss_type"] == ["ipo"]
        if cfg.method == "grpo":
            assert [r["name"] for r in cfg.rewards] == ["think_format"]
    assert [d.get("init_from") for d in docs[1:]] == ["previous"] * (len(docs) - 1)


def test_form_defaults_are_the_engines():
    """Left alone, the form writes trainers.config's eval_size and each stage's learning rate."""
    lr = train_form.form_lr("sft_dpo", False)
    form = train_form.TrainForm("sft_dpo", "demo-tiny", "LoRA", str(DEMO_SFT), str(DEMO_DPO), lr, 1, 0, 8, 128, 8)
    for doc in yaml.safe_load_all(form.to_yaml()):
        engine = config_mod.from_dict({"method": doc["method"], "model": doc["model"], "data": {"source": "x"}})
        assert doc["data"]["eval_size"] == engine.data.eval_size
        assert doc["training"]["learning_rate"] == engine.training["learning_rate"]
    # the form's values in their order still work, and an arm's label names the same arm
    assert train_form.fields_to_yaml("SFT→DPO", *dataclasses.astuple(form)[1:]) == form.to_yaml()


def test_every_endpoint_is_named_in_api_names(ctx):
    names = {fn.api_name for fn in app.build(ctx).fns.values()}
    assert set(api_names.ALL) <= names and "compare" not in names


def test_bad_yaml_and_impossible_settings_are_one_sentence(ctx):
    with pytest.raises(StudioError, match="not valid YAML at line 1"):
        train_tab.submit_run(ctx, "method: [", "local", None)
    with pytest.raises(StudioError, match="is empty"):
        train_tab.submit_run(ctx, "", "local", None)
    impossible = QUICK.replace(
        "model: {name_or_path: demo-tiny}", "model: {name_or_path: demo-tiny, quantization: 4bit}"
    )
    impossible = impossible.replace("peft: {type: lora,", "peft: {type: none,")
    with pytest.raises(StudioError, match="needs an adapter"):
        train_tab.submit_run(ctx, impossible, "local", None)
    assert ctx.queue.list("local") == []  # nothing queued by a failed submit


def test_space_visitors_must_sign_in_and_allowlist_applies(monkeypatch):
    monkeypatch.setenv("SPACE_ID", "org/studio")
    monkeypatch.setenv("OAUTH_CLIENT_ID", "x")
    assert auth.identity(None) == (None, None)
    assert "Sign in" in auth.may_launch(None)
    monkeypatch.setenv("STUDIO_ALLOWED_USERS", "alice, acme")
    assert auth.may_launch("alice") is None
    assert auth.may_launch("carol", {"orgs": [{"name": "acme"}]}) is None
    assert "only lets" in auth.may_launch("bob", {"orgs": []})
    owner, token = auth.identity(profile("alice"), gr.OAuthToken(token="hf_user", scope="", expires_at=0))
    assert (owner, token) == ("alice", "hf_user")
    assert auth.identity(profile("alice"), gr.OAuthToken(token=auth.MOCK_TOKEN, scope="", expires_at=0))[1] != (
        auth.MOCK_TOKEN
    )


def test_two_signed_in_users_see_only_their_own_runs(ctx):
    alice, _ = auth.identity(profile("alice"))
    bob, _ = auth.identity(profile("bob"))
    a = train_tab.submit_run(ctx, QUICK, alice, None)[0]
    b = train_tab.submit_run(ctx, QUICK, bob, None)[0]
    assert list(runs_tab.list_runs(ctx, alice)["run"]) == [a]
    assert list(runs_tab.list_runs(ctx, bob)["run"]) == [b]
    with pytest.raises(StudioError, match="no run"):
        run_state.run_status(ctx.queue, b, alice)
    with pytest.raises(StudioError, match="no run"):
        runs_tab.adapter_zip(ctx, a, bob)
    assert runs_tab.list_runs(ctx, None).empty


def test_sft_then_dpo_queues_two_linked_runs(ctx):
    text = train_form.TrainForm(
        "sft_dpo", "demo-tiny", "LoRA", str(DEMO_SFT), str(DEMO_DPO), 5e-3, 1, 4, 8, 128, 16
    ).to_yaml()
    sft_id, dpo_id = train_tab.submit_run(ctx, text, "local", None)
    dpo_config = yaml.safe_load((ctx.home / "runs" / dpo_id / "config.yaml").read_text())
    assert dpo_config["init_from"] == str(ctx.home / "runs" / sft_id)
    ctx.worker.run(until_empty=True)
    assert [ctx.queue.get(i, "local").status for i in (sft_id, dpo_id)] == ["succeeded", "succeeded"]
    status = run_state.run_status(ctx.queue, dpo_id, "local")
    assert status["progress"] == 1.0 and "rewards/margins" in status["latest"]
    view = runs_tab.run_view(ctx, dpo_id, "local")  # what the Runs tab draws
    assert len(view["train"].dropna()) and len(view["learning_rate"].dropna())
    assert view["method_keys"] == methods.get("dpo").charted
    assert all(len(view["per_metric"][k].dropna()) for k in view["method_keys"])
    assert runs_tab.adapter_zip(ctx, sft_id, "local").endswith(".zip")
    replies = list(playground_tab.compare(ctx, sft_id, "Please greet Ada.", 0.0, 8, "local"))
    base, tuned = replies[-1]
    assert len(replies) > 2 and base and tuned  # both streamed, token by token
    with pytest.raises(StudioError, match="neither one of your runs"):
        list(playground_tab.compare(ctx, sft_id, "hi", 0.0, 8, "someone-else"))


def test_data_check_previews_rows_under_the_chat_template(demo_model_dir):
    fmt, preview, report = data_tab.check_data(str(DEMO_SFT), None, "", "train", "sft", "demo-tiny", "")
    assert fmt.startswith("messages") and "<|im_start|>assistant" in preview and "verdict: trainable" in report
    fmt, _, report = data_tab.check_data(
        str(ROOT / "tests/fixtures/bad/wrong_columns.jsonl"),
        None,
        "",
        "train",
        "sft",
        "demo-tiny",
        "prompt=foo, completion=bar",
    )
    assert fmt.startswith("prompt_completion")
    with pytest.raises(StudioError, match="line 5 is not valid JSON"):
        data_tab.check_data(
            str(ROOT / "tests/fixtures/bad/broken_line.jsonl"), None, "", "train", "sft", "demo-tiny", ""
        )
    with pytest.raises(StudioError, match="should look like"):
        data_tab.parse_mapping("prompt question")


def test_estimate_counts_parameters_without_loading_weights(demo_model_dir):
    text = train_tab.estimate(QUICK)
    assert "Trainable parameters:** 233,472 of 504,288" in text and "GB" in text and "| l4x1 |" in text


@pytest.fixture
def launched(ctx):
    app.start_worker(ctx)
    demo = app.build(ctx)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo
    demo.close()


def test_client_submits_polls_and_survives_a_closed_client(launched, ctx):
    first = Client(launched.local_url, verbose=False)
    run_id = first.predict(QUICK, api_name="/" + api_names.SUBMIT_RUN)
    first.close()  # the browser tab goes away mid-run ...
    second = Client(launched.local_url, verbose=False)  # ... and a new one comes back later
    deadline = time.time() + 180
    while (status := second.predict(run_id, api_name="/" + api_names.RUN_STATUS))["status"] not in (
        "succeeded",
        "failed",
    ):
        assert time.time() < deadline
        time.sleep(0.5)
    assert status["status"] == "succeeded", status
    assert status["step"] == 40 and status["latest"]["loss"] > 0 and status["final_metrics"]["train_loss"] > 0
    with pytest.raises(Exception, match="not valid YAML"):
        second.predict("method: [", api_name="/" + api_names.SUBMIT_RUN)
    with pytest.raises(Exception, match="must be greater than 0"):
        second.predict(QUICK.replace("learning_rate: 5.0e-3", "learning_rate: -1"), api_name="/" + api_names.SUBMIT_RUN)
    with pytest.raises(Exception, match="no run"):
        second.predict("nope", api_name="/" + api_names.RUN_STATUS)
    with pytest.raises(Exception, match="already succeeded"):
        second.predict(run_id, api_name="/" + api_names.CANCEL_RUN)


def test_an_expected_refusal_is_one_console_line_and_an_unexpected_error_keeps_its_traceback(caplog):
    import logging

    from core.errors import StudioError
    from ui.errors import as_gr_error

    with caplog.at_level(logging.INFO, logger="ui"):
        refusal = as_gr_error(StudioError("The dataset's columns match no known format: map yours."))
    assert refusal.print_exception is False and refusal.message.startswith("The dataset's columns")
    assert [r.getMessage() for r in caplog.records] == [
        "refused: The dataset's columns match no known format: map yours."
    ]
    crash = as_gr_error(KeyError("boom"))
    assert crash.print_exception is True and "Traceback" not in crash.message
