"""The Train and Compare tabs' form and YAML as one truth (handlers, no browser): a form change writes into the
YAML shown and keeps what the form does not show; a YAML edit fills the form; Start refuses data its method cannot
train before anything is queued; the Data tab's checked dataset fills both; failures name the page's fields."""

import dataclasses

import pytest
import yaml

import app
from core.errors import StudioError
from data.formats import PREFERENCE
from jobs.runner import Worker
from ui import compare_tab, errors, train_form, train_tab
from ui.context import DEMO_DPO, DEMO_SFT, AppContext


@pytest.fixture
def ctx(home):
    return AppContext(home=home, worker=Worker(home, poll_s=0.2), online=False)


def form(**changes) -> train_form.TrainForm:
    base = train_form.TrainForm("sft_dpo", "demo-tiny", "LoRA", str(DEMO_SFT), str(DEMO_DPO), 5e-3, 1, 20, 8, 128, 16)
    return dataclasses.replace(base, **changes)


def test_a_form_change_keeps_hand_added_keys_and_the_second_document():
    docs = list(yaml.safe_load_all(form().to_yaml()))
    docs[0]["training"]["warmup_steps"] = 5  # a TRL option the form does not show
    docs[0]["data"]["columns"] = {"messages": "conversation"}
    docs[1]["training"]["beta"] = 0.3  # the second stage's own setting
    text = yaml.safe_dump_all(docs, sort_keys=False)

    merged = list(yaml.safe_load_all(train_form.merge_form(text, form(batch=4, max_steps=30))))
    assert [d["method"] for d in merged] == ["sft", "dpo"]
    assert [d["training"]["per_device_train_batch_size"] for d in merged] == [4, 4]
    assert [d["training"]["max_steps"] for d in merged] == [30, 30]
    assert merged[0]["training"]["warmup_steps"] == 5 and merged[1]["training"]["beta"] == 0.3
    assert merged[0]["data"]["columns"] == {"messages": "conversation"}
    assert merged[1]["init_from"] == "previous"

    # another data file: the columns of the old one do not follow it; epochs instead of steps
    other = list(yaml.safe_load_all(train_form.merge_form(text, form(data_source="mine.jsonl", max_steps=0))))
    assert other[0]["data"] == {"source": "mine.jsonl", "eval_size": docs[0]["data"]["eval_size"]}
    assert "max_steps" not in other[0]["training"] and other[0]["training"]["num_train_epochs"] == 1
    # one stage picked: the DPO document goes, the SFT one keeps its own keys
    single = list(yaml.safe_load_all(train_form.merge_form(text, form(method="sft"))))
    assert [d["method"] for d in single] == ["sft"] and single[0]["training"]["warmup_steps"] == 5


def test_a_broken_yaml_is_not_overwritten_by_the_form():
    with pytest.raises(StudioError, match="not valid YAML"):
        train_form.merge_form("method: [", form())


def test_a_yaml_edit_fills_the_form_fields_it_covers():
    docs = list(yaml.safe_load_all(form().to_yaml()))
    docs[0]["training"].update(learning_rate=1e-3, per_device_train_batch_size=2, max_length=256)
    docs[0]["model"]["quantization"] = "4bit"
    docs[1]["data"]["source"] = "prefs.jsonl"
    docs[1]["training"]["loss_type"] = ["ipo"]
    values, problem = train_form.yaml_edited(yaml.safe_dump_all(docs, sort_keys=False))
    assert problem == ""
    assert values["method"] == "sft_dpo" and values["peft_kind"] == "QLoRA 4-bit"
    assert (values["lr"], values["batch"], values["max_length"], values["max_steps"]) == (1e-3, 2, 256, 20)
    assert values["pref_source"] == "prefs.jsonl" and values["dpo_loss"] == "ipo"

    half_typed, problem = train_form.yaml_edited(
        "method: sft\nmodel: {name_or_path: demo-tiny}\ndata: {source: x.jsonl}\ntraining: {learning_rate: -1}"
    )
    assert half_typed["model"] == "demo-tiny" and "greater than 0" in problem and "\n" not in problem
    assert train_form.yaml_edited("method: [")[0] == {} and "not valid YAML" in train_form.yaml_edited("method: [")[1]


