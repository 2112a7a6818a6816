"""The demo model's chat template: plain ChatML for plain chats, plus tools, tool calls and reasoning,
with {% generation %} markers around exactly what the assistant produces."""

import hashlib
import json
import shutil

import pytest
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from core.paths import DEMO_DATA, TEMPLATES
from trainers import demo_model

PLAIN_CHATML = (TEMPLATES / "chat" / "chatml_generation.jinja").read_text(encoding="utf-8")

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Local time in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
]
CALL_WEATHER = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
CALL_TIME = '<tool_call>\n{"name": "get_time", "arguments": {"city": "Paris"}}\n</tool_call>'
FINAL = "It is 18 degrees and cloudy in Paris, and 14:05."


def tool_conversation():
    return [
        {"role": "system", "content": "You are a travel assistant."},
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "c2", "type": "function", "function": {"name": "get_time", "arguments": '{"city": "Paris"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "18 degrees, cloudy"},
        {"role": "tool", "tool_call_id": "c2", "content": "14:05"},
        {"role": "assistant", "content": FINAL},
    ]


TOOL_REPLIES = [f"{CALL_WEATHER}\n{CALL_TIME}<|im_end|>", f"{FINAL}<|im_end|>"]
# The system and user text, a tool output, the tools' schema and the turn headers: in the input, never in the labels.
NOT_TRAINED = [
    "You are a travel assistant.",
    "Weather and time in Paris?",
    "18 degrees, cloudy",
    "Current weather in a city",
    "<tool_response>",
    "<tools>",
    "<|im_start|>",
]


@pytest.fixture(scope="module")
def tok():
    return demo_model.build_tokenizer()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return demo_model.build(tmp_path_factory.mktemp("demo") / "demo-tiny")


def spans(tokenizer, ids, keep):
    """The decoded runs of consecutive kept tokens."""
    out, run = [], []
    for token, k in zip(ids, keep, strict=True):
        if k:
            run.append(token)
        elif run:
            out.append(run)
            run = []
    if run:
        out.append(run)
    return [tokenizer.decode(r) for r in out]


def masked(tokenizer, messages, **kwargs):
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True, **kwargs
    )
    return spans(tokenizer, out["input_ids"], out["assistant_masks"]), tokenizer.decode(out["input_ids"])


