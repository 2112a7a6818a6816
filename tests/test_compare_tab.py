"""The Compare tab's handlers (no browser): queueing the arms of a comparison, owner isolation, one-sentence
errors, and the report built by a `python -m evaluation report` child and rendered in the tab."""

import json
import time
from pathlib import Path

import gradio as gr
import pytest
import yaml
from helpers import PLANTED_TOKEN, RECIPES

import app
from core.errors import StudioError
from evaluation import compare
from jobs import comparisons
from jobs.runner import Worker
from ui import api_names, compare_tab
from ui.context import DEMO_DPO, DEMO_SFT, AppContext

DEMO = (RECIPES / "demo-compare.yaml").read_text()


@pytest.fixture
def ctx(home):
    return AppContext(home=home, worker=Worker(home, poll_s=0.2), online=False)


def run_config(ctx, run_id):
    return yaml.safe_load((ctx.home / "runs" / run_id / "config.yaml").read_text())


def form(arms, one_dataset=False, existing=""):
    rates = {"sft": 5e-3, "dpo": 6e-4}
    return compare_tab.CompareForm(
        "demo-tiny", str(DEMO_SFT), str(DEMO_DPO), one_dataset, arms, 8, 4, rates, 128, existing
    ).to_yaml()


def test_start_queues_every_arm_on_the_same_base_peft_and_seed(ctx):
    started = compare_tab.start_comparison(ctx, DEMO, "local", None)
    runs = started["runs"]
    assert list(runs) == ["sft", "dpo", "sft_dpo", "reward"]  # the demo's reward-model judge is trained here too
    queued = {run.id: run for run in ctx.queue.list("local")}
    assert set(queued) == set(runs.values()) and all(run.status == "queued" for run in queued.values())
    assert [queued[runs[arm]].seq for arm in runs] == sorted(r.seq for r in queued.values())
    configs = {arm: run_config(ctx, run_id) for arm, run_id in runs.items()}
    assert [c["method"] for c in configs.values()] == ["sft", "dpo", "dpo", "reward"]
    for key in ("model", "peft"):
        assert configs["sft"][key] == configs["dpo"][key] == configs["sft_dpo"][key]
    assert {c["training"]["seed"] for c in configs.values()} == {c["data"]["seed"] for c in configs.values()} == {42}
    assert configs["sft_dpo"]["init_from"] == queued[runs["sft"]].run_dir == str(ctx.home / "runs" / runs["sft"])
    assert configs["sft"]["init_from"] is None and configs["dpo"]["init_from"] is None
    assert configs["sft"]["data"]["source"] == str(DEMO_SFT)  # relative recipe paths anchored at the repo root

    folder = ctx.home / "comparisons" / started["comparison_id"]
    assert json.loads((folder / "arms.json").read_text()) == {arm: queued[i].run_dir for arm, i in runs.items()}
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["owner"] == "local" and meta["run_ids"] == runs
    arms = compare.validate(yaml.safe_load((folder / "comparison.yaml").read_text()))["arms"]
    assert arms == ["prompting", "sft", "dpo", "sft_dpo"]  # prompting trains nothing: it is scored, not queued

    status = compare_tab.comparison_status(ctx, started["comparison_id"], "local")
    assert [a["status"] for a in status["arms"].values()] == ["queued"] * 4
    assert status["report"] == "waiting" and not (folder / "report.started").exists()  # not before the arms end
    assert compare_tab.list_comparisons(ctx, "local")[0][1] == started["comparison_id"]


