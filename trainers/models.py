"""Load the base model and tokenizer (optionally quantised), build the PEFT config, apply init_from."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from core import settings
from core.errors import ConfigError, ModelError
from core.paths import studio_home
from trainers import demo_model
from trainers.config import ModelSection, PeftSection

DEMO_MODEL_ID = "demo-tiny"
log = logging.getLogger("trainers")


def fallback_chat_template(tokenizer) -> str | None:
    """The chat template training renders with when the tokenizer has none: ours (ChatML with tools, reasoning
    and generation markers, trainers/demo_model.CHAT_TEMPLATE); None when the tokenizer has its own."""
    return None if tokenizer.chat_template else demo_model.CHAT_TEMPLATE.read_text(encoding="utf-8")


def use_fallback_chat_template(tokenizer) -> None:
    """Give a tokenizer without a chat template ours (it is saved with the adapter), and say so."""
    template = fallback_chat_template(tokenizer)
    if template is not None:
        tokenizer.chat_template = template
        log.warning("The tokenizer has no chat template; using ChatML (%s).", demo_model.CHAT_TEMPLATE.name)


def resolve_model_path(name_or_path: str) -> str:
    """The demo model id builds the offline demo model on first use; everything else passes through."""
    if name_or_path == DEMO_MODEL_ID:
        return str(demo_model.ensure(studio_home() / "models" / DEMO_MODEL_ID))
    return name_or_path


def hardware() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "device": "cuda" if cuda else "cpu",
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
    }


def _dtype(section: ModelSection, hw: dict, full_finetune: bool = False):
    """auto: bf16 weights where supported, except full fine-tuning, which keeps fp32 master weights and
    trains in bf16 autocast (mixed precision): pure-bf16 AdamW updates round away on small learning rates."""
    import torch

    if section.dtype != "auto":
        return getattr(torch, section.dtype)
    return torch.bfloat16 if hw["bf16"] and not full_finetune else torch.float32


def quantization_config(section: ModelSection, hw: dict):
    if section.quantization == "none":
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(
            f"model.quantization: {section.quantization} needs bitsandbytes, which is not installed here: "
            "install it or set model.quantization: none."
        )
    from transformers import BitsAndBytesConfig

    if section.quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = _dtype(section, hw)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
        # FSDP shards flat parameters of one dtype: 4-bit weights must be stored in the compute dtype
        **({"bnb_4bit_quant_storage": compute} if sharded_launch() else {}),
    )


def sharded_launch() -> bool:
    """True under `accelerate launch` with FSDP or DeepSpeed ZeRO-3, which shard the weights themselves
    (the launcher sets these variables); ZeRO-2 and DDP keep a whole model per GPU."""
    env = os.environ
    fsdp = env.get("ACCELERATE_USE_FSDP", "").lower() == "true"
    zero3 = (
        env.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true" and env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3"
    )
    return fsdp or zero3


def _missing_local(path: str) -> bool:
    looks_local = path.startswith((".", "/", "~")) or path.count("/") > 1  # Hub ids are owner/name
    return looks_local and not Path(path).expanduser().exists()


def load_tokenizer(section: ModelSection, path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        path, revision=section.revision, trust_remote_code=section.trust_remote_code
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def resolve_and_load_tokenizer(section: ModelSection):
    """Returns (tokenizer, resolved local-or-hub path); raises one clear error for a missing model."""
    path = resolve_model_path(section.name_or_path)
    if _missing_local(path):
        raise ModelError(f"Model folder {path!r} does not exist: check model.name_or_path.")
    try:
        return load_tokenizer(section, path), path
    except OSError as exc:
        if Path(path).expanduser().exists():
            raise ModelError(f"{path!r} is not a loadable model folder: {str(exc).splitlines()[0]}") from exc
        raise


def load_model(
    section: ModelSection,
    hw: dict,
    path: str,
    full_finetune: bool = False,
    method=None,
    pad_token_id: int | None = None,
):
    """The base model as the method trains it (trainers/methods.py `model_class`): a causal LM, or for a reward
    model a sequence classifier with one output (a fresh `score` head on the base) that finds each sequence's
    last token by `pad_token_id`."""
    quant = quantization_config(section, hw)
    kwargs = {
        "revision": section.revision,
        "dtype": _dtype(section, hw, full_finetune and quant is None),
        "trust_remote_code": section.trust_remote_code,
    }
    if section.attn_implementation:
        kwargs["attn_implementation"] = section.attn_implementation
    if quant is not None:
        kwargs["quantization_config"] = quant
        if not sharded_launch():  # each data-parallel process loads onto its own GPU
            kwargs["device_map"] = {"": settings.process_rank()[1]} if hw["device"] == "cuda" else "cpu"
    scorer = _is_scorer(method)
    if scorer:
        kwargs["num_labels"] = 1  # one scalar reward per sequence
    try:
        model = _from_pretrained(method, path, **kwargs)
    except OSError as exc:
        if Path(path).expanduser().exists():
            what = "sequence-classification" if scorer else "causal LM"
            raise ModelError(f"{path!r} is not a loadable {what} folder: {str(exc).splitlines()[0]}") from exc
        raise
    if scorer and pad_token_id is not None:
        model.config.pad_token_id = pad_token_id  # where each sequence ends: its score is read at the last token
    return model


def _is_scorer(method) -> bool:
    return method is not None and method.output == "reward_model"


def _from_pretrained(method, path: str, **kwargs):
    """`model_class.from_pretrained`; a causal LM's checkpoint loaded as a scorer quietly leaves out its LM head
    and starts a fresh `score` head (TRL's own warning filter)."""
    if method is None:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    cls = method.model_cls()
    if not _is_scorer(method):
        return cls.from_pretrained(path, **kwargs)
    from trl.trainer.reward_trainer import suppress_seqcls_warning

    with suppress_seqcls_warning():
        return cls.from_pretrained(path, **kwargs)


def peft_config(section: PeftSection, method=None):
    """The LoRA / DoRA config, with the method's PEFT task type: SEQ_CLS (a reward model) makes PEFT train and save
    the `score` head in full (modules_to_save) beside the low-rank weights."""
    if section.type == "none":
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=section.r,
        lora_alpha=section.lora_alpha,
        lora_dropout=section.lora_dropout,
        target_modules=section.target_modules,
        modules_to_save=list(saved) if isinstance(saved := section.modules_to_save, list) else saved,  # PEFT extends it
        use_dora=section.type == "dora",
        task_type=method.peft_task if method is not None else "CAUSAL_LM",
    )


