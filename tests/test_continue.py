"""Train N more: a finished run continues as a new run from its last checkpoint (weights + optimizer state) with a
fresh schedule; its steps and metrics carry on from the parent's last step; the queue's continue_run is owner-only
and refuses unfinished runs; the runs store gains its `continues` column on an existing database."""

import sqlite3

import pytest
import yaml
from helpers import RECIPES, read_metrics, read_summary, train

from core.errors import ConfigError
from jobs.api import JobError, JobQueue
from trainers.__main__ import main


@pytest.fixture(scope="module")
def parent(tmp_path_factory, demo_model_dir):
    run_dir = tmp_path_factory.mktemp("continue") / "parent"
    sets = ("training.max_steps=6", "training.save_steps=3", "training.logging_steps=1")
    assert train(RECIPES / "demo-sft.yaml", run_dir, *sets) == 0
    return run_dir


def test_continue_extends_a_finished_run_with_continuous_steps_and_metrics(parent, tmp_path):
    child = tmp_path / "child"
    assert main(["continue", str(parent), "--steps", "4", "--output-dir", str(child)]) == 0
    summary = read_summary(child)
    assert summary["status"] == "succeeded" and summary["global_step"] == 10
    assert summary["continues"]["run"] == parent.name and summary["continues"]["from_step"] == 6
    assert summary["continues"]["optimizer_state_loaded"] is True  # AdamW moments, not a cold optimizer
    parent_steps = [r["step"] for r in read_metrics(parent) if "loss" in r]
    child_rows = [r for r in read_metrics(child) if "loss" in r]
    assert parent_steps == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in child_rows] == [7, 8, 9, 10]  # one curve when shown together
    config = yaml.safe_load((child / "config.yaml").read_text())
    assert config["continues"] == parent.name
    assert config["init_from"].endswith("checkpoints/checkpoint-6")
    assert config["training"]["max_steps"] == 4  # a fresh schedule for the 4 more steps
    assert (child / "adapter" / "adapter_config.json").exists()


def test_continue_refuses_in_one_sentence(parent, tmp_path, capsys):
    assert main(["continue", str(tmp_path), "--steps", "3"]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    from trainers.continuation import continuation_config

    with pytest.raises(ConfigError, match="a number of steps or of epochs"):
        continuation_config(parent, "p")
    with pytest.raises(ConfigError, match="1 or more"):
        continuation_config(parent, "p", steps=0)


def test_queue_continue_run_is_owner_only_and_needs_a_finished_run(parent, home):
    queue = JobQueue(home)
    run_id = queue.store.add("alice", "demo", str(parent))
    with pytest.raises(JobError, match="only a finished \\(succeeded\\) run"):
        queue.continue_run(run_id, "alice", steps=3)  # still queued
    queue.store.update(run_id, "alice", status="succeeded")
    with pytest.raises(JobError, match="There is no run"):
        queue.continue_run(run_id, "bob", steps=3)
    new_id = queue.continue_run(run_id, "alice", steps=3)
    new = queue.get(new_id, "alice")
    assert new.continues == run_id and new.status == "queued" and new.name == "demo +3 steps"
    config = yaml.safe_load((home / "runs" / new_id / "config.yaml").read_text())
    assert config["continues"] == run_id and config["training"]["max_steps"] == 3


def test_an_existing_runs_database_gains_the_continues_column(tmp_path):
    path = tmp_path / "jobs.db"
    with sqlite3.connect(path) as db:  # the schema before this column
        db.execute(
            "CREATE TABLE runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, owner TEXT NOT NULL, "
            "name TEXT NOT NULL, run_dir TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL, "
            "started_at REAL, finished_at REAL, pid INTEGER, attempts INTEGER NOT NULL DEFAULT 0, "
            "cancel_requested_at REAL, exit_code INTEGER, exit_reason TEXT, error TEXT)"
        )
        db.execute(
            "INSERT INTO runs (id, owner, name, run_dir, status, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            ("old", "alice", "demo", "/x", "succeeded", 1.0),
        )
    from jobs.store import Store

    store = Store(path)
    assert store.get("old", "alice").continues is None
    new_id = store.add("alice", "more", "/y", continues="old")
    assert store.get(new_id, "alice").continues == "old"
