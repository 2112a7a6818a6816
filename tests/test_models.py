"""Models by Hub id go through the real Hub code path (from a pre-built cache, offline)."""

from helpers import RECIPES, fake_hub_model, read_summary, train

FAST = ["training.max_steps=2", "data.eval_source=null", "data.eval_size=0"]


def test_model_by_hub_id_loads_from_the_hub_cache(tmp_path, demo_model_dir):
    repo_id = fake_hub_model(demo_model_dir, "studio-test/tiny-chat")
    run_dir = tmp_path / "hub"
    assert train(RECIPES / "demo-sft.yaml", run_dir, f"model.name_or_path={repo_id}", *FAST) == 0
    summary = read_summary(run_dir)
    assert summary["status"] == "succeeded" and summary["model"] == repo_id
    assert "name_or_path: studio-test/tiny-chat" in (run_dir / "config.yaml").read_text()


def test_unknown_hub_model_offline_says_what_to_do(tmp_path, capsys, demo_model_dir):
    rc = train(RECIPES / "demo-sft.yaml", tmp_path / "x", "model.name_or_path=studio-test/no-such-model", *FAST)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc != 0 and last.startswith("error: ")
    assert "Hub" in last and "Traceback" not in last
