"""The offline demo model: deterministic, ChatML with {% generation %} markers, assistant-only masks."""

import hashlib

from transformers import AutoTokenizer

from trainers import demo_model


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_demo_model_build_is_deterministic(tmp_path):
    a = demo_model.build(tmp_path / "a")
    b = demo_model.build(tmp_path / "b")
    digests = _digest(a)
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= set(digests)
    assert digests == _digest(b)


def test_chat_template_marks_exactly_the_assistant_reply(demo_model_dir):
    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    assert "{% generation %}" in tok.chat_template or "{%- generation %}" in tok.chat_template
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Please greet Ada."},
        {"role": "assistant", "content": "Hello, Ada!"},
    ]
    out = tok.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    kept = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tok.decode(kept) == "Hello, Ada!<|im_end|>"
