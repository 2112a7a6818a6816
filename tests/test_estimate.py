"""The pre-flight estimate: exact parameter counts (PEFT's own), known memory figures, one-sentence errors."""

import json

import pytest
from helpers import RECIPES

from core.errors import StudioError
from trainers import config as config_mod
from trainers.estimate import EstimateError, count_parameters, estimate, render

LLAMA_8B = {  # Llama-3.1-8B shapes; config.json only, no weights
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}


@pytest.fixture(scope="module")
def llama8b(tmp_path_factory):
    path = tmp_path_factory.mktemp("llama8b")
    (path / "config.json").write_text(json.dumps(LLAMA_8B))
    return path


def cfg_for(model, peft="lora", r=16, quant="none", **training):
    doc = {
        "model": {"name_or_path": str(model), "quantization": quant},
        "peft": {"type": peft, "r": r, "lora_alpha": 2 * r, "target_modules": "all-linear"},
        "data": {"source": "org/some-hub-dataset"},
        "training": training,
    }
    return config_mod.from_dict(doc)


def key(cfg):
    from trainers.estimate import _peft_key

    return (str(cfg.model.name_or_path), "main", False, _peft_key(cfg.peft))


@pytest.mark.parametrize("peft", ["lora", "dora", "none"])
def test_demo_counts_equal_peft_on_the_real_model(demo_model_dir, peft):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from trainers.models import parameter_counts, peft_config

    cfg = cfg_for(demo_model_dir, peft, r=8)
    model = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    if peft != "none":
        model = get_peft_model(model, peft_config(cfg.peft))
        assert model.get_nb_trainable_parameters() == (
            parameter_counts(model)["trainable_params"],
            parameter_counts(model)["total_params"],
        )
    real = parameter_counts(model)
    counted = count_parameters(*key(cfg))
    assert (counted["trainable_params"], counted["total_params"]) == (real["trainable_params"], real["total_params"])


def test_llama_8b_counts_on_the_meta_device(llama8b):
    full = count_parameters(*key(cfg_for(llama8b, "none")))
    assert full["trainable_params"] == full["total_params"] == 8_030_261_248  # Llama-3.1-8B
    lora = count_parameters(*key(cfg_for(llama8b, "lora", r=16)))
    # r x (in + out) over q, k, v, o, gate, up, down, 32 layers
    assert lora["trainable_params"] == 16 * (8192 + 5120 + 5120 + 8192 + 3 * 18432) * 32 == 41_943_040
    assert lora["total_params"] == 8_030_261_248 + 41_943_040
    dora = count_parameters(*key(cfg_for(llama8b, "dora", r=16)))
    magnitudes = (4096 + 1024 + 1024 + 4096 + 14336 + 14336 + 4096) * 32  # one per output feature
    assert dora["trainable_params"] == 41_943_040 + magnitudes == dora["magnitude_params"] + 41_943_040


def test_known_memory_figures_for_8b(llama8b):
    qlora = estimate(cfg_for(llama8b, "lora", 16, "4bit", max_length=2048, gradient_checkpointing=True))
    assert qlora["peak_memory_gb"] < 24 * 0.85
    assert {t["name"]: t["fits"] for t in qlora["tiers"]}["l4x1"] == "fits"
    assert 0.5 < qlora["trainable_percent"] < 0.55
    # full fine-tuning, AdamW, bf16 mixed precision with fp32 master weights: 16 B/parameter
    mixed = estimate(cfg_for(llama8b, "none", max_length=2048))
    assert mixed["peak_memory_gb"] > 100 and mixed["compare"]["full"]["peak_memory_gb"] > 100
    assert {t["name"]: t["fits"] for t in mixed["tiers"]}["a100-large"] == "does not fit"
    pure_bf16 = config_mod.from_dict(  # asking for bf16 weights explicitly: 8 B/parameter + activations
        {**cfg_for(llama8b, "none").to_dict(), "model": {"name_or_path": str(llama8b), "dtype": "bfloat16"}}
    )
    assert 64 < estimate(pure_bf16)["peak_memory_gb"] < mixed["peak_memory_gb"]


def test_json_fields_tiers_and_side_by_side(demo_model_dir):
    cfg = config_mod.load(RECIPES / "demo-sft.yaml")
    est = estimate(cfg)
    assert est["trainable_params"] == 233_472 and est["total_params"] == 504_288
    assert set(est["breakdown"]) >= {"weights", "adapter", "gradients", "optimizer", "activations", "logits"}
    assert est["tokens_per_step"] == 8 * 128 and est["data"]["source"] == "data doctor"
    tier = est["tiers"][0]
    assert set(tier) >= {"name", "gpu", "vram_gb", "fits", "usd_per_hour", "hours_per_epoch", "usd_per_epoch"}
    assert {t["fits"] for t in est["tiers"]} <= {"fits", "tight", "does not fit"}
    assert set(est["compare"]) == {"full", "lora", "qlora"}
    assert est["compare"]["full"]["trainable_params"] == 270_816
    text = render(est)
    assert "233,472 of 504,288" in text and "| qlora |" in text and "a100-large" in text


def test_bad_inputs_are_one_sentence(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudioError, match="folder without config.json"):  # refused by the config itself
        estimate(cfg_for(tmp_path / "empty"))
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"model_type": "no-such-arch", "hidden_size": 8}))
    with pytest.raises(EstimateError, match="not one transformers knows"):
        estimate(cfg_for(tmp_path / "odd"))
    with pytest.raises(StudioError, match="per_device_train_batch_size' must be a whole number from 1 to 65536"):
        cfg_for(tmp_path / "odd", per_device_train_batch_size=0)
    from trainers.__main__ import main

    recipe = RECIPES / "demo-sft.yaml"
    assert main(["estimate", str(recipe), "--set", "training.per_device_train_batch_size=0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "from 1 to 65536" in err[0]
    assert main(["estimate", str(recipe), "--set", f"model.name_or_path={tmp_path / 'empty'}"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: ")
    for flag, value in (("--rows", "-5"), ("--rows", "0"), ("--tokens-per-row", "-1")):
        assert main(["estimate", str(recipe), flag, value]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {flag} must be"), err
    with pytest.raises(EstimateError, match="rows must be 1 or more"):
        estimate(cfg_for(tmp_path / "odd"), rows=-5)


def test_cli_json(demo_model_dir, capsys):
    from trainers.__main__ import main

    assert (
        main(["estimate", str(RECIPES / "demo-sft.yaml"), "--json", "--rows", "1000", "--tokens-per-row", "100"]) == 0
    )
    est = json.loads(capsys.readouterr().out)
    assert est["data"] == {"rows": 1000, "tokens_per_row": 100.0, "source": "given", "tokens_per_epoch": 100_000}
    assert all(t["usd_per_epoch"] >= 0 for t in est["tiers"])


def test_the_estimate_says_how_the_run_takes_a_step_as_the_engine_will_run_it():
    from trainers import config as config_mod
    from trainers import estimate as estimator

    for recipe, words in (
        ("demo-sft.yaml", "1 row per forward pass x 8 passes (packed rows go one per pass without FlashAttention)"),
        ("demo-dpo.yaml", "8 rows per forward pass x 1 pass"),
    ):
        text = estimator.render(estimator.estimate(config_mod.load(RECIPES / recipe)))
        assert words in text and "activation checkpointing on a GPU: on, on a CPU: off" in text, text[:400]
