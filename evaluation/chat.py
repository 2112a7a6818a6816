"""Chat with a base model and its adapter: a small per-process cache of loaded models, and streamed replies.

    cache = ModelCache()                                   # one per app (ui.context.AppContext.chat_cache)
    entry = cache.get(base_path, adapter)                  # loads once; later calls reuse it (LRU, byte budget)
    for base, tuned in both_replies(entry, base_msgs, tuned_msgs, Sampling(temperature=0.7, seed=1)): ...

The caller authorizes (which adapter may this user name?) BEFORE it asks the cache: the cache only knows paths.
Base and adapter share one loaded base: the base side generates inside PeftModel.disable_adapter().  Every
generation of one cached model holds that entry's lock, on the generating thread only, so concurrent requests on
one model take turns, requests on other models do not wait, and a reader that goes away never keeps a lock (its
generation stops at the next token).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ModelError

EMPTY_REPLY = "(the model ended its reply immediately)"
BLANK_REPLY = "(the reply was only blank space: line breaks or spaces)"
DEFAULT_SHARE = 0.25  # of the memory available when the cache is first used
FALLBACK_BUDGET = 2 * 1024**3


@dataclass(frozen=True)
class Sampling:
    """One decoding for both sides: temperature 0 is greedy; a seed makes sampled replies repeatable."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0

    def generate_kwargs(self) -> dict:
        kwargs = {"max_new_tokens": int(self.max_new_tokens), "do_sample": self.temperature > 0}
        if self.temperature > 0:
            kwargs.update(temperature=float(self.temperature), top_p=float(self.top_p))
        return kwargs


