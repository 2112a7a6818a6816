"""The Runs tab at the handler level, on run folders made by hand (no training): formatting, charts per method,
held-out points, the next-eval sentence, the readable log tail, overlay + config diff, default selection, queue
position, a finished run's summary, the empty state and two-step delete."""

import time

import gradio as gr
import pytest
import yaml
from helpers import RECIPES

from core.errors import StudioError
from core.runfolder import RunFolder
from jobs import monitor, status
from trainers import methods
from ui import fmt, runs_tab
from ui.context import AppContext

QUICK = yaml.safe_load((RECIPES / "demo-sft.yaml").read_text())
DPO = yaml.safe_load((RECIPES / "demo-dpo.yaml").read_text()) if (RECIPES / "demo-dpo.yaml").exists() else None


@pytest.fixture
def ctx(home):
    return AppContext(home=home, worker=None, online=False)  # no worker: runs stay as the test sets them


def make_run(ctx, owner="local", state="succeeded", metrics=(), summary=None, overrides=(), config=None):
    run_id = ctx.queue.submit(dict(config or QUICK), owner, overrides=list(overrides))
    folder = RunFolder(ctx.queue.get(run_id, owner).run_dir)
    if metrics:
        folder.write_metrics(list(metrics))
    if summary is not None:
        folder.write_summary(summary)
    if state != "queued":
        ctx.queue.store.update(run_id, owner, status=state, started_at=time.time() - 60)
    return run_id


def rows(n=3, every=20, **extra):
    return [
        {
            "step": every * (i + 1),
            "loss": 2.0 / (i + 1) + 0.123456789,
            "learning_rate": 5e-3,
            "time": time.time(),
            **extra,
        }
        for i in range(n)
    ]


def tab(ctx):
    """The Runs tab alone in a Blocks (the handlers are the app's; the rest of app.build is not needed)."""
    with gr.Blocks() as demo:
        runs_tab.build(ctx, gr.State(None))
    return demo


def handler_of(demo, name):
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)


def test_numbers_times_and_sizes_read_like_words(ctx):
    assert (fmt.number(1.7705320358276366), fmt.number(5e-3), fmt.number(123456.7)) == ("1.771", "0.005", "123,457")
    assert (fmt.duration(1329), fmt.duration(45), fmt.duration(5400)) == ("22 min", "45 s", "1 h 30 min")
    assert (fmt.size_mb(512.4), fmt.size_mb(1536)) == ("512 MB", "1.5 GB")
    run_id = make_run(ctx, state="running", metrics=[{"step": 20, "loss": 1.7705320358276366}])
    assert runs_tab.list_runs(ctx, "local").iloc[0]["loss"] == "1.771"
    state = {**status.run_status(ctx.queue, run_id, "local"), "eta_s": 1329.4}
    line = runs_tab.status_line(state)
    assert "about 22 min left" in line and f"step 20 of {QUICK['training']['max_steps']}" in line


def test_charts_come_from_the_runs_method(ctx):
    sft = make_run(ctx, metrics=rows(**{"rewards/margins": 0.5}))  # a stray key an SFT run does not chart
    assert status.curves(ctx.queue, sft, "local")["method_keys"] == ()
    assert runs_tab.run_view(ctx, sft, "local")["per_metric"] == {}
    dpo_doc = {**QUICK, "method": "dpo", "data": {"source": "data/demo/dpo_train.jsonl"}}
    dpo = make_run(ctx, config=dpo_doc, metrics=rows(**{k: 0.25 for k in methods.get("dpo").charted}))
    view = runs_tab.run_view(ctx, dpo, "local")
    assert view["method_keys"] == methods.get("dpo").charted
    assert list(view["per_metric"]["rewards/margins"]["value"]) == [0.25] * 3


