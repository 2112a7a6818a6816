"""KTO, ORPO and SimPO train what their data says on the demo model (offline, CPU): KTO separates held-out
desirable from undesirable replies; ORPO and SimPO raise held-out preference accuracy from the base.  And a
feedback file is refused by SFT in one sentence, while KTO trains it as is."""

import json
import statistics

import pytest
from helpers import RECIPES, ROOT, train

from data import doctor, sources
from evaluation import generate, metrics
from trainers import methods
from trainers.config import DataSection

DEMO = ROOT / "data" / "demo"


def _rows(name):
    return [json.loads(line) for line in (DEMO / name).read_text().splitlines()]


def _train(recipe, run_dir):
    rc = train(RECIPES / recipe, run_dir, "training.logging_steps=20", "training.save_steps=1000")
    assert rc == 0, (run_dir / "train.log").read_text()[-2000:]
    return run_dir / "adapter"


def _logps(model, tok, rows):
    encoded = [metrics.encode(tok, r["messages"][:-1], r["messages"][-1:], 256) for r in rows]
    return [s for s, _ in metrics.completion_logprobs(model, encoded)]


def test_sft_refuses_feedback_in_one_sentence_and_kto_trains_it():
    section = DataSection(source=str(DEMO / "kto_train.jsonl"), eval_size=0)
    _, report, _ = doctor.examine(sources.load(section.source), methods.get("sft").task, section)
    message = report.errors[0].message
    assert "'label'" in message and "data.keep: desirable" in message and "method: kto" in message
    assert message.count(". ") == 0 and message.endswith(".")
    ds, report, _ = doctor.examine(sources.load(section.source), methods.get("kto").task, section)
    assert not report.errors and report.rows_kept == 160 and sum(ds["label"]) == 80


def test_kto_separates_held_out_desirable_from_undesirable_replies(tmp_path, demo_model_dir):
    adapter = _train("demo-kto.yaml", tmp_path / "kto")
    rows = _rows("kto_eval.jsonl")
    base, tok = generate.load(str(demo_model_dir))
    policy, _ = generate.load(str(demo_model_dir), str(adapter))
    ratio = [p - b for p, b in zip(_logps(policy, tok, rows), _logps(base, tok, rows), strict=True)]
    good = statistics.mean(r for r, row in zip(ratio, rows, strict=True) if row["label"])
    bad = statistics.mean(r for r, row in zip(ratio, rows, strict=True) if not row["label"])
    print(f"kto: held-out log-ratio desirable {good:.2f}, undesirable {bad:.2f}")
    # measured (60 steps, demo recipe): desirable +35.2, undesirable +13.2 nats of log-ratio vs base: margin 22.0
    assert good - bad > 5.0, (good, bad)


@pytest.mark.parametrize("name", ["orpo", "simpo"])
def test_reference_free_methods_raise_held_out_preference_accuracy(tmp_path, demo_model_dir, name):
    adapter = _train(f"demo-{name}.yaml", tmp_path / name)
    pairs = _rows("dpo_eval.jsonl")
    base, tok = generate.load(str(demo_model_dir))
    policy, _ = generate.load(str(demo_model_dir), str(adapter))
    before = metrics.preference_metrics(metrics.pair_logprobs(base, tok, pairs, 256), None)
    after = metrics.preference_metrics(metrics.pair_logprobs(policy, tok, pairs, 256), None)
    print(
        f"{name}: held-out preference accuracy {before['preference_accuracy']:.2f} -> {after['preference_accuracy']:.2f}"
    )
    # measured (60 steps, demo recipes, 30 held-out pairs, chosen vs rejected by summed log-probability):
    # ORPO 0.00 -> 0.77, SimPO 0.00 -> 0.77 (re-measured on the current demo task)
    assert before["preference_accuracy"] == 0.0 and after["preference_accuracy"] >= 0.5, (before, after)
    assert after["logprob_margin"] - before["logprob_margin"] > 20


def test_the_doctor_shows_the_desirable_balance_and_the_weights_that_fix_it(tmp_path):
    rows = _rows("kto_train.jsonl")
    section = DataSection(source=str(DEMO / "kto_train.jsonl"), eval_size=0)
    _, report, _ = doctor.examine(sources.load(section.source), methods.get("kto").task, section)
    balance = next(f for f in report.findings if f.code == "balance")
    assert "80 desirable (label true) and 80 undesirable" in balance.message
    skewed = [r for r in rows if r["label"]] + [r for r in rows if not r["label"]][:20]  # 80 good, 20 bad
    path = tmp_path / "skewed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in skewed))
    _, report, _ = doctor.examine(sources.load(str(path)), methods.get("kto").task, DataSection(source=str(path)))
    warning = next(f for f in report.findings if f.code == "imbalanced")
    assert "4.00:1" in warning.message and "training.desirable_weight: 0.29" in warning.message
