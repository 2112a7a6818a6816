"""The attention kernel: FlashAttention when it can run (the package, else the Hub kernel), else SDPA on CUDA;
nothing changes on CPU; a kernel named in the config is kept; the choice and its reason reach summary.json."""

import pytest

from core.errors import ConfigError
from trainers import attention


@pytest.mark.parametrize(
    ("device", "flash", "kernels", "hub", "expected", "says"),
    [
        ("cuda", True, False, False, "flash_attention_2", "flash-attn imports"),
        ("cuda", True, True, True, "flash_attention_2", "flash-attn imports"),  # the package beats the Hub kernel
        ("cuda", False, True, True, "kernels-community/flash-attn2", "from the Hub"),
        ("cuda", False, True, False, "sdpa", "the Hub is not reachable"),
        ("cuda", False, False, True, "sdpa", "kernels package is not installed"),
        ("cpu", True, True, True, None, "CPU"),  # on CPU nothing changes, whatever is installed
    ],
)
def test_the_fastest_attention_path_is_chosen_with_its_reason(device, flash, kernels, hub, expected, says):
    choice = attention.choose(None, device, flash=flash, kernels=kernels, hub=hub)
    assert choice["implementation"] == expected
    assert says in choice["reason"]


def test_a_kernel_named_in_the_config_is_kept():
    choice = attention.choose("eager", "cuda", flash=True, kernels=True, hub=True)
    assert choice == {"implementation": "eager", "reason": "set in the config (model.attn_implementation)"}


def test_flash_keeps_padding_free_batches_and_other_kernels_go_one_packed_row_per_pass():
    from trainers import config as config_mod
    from trainers.run import one_packed_row_per_pass

    raw = {"model": "demo-tiny", "data": {"source": "data/demo/sft_train.jsonl"}, "training": {"packing": True}}
    for kernel, batch in (("kernels-community/flash-attn2", 8), ("flash_attention_2", 8), ("sdpa", 1)):
        cfg = config_mod.from_dict({**raw, "model": {"name_or_path": "demo-tiny", "attn_implementation": kernel}})
        args = one_packed_row_per_pass(cfg, {"per_device_train_batch_size": 8, "packing": True})
        assert args["per_device_train_batch_size"] == batch, kernel


def test_only_the_hub_kernel_the_engine_chose_falls_back_to_sdpa():
    chosen = attention.choose(None, "cuda", flash=False, kernels=True, hub=True)
    fallback = attention.fallback(chosen, OSError("download failed"))
    assert fallback["implementation"] == "sdpa" and "download failed" in fallback["reason"]
    assert attention.fallback(attention.choose(attention.HUB_KERNEL, "cuda"), OSError("x")) is None  # user's own
    assert attention.fallback(attention.choose(None, "cuda", flash=True), OSError("x")) is None


def test_liger_is_off_on_cpu_and_refused_in_one_sentence_without_the_package(monkeypatch):
    assert attention.liger({"use_liger_kernel": True}, "cpu")[0] is False
    assert attention.liger({}, "cuda") == (False, None)
    monkeypatch.setattr(attention, "importable", lambda name: False)
    with pytest.raises(ConfigError, match="needs the liger-kernel package"):
        attention.liger({"use_liger_kernel": True}, "cuda")


def test_offline_hub_is_not_reachable(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert attention.hub_reachable() is False


def test_the_choice_is_recorded_in_summary_json_and_train_log(tmp_path, demo_model_dir, recwarn):
    """A CPU run records what it used and why (nothing changed), and causes no deprecated-argument FutureWarning
    (a queued run's stderr is its train.log: issue 18)."""
    from helpers import RECIPES, read_summary, train

    run_dir = tmp_path / "run"
    assert train(RECIPES / "demo-sft.yaml", run_dir, "training.max_steps=2", "training.save_strategy=no") == 0
    summary = read_summary(run_dir)
    assert summary["attention"] == {"implementation": None, "reason": attention.choose(None, "cpu")["reason"]}
    assert summary["runtime_training"]["activation_checkpointing"] is False
    log = (run_dir / "train.log").read_text()
    assert "Attention: default (CPU" in log
    deprecated = [str(w.message) for w in recwarn.list if "checkpointing" in str(w.message)]
    assert deprecated == []