def test_dpo_on_sft_data_is_refused_at_start_and_nothing_is_queued(ctx):
    dpo_on_sft = form(method="dpo", pref_source=str(DEMO_SFT)).to_yaml()
    with pytest.raises(StudioError) as err:
        train_tab.submit_run(ctx, dpo_on_sft, "local", None)
    sentence = str(err.value)
    assert sentence.startswith("'DPO/") and "preference data' does not suit DPO" in sentence
    assert "instruction data" in sentence and "\n" not in sentence
    # the page's words: the method is picked in the Method radio
    assert "pick SFT as 'Method'" in errors.in_ui_words(sentence)
    # a chain: the later stage is checked too, before its first stage is queued
    with pytest.raises(StudioError, match=r"stage 2 of 2"):
        train_tab.submit_run(ctx, form(pref_source=str(DEMO_SFT)).to_yaml(), "local", None)
    assert ctx.queue.list("local") == []


def test_the_summary_line_counts_what_the_doctor_keeps(ctx):
    line = train_tab.run_summary(ctx, form(method="sft").to_yaml(), "local")
    rows = int(line.split(" rows")[0].replace(",", ""))
    assert 0 < rows < 240 and "held out" in line and "tokens per epoch" in line and "20 steps" in line
    assert "effective batch 8" in line and "assistant replies" in line and "GB" in line
    hub = train_tab.run_summary(ctx, form(method="sft", data_source="trl-lib/Capybara").to_yaml(), "local")
    assert "counted when the run starts" in hub and "trl-lib/Capybara" in hub
    assert train_tab.live_summary(ctx, "", "local").startswith("Not ready to start: The config is empty")


def test_a_checked_dataset_fills_the_form_and_the_yaml():
    checked = {
        "source": "prefs.jsonl",
        "subset": None,
        "split": "train",
        "columns": {"chosen": "good", "rejected": "bad"},
        "kind": PREFERENCE,
        "method": "dpo",
    }
    text, new = train_form.apply_checked(checked, form(method="sft").to_yaml(), form(method="sft"))
    assert new.method == "dpo" and new.pref_source == "prefs.jsonl" and new.lr == train_form.form_lr("dpo", False)
    (doc,) = yaml.safe_load_all(text)
    assert doc["method"] == "dpo"
    assert doc["data"]["source"] == "prefs.jsonl" and doc["data"]["columns"] == {"chosen": "good", "rejected": "bad"}
    # SFT→DPO already trains on preference data: the method stays, only its DPO stage gets the data
    text, new = train_form.apply_checked(checked, form().to_yaml(), form())
    sft, dpo = yaml.safe_load_all(text)
    assert new.method == "sft_dpo" and sft["data"]["source"] == str(DEMO_SFT) and dpo["data"]["split"] == "train"

    cfg = yaml.safe_load(compare_tab.apply_checked(checked, compare_tab.demo_yaml(), compare_form()))
    assert cfg["preference_data"]["source"] == "prefs.jsonl" and cfg["preference_data"]["columns"]["chosen"] == "good"
    assert cfg["prompting"] == {"examples": 3}  # the recipe's own keys survive


def compare_form(**changes):
    said = compare_tab.form_values(yaml.safe_load(compare_tab.demo_yaml()))
    base = compare_tab.CompareForm.defaults("demo-tiny", True)
    fields = {k: v for k, v in said.items() if k != "learning_rates"}
    base = dataclasses.replace(base, **fields, learning_rates={**base.learning_rates, **said["learning_rates"]})
    return dataclasses.replace(base, **changes)


def test_the_compare_form_writes_only_what_changed_into_its_yaml():
    cfg = yaml.safe_load(compare_tab.merge_form(compare_tab.demo_yaml(), compare_form(rank=8)))
    assert cfg["peft"]["r"] == 8 and cfg["prompting"] == {"examples": 3} and cfg["evaluation"]["generations"] == 40
    assert cfg["sft_training"]["max_steps"] == 400 and cfg["dpo_training"]["beta"] == 0.1  # untouched
    stepped = yaml.safe_load(compare_tab.merge_form(compare_tab.demo_yaml(), compare_form(steps=50)))
    assert stepped["training"]["max_steps"] == 50 and "max_steps" not in stepped["sft_training"]
    assert compare_tab.form_values(stepped)["steps"] == 50
    assert compare_tab.config_problem(compare_tab.demo_yaml() + "\nbogus: 1\n").startswith("Unknown comparison keys")


