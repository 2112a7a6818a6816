"""The tiny offline demo model: a random-init Llama-style causal LM and a locally trained BPE tokenizer.

    python -m trainers demo-model DIR

Deterministic (fixed seed, fixed corpus) and offline: the tokenizer is trained on the shipped demo
data, and the chat template (templates/chat/chatml_tools_generation.jinja) is ChatML with
`{% generation %}` markers around what the assistant produces, so TRL's assistant-only loss works out
of the box, also on tool-calling conversations (`tools`, assistant `tool_calls`, `tool` turns) and
reasoning traces (`reasoning_content`). A plain conversation renders exactly as plain ChatML.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from core.paths import DEMO_DATA, ROOT, TEMPLATES

CHAT_TEMPLATE = TEMPLATES / "chat" / "chatml_tools_generation.jinja"
SAVED_CHAT_TEMPLATE = "chat_template.jinja"  # where save_pretrained writes it; it wins over tokenizer_config.json
DEFAULT_DIR = ROOT / "studio_home" / "models" / "demo-tiny"
EMBEDDING_STD = 0.1
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# The files the tokenizer learns from: fixed, so shipping demo data for a new method leaves the tokenizer alone.
CORPUS = ("dpo_train.jsonl", "sft_train.jsonl")
MODEL_SIZE = {"hidden_size": 96, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 8}
VOCAB_SIZE = 512
# What a built model was built from (the corpus files' bytes and the sizes above), written last by build():
# ensure() rebuilds a model whose fingerprint differs, so a demo model on disk follows the shipped demo data.
FINGERPRINT = "demo_build.json"

log = logging.getLogger("trainers")


def _corpus():
    for path in (DEMO_DATA / name for name in CORPUS):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for key in ("messages", "prompt", "chosen", "rejected"):
                for message in row.get(key) or []:
                    yield message["content"]


def fingerprint() -> str:
    """A digest of everything the built model depends on but the chat template (refreshed on its own)."""
    digest = hashlib.sha256()
    for name in CORPUS:
        digest.update(name.encode() + b"\0" + (DEMO_DATA / name).read_bytes() + b"\0")
    digest.update(json.dumps([MODEL_SIZE, EMBEDDING_STD, VOCAB_SIZE, SPECIAL_TOKENS], sort_keys=True).encode())
    return digest.hexdigest()


def built_fingerprint(out_dir: str | Path) -> str | None:
    """The fingerprint a built model folder records; None when it has none (built before fingerprints) or is unreadable."""
    try:
        return json.loads((Path(out_dir) / FINGERPRINT).read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None


def build_tokenizer(vocab_size: int = VOCAB_SIZE):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        chat_template=CHAT_TEMPLATE.read_text(encoding="utf-8"),
        model_max_length=1024,
    )


def build(out_dir: str | Path = DEFAULT_DIR) -> Path:
    """Build (or rebuild) the demo model in out_dir and return the path.

    The files are written to a temporary folder next to it and moved in one by one, the fingerprint last, so a
    process reading the folder meanwhile never sees half a file and a build cut short is rebuilt next time."""
    out = Path(out_dir)
    target = out.resolve() if out.is_symlink() else out
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.build.", dir=target.parent))
    try:
        _build_into(tmp)
        files = sorted(p for p in tmp.iterdir() if p.name != FINGERPRINT) + [tmp / FINGERPRINT]
        for path in files:
            os.chmod(path, 0o644)
            os.replace(path, target / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _build_into(out: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **MODEL_SIZE,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    # A pretrained LM's (tied) embeddings are far larger than a fresh init's; at the default scale the
    # logits stay flat whatever the adapter learns, so give them a pretrained-like scale.
    torch.nn.init.normal_(model.get_input_embeddings().weight, std=EMBEDDING_STD)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "README.md").write_text(
        "# demo-tiny\n\nRandom-init Llama-style model built offline by `python -m trainers demo-model`. "
        "It knows nothing until fine-tuned on the demo data.\n",
        encoding="utf-8",
    )
    (out / FINGERPRINT).write_text(json.dumps({"fingerprint": fingerprint()}) + "\n", encoding="utf-8")


def ensure(out_dir: str | Path = DEFAULT_DIR) -> Path:
    """Return the demo model dir, building it on first use.

    A model built from other demo data or sizes (its fingerprint differs, or it has none: built before
    fingerprints) is rebuilt: its tokenizer was trained on the old corpus.  A model built before the shipped chat
    template changed gets the new template (the tokenizer's template file only; the weights and vocabulary do not
    depend on it)."""
    out = Path(out_dir)
    stale = built_fingerprint(out) != fingerprint()
    if stale or not (out / "config.json").exists() or not (out / "tokenizer.json").exists():
        if stale and (out / "config.json").exists():
            log.info("Rebuilding the demo model in %s: the demo data it was built from changed.", out)
        build(out)
    else:
        refresh_chat_template(out)
    return out


def refresh_chat_template(out_dir: str | Path) -> bool:
    """Rewrite the saved chat template of a built demo model if it differs from the shipped one; True if rewritten."""
    saved = Path(out_dir) / SAVED_CHAT_TEMPLATE
    shipped = CHAT_TEMPLATE.read_text(encoding="utf-8")
    try:
        if saved.read_text(encoding="utf-8") == shipped:
            return False
    except (OSError, UnicodeDecodeError):
        pass  # missing or unreadable: write it
    try:
        # A unique temporary name, then one rename: processes refreshing at once never see half a file.
        fd, tmp = tempfile.mkstemp(prefix=f".{saved.name}.", suffix=".tmp", dir=saved.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(shipped)
            os.chmod(tmp, 0o644)
            os.replace(tmp, saved)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as e:
        log.warning("Could not update the demo model's chat template in %s (%s); it keeps the old one.", saved, e)
        return False
    log.info("Updated the demo model's chat template in %s.", saved)
    return True