def test_a_subset_of_arms_and_existing_runs(ctx):
    only = compare_tab.start_comparison(ctx, form(["sft_dpo"]), "local", None)["runs"]
    assert list(only) == ["sft", "sft_dpo"]  # SFT→DPO needs its SFT stage
    assert run_config(ctx, only["sft_dpo"])["init_from"] == str(ctx.home / "runs" / only["sft"])
    started = compare_tab.start_comparison(ctx, form(["dpo"], one_dataset=True, existing=only["sft"]), "local", None)
    assert list(started["runs"]) == ["dpo"]
    assert run_config(ctx, started["runs"]["dpo"])["data"]["source"] == str(DEMO_SFT)  # one dataset for both
    folder = ctx.home / "comparisons" / started["comparison_id"]
    cfg = yaml.safe_load((folder / "comparison.yaml").read_text())
    assert cfg["existing"] == {only["sft"]: str(ctx.home / "runs" / only["sft"])}
    status = compare_tab.comparison_status(ctx, started["comparison_id"], "local")
    assert set(status["arms"]) == {"dpo", only["sft"]} and status["arms"][only["sft"]]["run_id"] == only["sft"]
    assert len(ctx.queue.list("local")) == 3


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("model: [", "not valid YAML at line 1"),
        ("", "is empty"),
        ("- a list", "is a mapping"),
        (DEMO.replace("arms: [prompting, sft, dpo, sft_dpo]", "arms: [sft, ppo]"), "Unknown arms"),
        (DEMO.replace("model: {name_or_path: demo-tiny}", ""), "needs model"),
        (DEMO + "\nbogus: 1\n", "Unknown comparison keys"),
        (DEMO.replace("learning_rate: 5.0e-3", "learning_rate: -1"), "must be greater than 0"),
        (DEMO.replace("arms: [prompting, sft, dpo, sft_dpo]", "arms: []"), "at least one arm"),
        (DEMO + "\nexisting: {old: nope-123}\n", "not one of your runs"),
    ],
)
def test_bad_configs_are_one_sentence_and_queue_nothing(ctx, text, sentence):
    with pytest.raises(StudioError, match=sentence) as err:
        compare_tab.start_comparison(ctx, text, "local", None)
    message = compare_tab.as_gr_error(err.value).message
    assert "\n" not in message and "Traceback" not in message
    assert ctx.queue.list("local") == [] and compare_tab.list_comparisons(ctx, "local") == []
    assert not (ctx.home / "comparisons").exists() or not any((ctx.home / "comparisons").iterdir())


def test_each_user_sees_only_their_own_comparisons(ctx):
    alice = compare_tab.start_comparison(ctx, form(["sft"]), "alice", None)
    with pytest.raises(StudioError, match="no comparison"):
        compare_tab.comparison_status(ctx, alice["comparison_id"], "bob")
    with pytest.raises(StudioError, match="Sign in"):
        compare_tab.comparison_status(ctx, alice["comparison_id"], None)
    with pytest.raises(StudioError, match="Sign in"):
        compare_tab.start_comparison(ctx, form(["sft"]), None, None)
    with pytest.raises(StudioError, match="no comparison"):
        compare_tab.comparison_status(ctx, "../runs", "alice")
    with pytest.raises(StudioError, match="no comparison"):
        compare_tab.rebuild_report(ctx, alice["comparison_id"], "bob", None)
    with pytest.raises(StudioError, match="not one of your runs"):  # bob cannot add alice's run to his comparison
        compare_tab.start_comparison(ctx, form(["sft"], existing=alice["runs"]["sft"]), "bob", None)
    assert compare_tab.list_comparisons(ctx, "bob") == []
    assert [c[1] for c in compare_tab.list_comparisons(ctx, "alice")] == [alice["comparison_id"]]
    view = compare_tab.refresh_view(ctx, alice["comparison_id"], None, None, "bob", None)
    assert view[1] == [] and "no comparison" in view[2]