def test_held_out_loss_is_points_never_a_line_and_the_next_one_is_announced(ctx):
    metrics = [{"step": 0, "eval_loss": 3.2}, *rows(n=2), {"step": 200, "eval_loss": 1.1}]
    run_id = make_run(ctx, state="running", metrics=metrics)
    view = runs_tab.run_view(ctx, run_id, "local")
    assert list(view["held_out"]["step"]) == [0, 200] and set(view["train"]["series"]) == {"train"}
    assert "next held-out loss at the end" in view["status"]
    demo = tab(ctx)
    plots = {c.title: c for c in demo.blocks.values() if isinstance(c, (gr.LinePlot, gr.ScatterPlot))}
    assert isinstance(plots["Held-out loss"], gr.ScatterPlot) and plots["Loss"].y_title == "loss"
    assert plots["Learning rate"].y_title == "learning rate"
    # eval every 20 steps: at step 25 the next point is at 40; past the last one it comes at the end
    every = make_run(ctx, overrides=["training.eval_strategy=steps", "training.eval_steps=20"])
    folder = ctx.queue.get(every, "local").run_dir
    assert status.next_eval(folder, 25, "running") == "next held-out loss at step 40"
    assert status.next_eval(folder, 395, "running") == "next held-out loss at the end"
    assert status.next_eval(folder, 0, "running", measured=False) == "first held-out loss before the first step"
    none = make_run(ctx, overrides=["data.eval_source=null", "data.eval_size=0"])
    assert status.next_eval(ctx.queue.get(none, "local").run_dir, 5, "running") is None


def test_log_tail_drops_warnings_and_tracebacks_but_train_log_keeps_them(ctx):
    run_id = make_run(ctx, state="failed")
    log = RunFolder(ctx.queue.get(run_id, "local").run_dir).log_path
    text = (
        "2026-11-30 INFO trainers: Loss mask: assistant_only\n"
        "/x/transformers/training_args.py:1541: FutureWarning: `gradient_checkpointing` is deprecated.\n"
        '  warnings.warn(f"`{old}` is deprecated", FutureWarning)\n'
        "{'loss': '8.569'}\n{'loss': '8.569'}\n"
        'Traceback (most recent call last):\n  File "run.py", line 3, in main\n    train()\n'
        "ValueError: boom\n\n2026-11-30 ERROR trainers: The data file is empty.\n"
    )
    log.write_text(text)
    shown = runs_tab.run_view(ctx, run_id, "local")["log"]
    assert shown.splitlines() == [
        "2026-11-30 INFO trainers: Loss mask: assistant_only",
        "{'loss': '8.569'}",
        "2026-11-30 ERROR trainers: The data file is empty.",
    ]
    assert log.read_text() == text and monitor.readable_log(text) == shown


def test_two_runs_overlay_on_steps_or_tokens_and_their_config_diff(ctx):
    a = make_run(ctx, metrics=rows(tokens_seen=1000.0))
    b = make_run(ctx, metrics=rows(n=2, tokens_seen=500.0), overrides=["training.learning_rate=1e-3"])
    overlay, diff = runs_tab.compare(ctx, [a, b], "local", "tokens seen")
    labels = [status.run_label(ctx.queue.get(r, "local")) for r in (a, b)]
    assert list(overlay["run"].unique()) == labels and set(overlay["x"]) == {1000.0, 500.0}
    assert list(diff.columns) == ["setting", *labels]
    assert diff.values.tolist() == [["training.learning_rate", "0.005", "0.001"]]
    with pytest.raises(StudioError, match="two or more"):
        runs_tab.compare(ctx, [a], "local")
    with pytest.raises(StudioError, match="no run"):
        runs_tab.compare(ctx, [a, b], "bob")


def test_reload_selects_the_running_run_and_queued_runs_show_their_place(ctx):
    make_run(ctx, "alice", state="queued")  # another owner's run is first in line
    running = make_run(ctx, state="running", metrics=rows(n=1))
    queued = make_run(ctx, state="queued")  # the newest row
    assert status.default_run(ctx.queue, "local") == running
    refresh = handler_of(tab(ctx), "refresh")
    out = refresh("", {}, [], None, None)  # a reloaded page: nothing selected
    assert out[1] == running and "**running**" in out[2]
    table = runs_tab.list_runs(ctx, "local")
    assert table.set_index("run").loc[queued, "note"] == "2nd in line"
    assert "alice" not in table.to_string()
    assert refresh(queued, {}, [], None, None)[2] == "**queued** — 2nd in line"