def adapter_dir(init_from: str) -> str:
    """A run folder means its adapter/; anything else is an adapter folder or Hub adapter id."""
    path = Path(init_from).expanduser()
    if (path / "adapter" / "adapter_config.json").exists():
        return str(path / "adapter")
    if (path / "adapter_config.json").exists():
        return str(path)
    if path.exists() or init_from.startswith((".", "/", "~")):
        raise ConfigError(
            f"init_from {init_from!r} holds no adapter (adapter_config.json): point it at a finished run folder "
            "or an adapter folder."
        )
    return init_from  # a Hub adapter id


def apply_init_from(model, init_from: str, full_finetune: bool, method=None):
    """Load the adapter to start from: trainable for further LoRA training, merged for full fine-tuning.  A reward
    model may start from a policy's adapter (e.g. the SFT run's): its low-rank weights under the reward model's
    task type, with the fresh `score` head trained in full and saved beside them."""
    from peft import PeftConfig, PeftModel

    source = adapter_dir(init_from)
    config = PeftConfig.from_pretrained(source) if method is not None else None
    task = str(getattr(config, "task_type", None)).removeprefix("TaskType.")
    if config is not None and task != method.peft_task:
        if method.peft_task == "CAUSAL_LM":
            raise ConfigError(
                f"init_from {init_from!r} is a {task} adapter (a reward model's scoring head, not a policy): "
                f"{method.label} starts from a policy, e.g. an SFT run."
            )
        model = _adapter_of_another_task(model, source, config, method.peft_task)
    else:
        model = PeftModel.from_pretrained(model, source, is_trainable=not full_finetune)
    if full_finetune:
        model = model.merge_and_unload()
    return model, source


def _adapter_of_another_task(model, source: str, config, task: str):
    """The adapter at `source` (saved for another task, e.g. CAUSAL_LM) on `model` as a `task` adapter: its saved
    weights, and the weights it has not got (a SEQ_CLS model's new head) as `model` has them."""
    from peft import get_peft_model, load_peft_weights, set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict

    config.task_type = task
    config.inference_mode = False
    config.modules_to_save = [m for m in config.modules_to_save or () if m != "lm_head"] or None  # no LM head here
    peft_model = get_peft_model(model, config)
    saved = load_peft_weights(source)
    fresh = get_peft_model_state_dict(peft_model)
    set_peft_model_state_dict(peft_model, {**{k: v for k, v in fresh.items() if k not in saved}, **saved})
    return peft_model


SCORE_HEADS = ("score", "classifier")  # what PEFT saves in full for a SEQ_CLS adapter (modules_to_save)


def check_saved_head(model, adapter_dir: Path) -> None:
    """A sequence-classification adapter must hold its trained head: without it the scores come from a random
    one.  Raises ModelError when the saved weights have no head."""
    config = getattr(model, "peft_config", {}).get("default")
    if config is None or str(getattr(config, "task_type", "")) not in ("SEQ_CLS", "TaskType.SEQ_CLS"):
        return
    from safetensors import safe_open

    weights = Path(adapter_dir) / "adapter_model.safetensors"
    if not weights.is_file():
        return  # saved as .bin (safe_serialization off): nothing to read cheaply
    with safe_open(str(weights), framework="pt") as f:
        keys = list(f.keys())
    if not any(part in SCORE_HEADS for key in keys for part in key.split(".")):
        raise ModelError(
            f"The reward model's adapter in {adapter_dir} was saved without its scoring head "
            f"({' or '.join(SCORE_HEADS)}): add the head's module name to peft.modules_to_save."
        )


def parameter_counts(model) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {
        "trainable_params": trainable,
        "total_params": total,
        "trainable_percent": round(100.0 * trainable / total, 4) if total else 0.0,
    }


SCORER_SENTENCE = (
    "{what} is a reward model: it scores replies, it does not write them; score with "
    "python -m evaluation score RUN --data FILE."
)


def is_scorer(adapter_config: dict) -> bool:
    """A reward model's adapter (PEFT task SEQ_CLS): it scores text, it does not chat."""
    return str(adapter_config.get("task_type", "")).upper() == "SEQ_CLS"


def refuse_scorer(adapter_config: dict, what: str) -> None:
    """One sentence when a chat tool is handed a reward model's adapter (PEFT task SEQ_CLS)."""
    if is_scorer(adapter_config):
        raise ModelError(SCORER_SENTENCE.format(what=what))