def test_a_failed_sft_arm_cancels_its_dpo_stage_and_does_not_block_the_report(ctx, monkeypatch):
    started = compare_tab.start_comparison(ctx, form(["sft", "sft_dpo"]), "local", None)
    sft, sft_dpo = started["runs"]["sft"], started["runs"]["sft_dpo"]
    ctx.queue.store.update(sft, "local", status="failed", error="The GPU ran out of memory: lower the batch size.")
    launched = []

    def fake_launch(ctx_, folder, token):
        launched.append(folder)
        (folder / "report.started").write_text(json.dumps({"pid": None, "started_at": time.time()}))

    monkeypatch.setattr(comparisons, "launch_report", fake_launch)
    status = compare_tab.comparison_status(ctx, started["comparison_id"], "local", "hf_user")
    assert ctx.queue.get(sft_dpo, "local").status == "cancelled"
    assert status["arms"]["sft"]["error"].startswith("The GPU ran out of memory")
    assert status["all_finished"] and status["report"] == "running" and len(launched) == 1
    assert compare_tab.comparison_status(ctx, started["comparison_id"], "local")["report"] == "running"
    assert len(launched) == 1  # launched once, not on every poll
    assert "failed" in compare_tab.arms_markdown(status)


def test_the_app_exposes_the_comparison_endpoints(ctx):
    demo = app.build(ctx)
    names = {fn.api_name for fn in demo.fns.values()}
    assert {api_names.START_COMPARISON, api_names.COMPARISON_STATUS} <= names


def test_report_is_built_by_a_child_and_rendered_in_the_tab(ctx, sft_then_dpo, tmp_path):
    """Existing finished runs stand in for trained arms (no training here); the DPO arm failed."""
    sft_dir, dpo_dir = sft_then_dpo
    failed = tmp_path / "failed-dpo"
    failed.mkdir()
    oom = "The GPU ran out of memory: lower the batch size or max_length, or use QLoRA."
    (failed / "summary.json").write_text(json.dumps({"status": "failed", "error": oom}))
    folder = ctx.home / "comparisons" / "e2e-report"
    folder.mkdir(parents=True)
    cfg = compare.validate(comparisons._anchor_paths(yaml.safe_load(DEMO)))
    (folder / "comparison.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    arms = {"sft": str(sft_dir), "dpo": str(failed), "sft_dpo": str(dpo_dir)}
    (folder / "arms.json").write_text(json.dumps(arms))
    comparisons.write_meta(folder, "local", title="test")

    start = time.time()
    view = compare_tab.refresh_view(ctx, "e2e-report", None, None, "local", PLANTED_TOKEN)
    assert "Building the report" in view[2] and (folder / "report.started").exists()
    while "Report ready" not in view[2]:
        assert time.time() - start < 180, (folder / "report.log").read_text()
        assert "report failed" not in view[2].lower(), view[2]
        time.sleep(1)
        view = compare_tab.refresh_view(ctx, "e2e-report", view[1], view[8], "local", PLANTED_TOKEN)
    print(f"report built in {time.time() - start:.1f} s")
    _, choices, arms_md, top, loss_png, metrics_png, bottom, report_json, shown = view
    assert choices == [["e2e-report — test", "e2e-report"]]
    assert "| SFT→DPO |" in arms_md and "| DPO | — | failed |" in arms_md
    assert "held-out NLL" in top and "| base (no training) |" in top and "| SFT |" in top and "| SFT→DPO |" in top
    assert f"| DPO | failed: {oom}" in top
    assert "![" not in top + bottom and "Greedy generations" in bottom
    for png in (loss_png, metrics_png):
        assert png.endswith(".png") and Path(png).is_file() and Path(png).read_bytes()[:4] == b"\x89PNG"
    assert json.loads(Path(report_json).read_text())["arms"]["dpo"]["status"] == "failed"
    status = compare_tab.comparison_status(ctx, "e2e-report", "local")
    assert status["images"] == {"loss_curves": str(folder / "loss_curves.png"), "metrics": str(folder / "metrics.png")}
    again = compare_tab.refresh_view(ctx, "e2e-report", choices, shown, "local", None)
    assert list(again[3:]) == [gr.skip()] * 6 and again[0] == gr.skip()  # unchanged: the page keeps what it shows
    assert PLANTED_TOKEN not in (folder / "report.log").read_text()