def test_a_finished_run_shows_its_summary_and_no_runs_shows_how_to_start(ctx):
    refresh = handler_of(tab(ctx), "refresh")
    empty = refresh("", {}, [], None, None)
    assert empty[2] == runs_tab.EMPTY and empty[0]["visible"] is False
    summary = {
        "status": "succeeded",
        "global_step": 40,
        "final_metrics": {"eval_loss_before": 2.5, "eval_loss": 1.23456789, "train_loss": 1.7705320358276366},
        "wall_time_s": 1329.4,
        "tokens_seen": 12345,
        "peak_rss_mb": 1536.0,
    }
    run_id = make_run(ctx, metrics=rows(), summary=summary)
    out = refresh(run_id, {}, [], None, None)
    text = out[3]["value"]
    assert out[3]["visible"] is True
    for words in ("held-out loss 2.5 → 1.235", "train loss 1.771", "22 min", "12,345 tokens", "1.5 GB (RSS)"):
        assert words in text, text


def test_delete_asks_first_and_only_confirm_deletes_the_owners_run(ctx):
    run_id = make_run(ctx, metrics=rows())
    folder = RunFolder(ctx.queue.get(run_id, "local").run_dir).path
    demo = tab(ctx)
    confirm_row, question, pending = handler_of(demo, "delete_asked")(run_id, None, None)
    assert confirm_row["visible"] is True and pending == run_id
    assert question == f"Delete run **{run_id}** (sft) and its files? This cannot be undone."
    assert folder.exists() and ctx.queue.get(run_id, "local")  # asking deletes nothing
    with pytest.raises(StudioError, match="no run"):
        runs_tab.ask_delete(ctx, run_id, "bob")
    with pytest.raises(StudioError, match="no run"):
        runs_tab.confirm_delete(ctx, run_id, "bob")
    with pytest.raises(StudioError):
        runs_tab.confirm_delete(ctx, run_id, None)  # signed out
    assert folder.exists()
    hidden, done, *_ = handler_of(demo, "delete_confirmed")(pending, None, None)
    assert hidden["visible"] is False and done == f"Deleted run {run_id} and its files."
    assert not folder.exists() and runs_tab.list_runs(ctx, "local").empty


def test_a_chart_gets_new_settings_then_its_data_and_a_lone_point_keeps_the_runs_axis():
    point = runs_tab._frame([(0, 3.2)], "held-out")  # one evaluation, at step 0, of a 200-step run
    limits = runs_tab.held_out_limits(point, 200)
    assert limits["x_lim"][0] < 0 and limits["x_lim"][1] > 200 and limits["y_lim"][0] < 3.2 < limits["y_lim"][1]
    sent: dict = {}
    first = runs_tab.staged(sent, "held-out", point, runs_tab._seed("held-out"), title="Held-out loss", **limits)
    assert "value" not in first and first["x_lim"] == limits["x_lim"]  # settings alone: gradio redraws the chart
    second = runs_tab.staged(sent, "held-out", point, runs_tab._seed("held-out"), title="Held-out loss", **limits)
    assert second["value"] is point and "x_lim" not in second  # then the data, into the redrawn chart


def test_train_n_more_queues_only_the_owners_finished_runs(ctx):
    queued = make_run(ctx, state="queued")
    finished = make_run(ctx, metrics=rows())  # succeeded in the store, but its folder kept no checkpoint
    train_more = handler_of(tab(ctx), "train_more")
    with pytest.raises(gr.Error, match="only a finished"):
        train_more(queued, 10, None, None)
    with pytest.raises(gr.Error, match="1 or more"):
        train_more(finished, 0, None, None)
    with pytest.raises(StudioError, match="no run"):
        runs_tab.train_more_steps(ctx, finished, 10, "bob", None)  # another owner's run does not exist for bob
    with pytest.raises(gr.Error, match="cannot be continued|no complete checkpoint"):
        train_more(finished, 10, None, None)  # succeeded in the store, but no summary/checkpoint to continue from
    assert [r.id for r in ctx.queue.list("local")].count(finished) == 1 and len(ctx.queue.list("local")) == 2