def test_failures_name_the_pages_fields_and_clear_stale_outputs(ctx):
    message = errors.ui_error(StudioError("--push-to needs NAMESPACE/NAME: the Job's disk is gone when it ends."))
    assert str(message).startswith("'Push the adapter to' needs NAMESPACE/NAME")
    demo = app.build(ctx)
    blocks = {b._id: b for b in demo.blocks.values()}
    labels = {"Equivalent command", "Pre-flight estimate"}
    outputs = [b for b in blocks.values() if getattr(b, "label", None) in labels]
    assert len(outputs) == 2 and not any(b.visible for b in outputs)  # hidden until they have content
    for box in outputs:  # the button's first step hides the old content; the action then shows the new one
        hides = [f for f in demo.fns.values() if f.name == "hide" and [o._id for o in f.outputs] == [box._id]]
        assert hides and all(event == "click" for _, event in hides[0].targets)


def test_on_a_shared_space_the_path_rules_come_before_the_data_check(ctx, monkeypatch):
    """Nobody learns what is in another user's file from the doctor's sentence: the path is refused first."""
    from jobs import access

    monkeypatch.setenv("STUDIO_MULTI_USER", "1")
    bobs = access.uploads_dir(ctx.home, "bob") / "sft.jsonl"
    bobs.parent.mkdir(parents=True, exist_ok=True)
    bobs.write_text(DEMO_SFT.read_text())
    text = form(method="dpo", pref_source=str(bobs)).to_yaml()
    for attempt in (
        lambda: train_tab.submit_run(ctx, text, "alice", None),
        lambda: train_tab.run_summary(ctx, text, "alice"),
    ):
        with pytest.raises(StudioError) as err:
            attempt()
        assert str(err.value) == access.LOCAL_ONLY
    assert ctx.queue.list("alice") == []


def test_a_hub_dataset_of_the_wrong_kind_is_refused_from_its_first_rows(ctx, monkeypatch):
    """Online, Start streams a Hub dataset's first rows (never the whole set) and the doctor checks their kind."""
    import datasets

    from data import sources

    streamed = []

    def fake_stream(source, name=None, split="train", revision=None, streaming=False, token=None):
        assert streaming, "the whole dataset was asked for"
        streamed.append((source, token))
        return iter([{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
                     for i in range(1000)])  # fmt: skip

    monkeypatch.setattr(sources, "hub_reachable", lambda *a, **k: True)
    monkeypatch.setattr(datasets, "load_dataset", fake_stream)
    online = dataclasses.replace(ctx, online=True)
    with pytest.raises(StudioError, match="does not suit DPO — DPO needs preference pairs"):
        train_tab.submit_run(online, form(method="dpo", pref_source="org/chats").to_yaml(), "local", "hf_user")
    assert streamed == [("org/chats", "hf_user")] and ctx.queue.list("local") == []


def test_fit_to_a_tier_changes_only_what_it_must_and_says_why():
    from trainers import config as config_mod

    text = train_form.TrainForm(
        method="sft_dpo",
        model="demo-tiny",
        peft_kind="LoRA",
        data_source=str(DEMO_SFT),
        pref_source=str(DEMO_DPO),
        lr=1e-3,
        epochs=1,
        max_steps=50,
        batch=64,
        max_length=4096,
        r=8,
    ).to_yaml()
    text = text.replace("  max_steps: 50\n", "  max_steps: 50\n  warmup_steps: 3\n", 1)  # a hand-added option
    fitted, notes = train_tab.fit_yaml(text, "cpu-basic")
    sft, dpo = yaml.safe_load_all(fitted)
    assert sft["training"]["per_device_train_batch_size"] == 64 and "autofit" not in sft  # it fitted: untouched
    assert sft["training"]["warmup_steps"] == 3
    batch, accum = dpo["training"]["per_device_train_batch_size"], dpo["training"]["gradient_accumulation_steps"]
    assert batch < 64 and batch * accum == 64, "the effective batch is kept"
    assert dpo["init_from"] == "previous" and dpo["autofit"][0] == "target cpu-basic"
    assert "same effective batch 64" in notes and "Stage 2 (DPO)" in notes
    for doc in (sft, dpo):
        config_mod.from_dict({k: v for k, v in doc.items() if k != "init_from"})  # still a valid RunConfig
    values, problem = train_form.yaml_edited(fitted)
    assert problem == "" and values["batch"] == 64  # the form shows the first stage's batch
