"""The Playground as a chat (issues 18 and 21): the model cache, multi-turn prompts, the empty-reply sentence, the
adapter dropdown, and authorization before the cache (another owner is refused even when the model is loaded)."""

import json
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pytest
import torch

from core.errors import StudioError
from evaluation import chat
from jobs import access
from ui import api_names, playground_tab
from ui.context import AppContext


class FakeModel:
    """Stands in for a PeftModel: records each prompt it is given and streams a fixed reply (or none)."""

    def __init__(self, tokenizer=None, reply: str = "cold", floats: int = 100):
        self.tokenizer, self.reply, self.prompts, self.adapter_on = tokenizer, reply, [], []
        self.weights = [torch.zeros(floats)]
        self._adapter = True

    def parameters(self):
        return iter(self.weights)

    def buffers(self):
        return iter([])

    @contextmanager
    def disable_adapter(self):
        self._adapter = False
        try:
            yield
        finally:
            self._adapter = True

    def generate(self, input_ids, streamer, **kwargs):
        self.prompts.append(self.tokenizer.decode(input_ids[0]))
        self.adapter_on.append(self._adapter)
        streamer.put(input_ids)  # the prompt (skipped by the streamer)
        ids = self.tokenizer(self.reply, add_special_tokens=False)["input_ids"] if self.reply else []
        for token in ids:
            streamer.put(torch.tensor([token]))
        streamer.end()


def fake_loader(tokenizer, **model_kwargs):
    def load(base, adapter, dtype):
        load.calls.append((base, adapter, dtype))
        load.models.append(FakeModel(tokenizer, **model_kwargs))
        return load.models[-1], tokenizer

    load.calls, load.models = [], []
    return load


@pytest.fixture
def tokenizer(demo_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_model_dir)


def add_run(ctx, owner, name, status="succeeded", task_type="CAUSAL_LM", adapter=True, method="sft"):
    run_dir = ctx.home / "runs" / f"{owner}-{name}"
    (run_dir / "adapter").mkdir(parents=True) if adapter else run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": status, "method": method}))
    if adapter:
        config = {"base_model_name_or_path": "demo-tiny", "task_type": task_type, "peft_type": "LORA"}
        (run_dir / "adapter" / "adapter_config.json").write_text(json.dumps(config))
    run_id = ctx.queue.store.add(owner, name, str(run_dir))
    ctx.queue.store.update(run_id, owner, status=status)
    return run_id


@pytest.fixture
def ctx(home, tokenizer):
    loader = fake_loader(tokenizer)
    return AppContext(home=home, online=False, chat_cache=chat.ModelCache(loader=loader))


def test_cache_loads_once_keys_by_adapter_and_evicts_least_recently_used():
    loader = fake_loader(None)  # each fake model holds 100 float32 = 400 bytes
    cache = chat.ModelCache(budget_bytes=1000, loader=loader)
    a = cache.get("base", "adapter-a", "float32")
    assert cache.get("base", "adapter-a", "float32") is a and cache.loads == 1  # the second request reuses it
    b = cache.get("base", "adapter-b", "float32")
    assert b is not a and cache.loads == 2  # another adapter on the same base is another entry
    assert cache.get("base", "adapter-a", "bfloat16") is not a and cache.loads == 3  # and so is another dtype
    # 1,200 bytes > 1,000: the least recently used (adapter-a in float32) went, the others stay
    assert cache.keys() == [("base", "adapter-b", "float32"), ("base", "adapter-a", "bfloat16")]
    cache.get("base", "adapter-b", "float32")  # touch b: now the bfloat16 entry is the oldest
    cache.get("base", "adapter-c", "float32")
    assert cache.keys() == [("base", "adapter-b", "float32"), ("base", "adapter-c", "float32")]
    assert cache.total_bytes() == 800 and cache.loads == 4


def test_the_second_turn_sees_the_first_turn_and_the_system_prompt(ctx):
    run_id = add_run(ctx, "local", "demo")
    first = list(playground_tab.compare(ctx, run_id, "What is the opposite of hot?", 0.0, 8, "local"))
    base_reply, tuned_reply = first[-1]
    assert (base_reply, tuned_reply) == ("cold", "cold")
    # histories as gr.Chatbot hands them over (normalised content parts)
    text = lambda s: [{"type": "text", "text": s}]  # noqa: E731
    base_history = [{"role": "user", "content": text("What is the opposite of hot?")}]
    base_history.append({"role": "assistant", "content": text("base said cold")})
    tuned_history = [base_history[0], {"role": "assistant", "content": text("tuned said cold")}]
    replies = playground_tab.compare(
        ctx, run_id, "And of up?", 0.0, 8, "local", base_history, tuned_history, system="Answer briefly."
    )
    assert list(replies)[-1] == ("cold", "cold")
    model = ctx.chat_cache.loader.models[0]
    assert ctx.chat_cache.loads == 1 and len(model.prompts) == 4  # one load for two turns on two sides
    assert model.adapter_on == [False, True, False, True]  # the base side runs with the adapter disabled
    base_prompt, tuned_prompt = model.prompts[2:]
    for prompt, own_reply in ((base_prompt, "base said cold"), (tuned_prompt, "tuned said cold")):
        assert "Answer briefly." in prompt and "What is the opposite of hot?" in prompt and "And of up?" in prompt
        assert own_reply in prompt
    assert "tuned said" not in base_prompt and "base said" not in tuned_prompt