def text_of(content) -> str:
    """A message's text: a plain string, or gradio's normalised content ([{"type": "text", "text": ...}, ...])."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, list | tuple):
        return "".join(text_of(part) for part in content)
    return "" if content is None else str(content)


def conversation(history, message: str, system: str = "") -> list[dict]:
    """The messages a model sees: the optional system prompt, the earlier turns (user and assistant only, as
    plain text) and the new user message."""
    messages = [{"role": "system", "content": system.strip()}] if system and system.strip() else []
    for turn in history or []:
        role = turn.get("role") if isinstance(turn, dict) else None
        if role in ("user", "assistant"):
            text = text_of(turn.get("content"))
            messages.append({"role": role, "content": "" if text in (EMPTY_REPLY, BLANK_REPLY) else text})
    messages.append({"role": "user", "content": message})
    return messages


def model_bytes(model) -> int:
    """Bytes of a loaded model's parameters and buffers (what it holds in memory)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def available_bytes() -> int:
    """Free accelerator memory where there is one, else the machine's available memory (MemAvailable)."""
    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.mem_get_info()[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(FALLBACK_BUDGET / DEFAULT_SHARE)


def default_dtype() -> str:
    from trainers.models import hardware

    return "bfloat16" if hardware()["bf16"] else "float32"


def load_chat_model(base_path: str, adapter: str, dtype: str):
    """(PeftModel in eval mode on the accelerator if any, tokenizer) for a base model and its adapter."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainers.models import use_fallback_chat_template

    try:
        tokenizer = AutoTokenizer.from_pretrained(adapter)  # a run's adapter folder holds the trained tokenizer
    except (OSError, ValueError):
        tokenizer = AutoTokenizer.from_pretrained(base_path)
    use_fallback_chat_template(tokenizer)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=getattr(torch, dtype)).to(device)
        tuned = PeftModel.from_pretrained(model, adapter)
    except OSError as exc:
        raise ModelError(f"{adapter!r} could not be loaded on {base_path!r}: {str(exc).splitlines()[0]}") from exc
    return tuned.eval(), tokenizer


@dataclass
class Entry:
    """One cached (base, adapter, dtype): its model and tokenizer once loaded, and the lock its generations take."""

    key: tuple[str, str, str]
    model: object = None
    tokenizer: object = None
    nbytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelCache:
    """Loaded (base + adapter) models of this process, least recently used first out once their bytes pass
    `budget_bytes` (default: a quarter of the memory available at the first load).  The newest entry always
    stays, whatever its size.  `loader(base_path, adapter, dtype) -> (model, tokenizer)` is replaceable."""

    def __init__(self, budget_bytes: int | None = None, loader: Callable = load_chat_model):
        self.budget_bytes = budget_bytes
        self.loader = loader
        self.loads = 0
        self._entries: OrderedDict[tuple[str, str, str], Entry] = OrderedDict()
        self._lock = threading.Lock()  # guards the dict only: loads and generations never hold it

    def keys(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return list(self._entries)

    def total_bytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())

    def get(self, base_path: str, adapter: str, dtype: str | None = None) -> Entry:
        """The loaded entry for (base, adapter, dtype), loading it on first use (once, however many ask)."""
        key = (str(base_path), str(adapter), dtype or default_dtype())
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = Entry(key)
            self._entries.move_to_end(key)
        with entry.lock:  # a second request for a model being loaded waits for that load
            if entry.model is None:
                try:
                    entry.model, entry.tokenizer = self.loader(*key)
                except BaseException:
                    with self._lock:
                        if self._entries.get(key) is entry:
                            del self._entries[key]
                    raise
                entry.nbytes = model_bytes(entry.model)
                self.loads += 1
        self._evict(keep=key)
        return entry

    def _evict(self, keep) -> None:
        with self._lock:
            if self.budget_bytes is None:
                self.budget_bytes = int(available_bytes() * DEFAULT_SHARE)
            while sum(e.nbytes for e in self._entries.values()) > self.budget_bytes:
                oldest = next((k for k in self._entries if k != keep), None)
                if oldest is None:
                    break
                del self._entries[oldest]  # a generation still using it finishes; then it is freed


def prompt_inputs(tokenizer, messages: list[dict]):
    """The chat template applied to the conversation, ready for generate (input_ids, attention_mask)."""
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)


class _Stop:
    """A StoppingCriteria that ends a generation once its reader has gone away."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __deepcopy__(self, memo):  # generate may copy its criteria; the copy must watch the same event
        return self

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def stream_reply(entry: Entry, messages: list[dict], sampling: Sampling, adapter: bool = True) -> Iterator[str]:
    """The reply so far, growing as tokens arrive; a reply that ends at once is EMPTY_REPLY, one of blank space
    only (it would show as an empty box) ends as BLANK_REPLY."""
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    tokenizer = entry.tokenizer
    inputs = prompt_inputs(tokenizer, messages)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    gone, failure = threading.Event(), []

    def generate():
        try:
            with entry.lock:  # one generation per cached model at a time; held by this thread only
                if gone.is_set():
                    return
                import torch

                torch.manual_seed(int(sampling.seed))
                device = next(entry.model.parameters()).device
                kwargs = {k: v.to(device) for k, v in inputs.items()}
                off = entry.model.disable_adapter() if not adapter else nullcontext()
                with off:
                    entry.model.generate(
                        **kwargs,
                        **sampling.generate_kwargs(),
                        pad_token_id=tokenizer.eos_token_id
                        if tokenizer.pad_token_id is None
                        else tokenizer.pad_token_id,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_Stop(gone)]),
                    )
        except Exception as exc:  # noqa: BLE001 - handed to the reader, which raises it
            failure.append(exc)
        finally:
            streamer.end()  # the reader's loop ends however generate ended

    worker = threading.Thread(target=generate, daemon=True, name="playground-generate")
    worker.start()
    text = ""
    try:
        for piece in streamer:
            text += piece
            if piece:
                yield text
    finally:
        gone.set()
    worker.join()  # it has ended its stream: only its lock is left to release (a reader that left does not wait)
    if failure:
        raise failure[0]
    if not text.strip():
        yield BLANK_REPLY if text else EMPTY_REPLY


def both_replies(
    entry: Entry, base_messages: list[dict], tuned_messages: list[dict], sampling: Sampling
) -> Iterator[tuple[str, str]]:
    """(base reply, adapter reply) as they stream: the base first, then the adapter, with the same decoding."""
    base = ""
    for base in stream_reply(entry, base_messages, sampling, adapter=False):
        yield base, ""
    for tuned in stream_reply(entry, tuned_messages, sampling, adapter=True):
        yield base, tuned
