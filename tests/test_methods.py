"""Every method of the table (trainers/methods.py) goes the whole way: config -> doctor -> 2-step train ->
estimate -> model card -> UI choices.  A new method gets this test by being added to the table and shipping an
offline demo recipe, templates/recipes/demo-<name>.yaml."""

import dataclasses
import json

import pytest
from helpers import RECIPES, ROOT, train

from core.runfolder import RunFolder
from trainers import config as config_mod
from trainers import methods


def test_the_table_is_consistent():
    assert methods.names() and len(set(methods.names())) == len(methods.names())
    for arm, label in methods.arms().items():
        assert label and all(stage in methods.METHODS for stage in methods.stages(arm))
    assert tuple(methods.names()) == config_mod.METHODS
    with pytest.raises(KeyError, match="choose one of"):
        methods.get("nope")


@pytest.mark.parametrize("name", methods.names())
def test_method_end_to_end(name, home, tmp_path, capsys, monkeypatch, fake_hub_env):
    from hub.model_card import render
    from trainers.doctor_cli import main as doctor_main
    from trainers.estimate import estimate

    method = methods.get(name)
    recipe = RECIPES / f"demo-{name}.yaml"
    assert recipe.is_file(), f"every method ships an offline demo recipe ({recipe.name})"
    monkeypatch.chdir(ROOT)  # the recipes name the demo data relative to the repo root

    # config: the method's defaults fill what the recipe leaves out, and its TRL config class checks the keys
    cfg = config_mod.load(str(recipe), [])
    assert cfg.method == name
    written = config_mod.read_yaml(recipe).get("training") or {}
    for key, value in method.defaults.items():
        assert cfg.training[key] == written.get(key, value), key
    assert {f.name for f in dataclasses.fields(method.config_cls())} >= set(cfg.training)

    # doctor: the demo data is the kind the method trains on
    capsys.readouterr()
    assert doctor_main(["doctor", cfg.data.source, "--method", name, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["trainable"] and report["reports"][0]["rows"] > 0

    # 2-step train: the run folder holds what the contract says
    run_dir = tmp_path / "run"
    overrides = ["training.max_steps=2", "training.logging_steps=1", "training.save_steps=2", "data.eval_source=null"]
    assert train(recipe, run_dir, *overrides) == 0
    folder = RunFolder(run_dir)
    summary = folder.summary()
    assert summary.succeeded and summary.method == name and summary.global_step == 2
    assert folder.adapter() == folder.adapter_path and (folder.adapter_path / "adapter_config.json").is_file()
    rows = [r for r in folder.metrics() if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2]
    for key in method.charted:  # the charts the Runs tab draws for this method have data
        assert all(key in r for r in rows), key

    # estimate: the method's factors are used
    est = estimate(cfg, rows=100, tokens_per_row=64)
    assert est["method"] == name and est["peak_memory_gb"] > 0

    # model card: the method's tags, trainer and line
    card = render(run_dir, "alice/demo")
    assert set(method.card_tags) <= set(card.data.tags)
    assert method.trainer_name in card.text and method.card_line in card.text

    # Hub: pushed to the (loopback fake) Hub with a card that loads and names the method
    from fakehub.fixture import ALICE
    from huggingface_hub import ModelCard

    from hub.__main__ import main as hub_main

    monkeypatch.setenv("HF_TOKEN", ALICE)
    capsys.readouterr()
    assert hub_main(["push", str(run_dir), "--repo-id", f"alice/demo-{name}"]) == 0, capsys.readouterr()
    pushed = ModelCard.load(f"alice/demo-{name}")
    assert set(method.card_tags) <= set(pushed.data.tags) and method.trainer_name in pushed.text

    # UI: the radios and the comparison arms offer it
    assert (method.label, name) in methods.choices()
    assert name in methods.arms() or not method.arm


def test_run_folder_reads_are_tolerant_and_writes_are_rank_0(tmp_path, monkeypatch):
    """The run-folder contract every method's run is read through (core/runfolder.py)."""
    folder = RunFolder(tmp_path)
    assert folder.summary().status == "missing" and folder.metrics() == [] and folder.log_tail() == ""
    folder.summary_path.write_text('{"status": "succ')  # a reader racing a writer that is not atomic
    assert folder.summary().status == "missing"
    folder.write_summary({"status": "succeeded", "method": "sft", "peak_rss_mb": 12.5})
    summary = folder.summary()
    assert summary.succeeded and summary.peak_memory_kind == "RSS" and summary["peak_rss_mb"] == 12.5
    assert not list(tmp_path.glob("*.tmp"))
    folder.write_metrics([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}])
    with open(folder.metrics_path, "a") as f:
        f.write('{"step": 3, "lo')  # a killed process's half line
    assert [r["step"] for r in folder.metrics()] == [1, 2]
    rows, offset = folder.metrics_since(after_step=1)
    assert [r["step"] for r in rows] == [2] and folder.metrics_since(offset=offset) == ([], offset)
    monkeypatch.setenv("RANK", "1")  # another rank of a launcher writes nothing
    folder.write_summary({"status": "failed"})
    assert folder.summary().succeeded
    assert folder.adapter() is None
    (tmp_path / "adapter").mkdir()
    assert folder.adapter() == tmp_path / "adapter"
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert RunFolder(model).adapter() == model