def test_an_empty_reply_says_so(home, tokenizer):
    ctx = AppContext(home=home, online=False, chat_cache=chat.ModelCache(loader=fake_loader(tokenizer, reply="")))
    run_id = add_run(ctx, "local", "demo")
    assert list(playground_tab.compare(ctx, run_id, "hi", 0.0, 8, "local"))[-1] == (chat.EMPTY_REPLY,) * 2
    assert chat.EMPTY_REPLY == "(the model ended its reply immediately)"
    blank = AppContext(home=home, online=False, chat_cache=chat.ModelCache(loader=fake_loader(tokenizer, reply="\n\n")))
    run_id = add_run(blank, "local", "blank")
    assert list(playground_tab.compare(blank, run_id, "hi", 0.0, 8, "local"))[-1] == (chat.BLANK_REPLY,) * 2
    # shown in the history, it is not fed back to the model as its earlier reply
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": chat.EMPTY_REPLY}]
    assert chat.conversation(history, "again")[1] == {"role": "assistant", "content": ""}


def test_the_dropdown_lists_only_my_succeeded_chat_adapters(ctx):
    mine = add_run(ctx, "alice", "sft-demo")
    add_run(ctx, "alice", "failed", status="failed")
    add_run(ctx, "alice", "no-adapter", adapter=False)
    add_run(ctx, "alice", "scorer", task_type="SEQ_CLS", method="reward")
    add_run(ctx, "bob", "bobs")
    choices = playground_tab.adapter_choices(ctx, "alice")
    assert [value for _, value in choices] == [mine]
    label = choices[0][0]
    assert label.startswith("sft-demo · sft · ") and label.count(" · ") == 2
    assert playground_tab.adapter_choices(ctx, None) == []
    scorer = next(r.id for r in ctx.queue.list("alice") if r.name == "scorer")
    with pytest.raises(StudioError, match="is a reward model"):
        list(playground_tab.compare(ctx, scorer, "hi", 0.0, 8, "alice"))


def reply_endpoint(ctx):
    with gr.Blocks() as demo:
        playground_tab.build(ctx, gr.State(None))
    return next(f.fn for f in demo.fns.values() if f.api_name == api_names.PLAYGROUND_REPLY)


def test_another_owner_is_refused_even_when_the_model_is_cached(ctx, monkeypatch):
    monkeypatch.setenv("STUDIO_MULTI_USER", "1")
    alice_run = add_run(ctx, "alice", "sft-demo")
    reply = reply_endpoint(ctx)
    user = lambda name: gr.OAuthProfile({"preferred_username": name, "name": name, "picture": "", "profile": ""})  # noqa: E731
    base, tuned = reply(alice_run, "What is the opposite of hot?", profile=user("alice"))
    assert (base, tuned) == ("cold", "cold") and ctx.chat_cache.loads == 1
    model = ctx.chat_cache.loader.models[0]
    asked = len(model.prompts)
    adapter = str(Path(ctx.queue.get(alice_run, "alice").run_dir) / "adapter")
    with pytest.raises(gr.Error, match="neither one of your runs"):
        reply(alice_run, "hi", profile=user("bob"))
    with pytest.raises(gr.Error, match=access.LOCAL_ONLY.split(";")[0]):
        reply(adapter, "hi", profile=user("bob"))
    with pytest.raises(gr.Error, match="Sign in with Hugging Face .* to use the Playground"):
        reply(alice_run, "hi")
    assert ctx.chat_cache.loads == 1 and len(model.prompts) == asked  # bob got nothing out of the cache
    # the API's history: earlier turns as [message, base reply, adapter reply]
    reply(
        alice_run, "And of up?", 0.0, 8, [["What is the opposite of hot?", "b-cold", "t-cold"]], profile=user("alice")
    )
    assert "b-cold" in model.prompts[-2] and "t-cold" in model.prompts[-1]


def test_a_real_adapter_streams_both_sides_and_is_loaded_once(home, demo_model_dir):
    """The stock loader on the demo model and an (untrained) LoRA adapter: PeftModel, disable_adapter, streaming."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    ctx = AppContext(home=home, online=False, chat_cache=chat.ModelCache())
    run_id = add_run(ctx, "local", "real")
    adapter = Path(ctx.queue.get(run_id, "local").run_dir) / "adapter"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(demo_model_dir), LoraConfig(r=2, lora_alpha=4))
    model.save_pretrained(adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "demo-tiny"}))
    for turn in range(2):
        replies = list(playground_tab.compare(ctx, run_id, "What is the opposite of hot?", 0.8, 6, "local", seed=3))
        assert len(replies) >= 2 and all(replies[-1])
        if turn == 0:
            first = replies[-1]
    assert replies[-1] == first  # same seed, same decoding: the same replies
    assert ctx.chat_cache.loads == 1 and ctx.chat_cache.total_bytes() > 0