def demo_conversations():
    for path in sorted(DEMO_DATA.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "messages" in row:
                yield row["messages"]
            if "prompt" in row:
                yield row["prompt"]
                for key in ("chosen", "rejected"):  # GRPO's prompt rows have no replies
                    if key in row:
                        yield row["prompt"] + row[key]
    yield [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    yield [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Please greet Ada."},
        {"role": "assistant", "content": "Hello, Ada!"},
        {"role": "user", "content": "And Bob?"},
        {"role": "assistant", "content": "\nHello, Bob!\n"},
        {"role": "system", "content": "A late system turn."},
    ]


def test_the_demo_tokenizer_ships_the_tools_template(tok):
    from trl.chat_template_utils import (
        has_generation_markers,
        is_chat_template_prefix_preserving,
        is_chat_template_stop_token_trained,
        supports_tool_calling,
    )

    assert tok.chat_template == demo_model.CHAT_TEMPLATE.read_text(encoding="utf-8")
    assert demo_model.CHAT_TEMPLATE.name == "chatml_tools_generation.jinja"
    assert supports_tool_calling(tok)
    assert has_generation_markers(tok.chat_template)
    assert is_chat_template_prefix_preserving(tok)
    assert is_chat_template_stop_token_trained(tok)


def test_plain_conversations_render_byte_identically_to_plain_chatml(tok):
    count = 0
    for messages in demo_conversations():
        for add_generation_prompt in (False, True):
            kwargs = {"add_generation_prompt": add_generation_prompt}
            text = tok.apply_chat_template(messages, tokenize=False, **kwargs)
            assert text == tok.apply_chat_template(messages, tokenize=False, chat_template=PLAIN_CHATML, **kwargs)
            assert "You are Qwen" not in text and "<tools>" not in text
            new = tok.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True, **kwargs)
            old = tok.apply_chat_template(
                messages, return_dict=True, return_assistant_tokens_mask=True, chat_template=PLAIN_CHATML, **kwargs
            )
            assert new == old
            count += 1
    assert count > 800  # every row of every shipped demo file


def test_tool_calls_are_trained_and_tool_outputs_schema_and_prompts_are_not(tok):
    text = tok.apply_chat_template(tool_conversation(), tools=TOOLS, tokenize=False)
    assert text.startswith("<|im_start|>system\nYou are a travel assistant.\n\n# Tools\n\n")
    assert text.count("<|im_start|>system") == 1  # the system message and the tools are one turn
    assert "\n<tools>\n" + json.dumps(TOOLS[0]) + "\n" + json.dumps(TOOLS[1]) + "\n</tools>" in text
    assert "<|im_start|>assistant\n" + CALL_WEATHER + "\n" + CALL_TIME + "<|im_end|>\n" in text
    grouped = "<|im_start|>user\n<tool_response>\n18 degrees, cloudy\n</tool_response>\n<tool_response>\n14:05\n"
    assert grouped + "</tool_response><|im_end|>\n" in text  # two tool turns, one user turn
    assert "You are Qwen" not in text and '\\"' not in text  # no default prompt; arguments not encoded twice

    kept, everything = masked(tok, tool_conversation(), tools=TOOLS)
    assert kept == TOOL_REPLIES
    for part in NOT_TRAINED:
        assert part in everything
        assert not any(part in span for span in kept), part


def test_tool_calls_render_the_same_from_a_mapping_or_a_json_string_and_after_text(tok):
    as_string = tool_conversation()
    as_mapping = tool_conversation()
    for call in as_mapping[2]["tool_calls"]:
        call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    render = lambda m: tok.apply_chat_template(m, tools=TOOLS, tokenize=False)  # noqa: E731
    assert render(as_string) == render(as_mapping)
    for content in ("", None):
        as_mapping[2]["content"] = content
        assert render(as_mapping) == render(as_string)
    as_mapping[2]["content"] = "Let me look."
    kept, _ = masked(tok, as_mapping, tools=TOOLS)
    assert kept[0] == f"Let me look.\n{CALL_WEATHER}\n{CALL_TIME}<|im_end|>"


def test_tools_without_a_system_message_get_no_default_prompt(tok):
    messages = tool_conversation()[1:]
    text = tok.apply_chat_template(messages, tools=TOOLS, tokenize=False)
    assert text.startswith("<|im_start|>system\n# Tools\n\nYou may call one or more functions")
    assert "You are a" not in text and "Qwen" not in text


def test_reasoning_is_trained_inside_the_assistant_mask(tok):
    messages = [
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": "5", "reasoning_content": "Two plus three is five."},
    ]
    kept, everything = masked(tok, messages)
    assert kept == ["<think>\nTwo plus three is five.\n</think>\n\n5<|im_end|>"]
    assert everything.endswith("<|im_start|>assistant\n<think>\nTwo plus three is five.\n</think>\n\n5<|im_end|>\n")
    messages[1]["tool_calls"] = tool_conversation()[2]["tool_calls"]
    kept, _ = masked(tok, messages, tools=TOOLS)
    assert kept == [f"<think>\nTwo plus three is five.\n</think>\n\n5\n{CALL_WEATHER}\n{CALL_TIME}<|im_end|>"]


def test_keys_with_none_values_count_as_absent(tok):
    nones = {"name": None, "tool_calls": None, "tool_call_id": None, "reasoning_content": None}
    for messages in (tool_conversation(), next(iter(demo_conversations()))):
        padded = [{**nones, **m} for m in messages]
        for tools in (TOOLS, None):
            assert masked(tok, padded, tools=tools) == masked(tok, messages, tools=tools)


def test_sft_trainer_labels_exactly_the_assistant_parts(built, tmp_path):
    from trl import SFTConfig, SFTTrainer

    reasoning = [
        {"role": "user", "content": "What time is it in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "I should ask the clock.",
            "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "get_time", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "t", "content": "14:05"},
        {"role": "assistant", "content": "It is 14:05."},
    ]
    # Arrow gives every message every key (None where absent) and JSON-string tools, as TRL accepts.
    data = Dataset.from_list(
        [
            {"messages": tool_conversation(), "tools": json.dumps(TOOLS)},
            {"messages": reasoning, "tools": json.dumps(TOOLS[1:])},
        ]
    )
    assert data[0]["messages"][0]["tool_calls"] is None and data[1]["messages"][0]["reasoning_content"] is None
    tokenizer = AutoTokenizer.from_pretrained(built)
    args = SFTConfig(
        output_dir=str(tmp_path / "out"),
        assistant_only_loss=True,
        packing=False,
        # The demo tokenizer (512 merges learnt on the demo data) spends ~2 characters a token on JSON: the tools
        # preamble alone is ~280 tokens and row 0 is ~910, so 512 would truncate it; 1024 is the model's maximum.
        max_length=1024,
        use_cpu=True,
        bf16=False,
        report_to="none",
        per_device_train_batch_size=2,
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(built),
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
    )
    batch = next(iter(trainer.get_train_dataloader()))
    labels = batch["labels"]
    assert ((labels == -100) | (labels == batch["input_ids"])).all()
    kept = []
    for ids, row_labels in zip(batch["input_ids"].tolist(), labels.tolist(), strict=True):
        kept += spans(tokenizer, ids, [label != -100 for label in row_labels])
        everything = tokenizer.decode(ids)
        assert "<tools>" in everything and "<tool_response>\n14:05\n</tool_response>" in everything
    expected = TOOL_REPLIES + [
        f"<think>\nI should ask the clock.\n</think>\n\n{CALL_TIME}<|im_end|>",
        "It is 14:05.<|im_end|>",
    ]
    assert sorted(kept) == sorted(expected)


def test_ensure_refreshes_a_stale_template_without_rebuilding(built, tmp_path):
    old = tmp_path / "demo-tiny"
    shutil.copytree(built, old)
    (old / "chat_template.jinja").write_text(PLAIN_CHATML, encoding="utf-8")
    weights = old / "model.safetensors"
    before = (weights.stat().st_mtime_ns, hashlib.sha256(weights.read_bytes()).hexdigest())
    tokenizer_json = (old / "tokenizer.json").read_bytes()
    assert AutoTokenizer.from_pretrained(old).chat_template == PLAIN_CHATML

    assert demo_model.ensure(old) == old
    shipped = demo_model.CHAT_TEMPLATE.read_text(encoding="utf-8")
    assert AutoTokenizer.from_pretrained(old).chat_template == shipped
    assert (weights.stat().st_mtime_ns, hashlib.sha256(weights.read_bytes()).hexdigest()) == before
    assert (old / "tokenizer.json").read_bytes() == tokenizer_json
    assert sorted(p.name for p in old.iterdir()) == sorted(p.name for p in built.iterdir())  # no temporary left
    assert demo_model.refresh_chat_template(old) is False  # up to date: nothing written
