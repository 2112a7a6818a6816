"""RunConfig validation: every shipped recipe validates; bad configs fail with one clear line."""

import json

import pytest
import yaml
from helpers import RECIPES, ROOT, train

from trainers import config, methods

DEMO_SFT = {
    "method": "sft",
    "model": {"name_or_path": "demo-tiny"},
    "data": {"source": str(ROOT / "data/demo/sft_train.jsonl"), "eval_size": 0},
    "training": {"max_steps": 2},
}


def test_every_shipped_recipe_validates_and_starts_with_its_command():
    recipes = sorted(RECIPES.glob("*.yaml"))
    assert len(recipes) >= 6
    for path in recipes:
        text = path.read_text()
        raw = yaml.safe_load(text)
        if "arms" in raw:  # a comparison recipe (python -m evaluation compare)
            from evaluation.compare import validate

            assert text.startswith("#") and f"python -m evaluation compare templates/recipes/{path.name}" in text
            assert validate(raw)["arms"]
            continue
        assert text.startswith("#") and f"python -m trainers train templates/recipes/{path.name}" in text, path
        cfg = config.from_dict(raw)
        assert cfg.method in methods.names()


def test_training_options_pass_through_unchanged_to_trl():
    from trl import SFTConfig

    raw = {**DEMO_SFT, "training": {"neftune_noise_alpha": 5.0, "packing_strategy": "wrapped"}}
    cfg = config.from_dict(raw)
    trl_args = SFTConfig(output_dir="x", use_cpu=True, bf16=False, **cfg.training)
    assert trl_args.neftune_noise_alpha == 5.0 and trl_args.packing_strategy == "wrapped"


def test_set_overrides_parse_yaml_values():
    raw = config.apply_overrides({"training": {}}, ["training.max_steps=7", "peft.target_modules=[q_proj, v_proj]"])
    assert raw == {"training": {"max_steps": 7}, "peft": {"target_modules": ["q_proj", "v_proj"]}}


def _write(tmp_path, raw, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def _with(**changes):
    raw = json.loads(json.dumps(DEMO_SFT))
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return raw


BAD = {
    "unknown key": (_with(model__nme="x"), "Unknown key 'model.nme'"),
    "wrong type": (_with(peft__r="sixteen"), "'peft.r' must be a whole number"),
    "unknown method": (_with(method="ppo"), "'method' must be one of sft, dpo"),
    "missing data file": (_with(data__source="nope/missing.jsonl"), "does not exist"),
    "columns absent": (_with(data__source=str(ROOT / "data/demo/dpo_train.jsonl")), "preference data"),
    "model path missing": (_with(model__name_or_path="./no/such/model"), "does not exist"),
    "negative learning rate": (_with(training__learning_rate=-1e-4), "must be greater than 0"),
    "4bit without adapter": (_with(model__quantization="4bit", peft__type="none"), "needs an adapter"),
    "renamed TRL option": (_with(training__max_seq_length=512), "it is now 'max_length'"),
    "token in config": (_with(training__hub_token="hf_secret"), "never go in a config"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_config_exits_nonzero_with_one_clear_line(case, tmp_path, capsys, demo_model_dir):
    raw, expected = BAD[case]
    run_dir = tmp_path / "run"
    rc = train(_write(tmp_path, raw), run_dir)
    err = capsys.readouterr().err
    assert rc != 0
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last, last
    log = (run_dir / "train.log").read_text()
    assert "Traceback" in log and expected in log
    assert "hf_secret" not in (run_dir / "summary.json").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"


def test_empty_dataset_is_refused(tmp_path, capsys, demo_model_dir):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    rc = train(_write(tmp_path, _with(data__source=str(empty))), tmp_path / "run")
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc != 0 and "empty" in last


def test_dpo_on_sft_data_is_refused(tmp_path, capsys, demo_model_dir):
    rc = train(_write(tmp_path, _with(method="dpo")), tmp_path / "run")
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc != 0 and "DPO needs preference pairs" in last


def test_a_secret_set_on_the_command_line_is_refused_and_never_written(tmp_path, capsys, demo_model_dir):
    token = "hf_" + "Q9x" * 12
    run_dir = tmp_path / "run"
    rc = train(_write(tmp_path, DEMO_SFT), run_dir, f"training.model_init_kwargs={{token: {token}}}")
    err = capsys.readouterr().err
    assert rc != 0 and "training.model_init_kwargs.token holds a secret" in err and token not in err
    assert not any(token in p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file())


def test_secret_rule_spares_special_token_text():
    cfg = config.from_dict(_with(training__pad_token="<|pad|>", training__eos_token="<|im_end|>"))
    assert cfg.training["pad_token"] == "<|pad|>"
    with pytest.raises(config.ConfigError, match="training.pad_token holds a secret"):
        config.from_dict(_with(training__pad_token="hf_" + "a" * 34))
