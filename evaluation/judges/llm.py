"""The pairwise LLM judge of the comparison report: which of two arms' replies to the same prompt is better.

Every prompt is judged twice, arm A's reply shown first, then arm B's reply shown first.  A prompt is a win for an
arm only when both orders pick it; a verdict that flips with the order, a "tie" verdict in either order and a
verdict that cannot be parsed (counted apart) make the prompt a tie.  Win rate = (wins + ties / 2) / prompts.

Backends (JudgeSettings.backend):
- "inference": Hugging Face Inference Providers, through `huggingface_hub.InferenceClient` chat completions with
  the signed-in user's token, passed in by the caller (never read from the environment or a file: on a shared
  Space the environment's HF_TOKEN is the Space owner's).  A named provider travels as the router's documented
  `model:provider` suffix with provider "auto" at the client, so huggingface_hub never looks the provider up on the
  Hub with the environment's token.  `base_url` points the client at any OpenAI-compatible endpoint instead (an
  Inference Endpoint, a local server, the tests' loopback fake).
- "local": a Hub model id or a local path under transformers: its chat template, greedy generation, on the GPU
  when there is one.

The judge prompt is templates/judges/<template>.md; its name and the sha256 of its text go into the report with
the other settings (JudgeSettings.describe).  Provider failures become one sentence (JudgeError); the token never
appears in a message, a log line or a record.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from core import settings as studio_settings
from core.errors import ConfigError, StudioError, user_message
from core.paths import TEMPLATES
from core.secrets import TOKEN_SHAPES
from trainers.hub_errors import RETRY_STATUSES, is_connection_error, status_of, with_retries
from trainers.models import hardware, resolve_model_path

log = logging.getLogger("evaluation.judge")

JUDGE_TEMPLATES = TEMPLATES / "judges"
BACKENDS = ("inference", "local")
VERDICTS = ("A", "B", "tie")  # what a parsed verdict names; INVALID when it cannot be parsed
INVALID = "invalid"
RAW_CHARS = 1500  # each judge text kept in a record: its end, where the verdict is
RETRY_DELAY_S = 2.0  # 5xx and dropped connections are retried twice (trainers.hub_errors.with_retries)
TEMPERATURE = 0  # greedy: the same prompt gets the same verdict
WIN_RATE_RULE = (
    "win rate = (wins + ties / 2) / prompts; a prompt is a win only when both orders (A shown first, B shown first) "
    "pick the same arm; a verdict that flips with the order, a 'tie' verdict or an unparseable verdict makes it a tie"
)
_VERDICT_LINE = re.compile(r"^[*_`\s]*verdict\s*:\s*[*_`\s]*(a|b|tie)[*_`.\s]*$", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
LOCAL_FILES = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt", "*.tiktoken"]  # no pickles, no code


class JudgeError(StudioError):
    """The judge could not finish; the message is one sentence.  `records`: the prompts judged before it failed."""

    def __init__(self, message: str, records: list[dict] | None = None):
        super().__init__(message)
        self.records = records or []


@dataclass(frozen=True)
class JudgeSettings:
    """What the judge is; everything here but base_url's absence goes into the report (describe())."""

    model: str
    backend: str = "inference"
    provider: str = "auto"  # inference: "auto", a policy ("fastest", "cheapest") or a provider name ("together")
    base_url: str | None = None  # inference: an OpenAI-compatible endpoint instead of the Hugging Face router
    max_tokens: int = 384  # the judge's reply: a short explanation, then the verdict line
    timeout_s: float = 120.0  # inference: per call
    concurrency: int = 4  # inference: calls in flight at once (local: always 1)
    template: str = "pairwise"  # templates/judges/<template>.md

    @classmethod
    def from_dict(cls, raw: Mapping | JudgeSettings | None) -> JudgeSettings:
        """Validate a `judge:` mapping; a wrong key or value is a ConfigError naming it."""
        if isinstance(raw, JudgeSettings):
            return raw.validated()
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            hint = " (the token is never a setting: it is the signed-in user's)" if "token" in unknown else ""
            raise ConfigError(f"Unknown judge keys {unknown}: use {sorted(known)}{hint}.")
        if not raw.get("model"):
            raise ConfigError("The judge needs judge.model: a Hub model id (or, for backend local, a local path).")
        return cls(**raw).validated()

    def validated(self) -> JudgeSettings:
        if self.backend not in BACKENDS:
            raise ConfigError(f"judge.backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}.")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError("judge.model must name a model: a Hub model id, or for backend local a local path.")
        if not isinstance(self.provider, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", self.provider):
            raise ConfigError(f"judge.provider must be auto or a provider name like together, not {self.provider!r}.")
        for key, low, high in (("max_tokens", 1, 32768), ("concurrency", 1, 32)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"judge.{key} must be a whole number from {low} to {high}, not {value!r}.")
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, int | float) or self.timeout_s <= 0:
            raise ConfigError(f"judge.timeout_s must be a positive number of seconds, not {self.timeout_s!r}.")
        if not isinstance(self.template, str) or not _TEMPLATE_NAME.match(self.template):
            raise ConfigError(f"judge.template must be the name of a file in templates/judges/, not {self.template!r}.")
        if not (JUDGE_TEMPLATES / f"{self.template}.md").is_file():
            names = sorted(p.stem for p in JUDGE_TEMPLATES.glob("*.md"))
            raise ConfigError(f"judge.template {self.template!r} does not exist: choose one of {names}.")
        if self.base_url is not None:
            _check_base_url(self.base_url)
        return self

    @property
    def routed_model(self) -> str:
        """The model as the router takes it: `id:provider` picks a provider, a plain id lets the router choose."""
        if self.backend != "inference" or self.provider == "auto" or ":" in self.model:
            return self.model
        return f"{self.model}:{self.provider}"

    @cached_property
    def template_text(self) -> str:
        return (JUDGE_TEMPLATES / f"{self.template}.md").read_text(encoding="utf-8")

    def describe(self) -> dict:
        """The settings as the report records them (never a token)."""
        out = {
            "backend": self.backend,
            "model": self.model,
            "provider": self.provider if self.backend == "inference" else None,
            "temperature": TEMPERATURE,
            "max_tokens": self.max_tokens,
            "template": self.template,
            "template_sha256": hashlib.sha256(self.template_text.encode("utf-8")).hexdigest(),
        }
        if self.backend == "inference" and self.base_url:
            out["base_url"] = self.base_url
        return out


def _check_base_url(url: str) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"judge.base_url must be an http(s) URL of an OpenAI-compatible endpoint, not {url!r}.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("judge.base_url must not carry credentials, a query or a fragment: the token is sent apart.")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ConfigError("judge.base_url must use https: your token would travel in clear text over http.")
    if parts.scheme == "http" and studio_settings.multi_user():
        raise ConfigError("On the shared Space judge.base_url must be an https endpoint, not this machine.")


# --- the prompt and the verdict ------------------------------------------------------------------------------


def render_conversation(messages: Sequence[Mapping]) -> str:
    """The conversation the replies answer, one turn after another, as the judge reads it."""
    turns = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # multimodal parts: their text
            content = "\n".join(str(p.get("text", "")) if isinstance(p, Mapping) else str(p) for p in content)
        turns.append(f"[{message.get('role', 'user')}]\n{'' if content is None else content}".rstrip())
    return "\n\n".join(turns)


def judge_prompt(template: str, messages: Sequence[Mapping], first: str, second: str) -> str:
    """The template with its {{conversation}}, {{reply_a}} (shown first) and {{reply_b}} filled in, in one pass (a
    reply that contains a placeholder stays as written)."""
    values = {"conversation": render_conversation(messages), "reply_a": first, "reply_b": second}
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def parse_verdict(text: str | None) -> str:
    """ "A", "B" or "tie" from the judge's last non-empty line ("Verdict: A", any case and spacing, markdown
    emphasis or a final full stop allowed); anything else is "invalid"."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    match = _VERDICT_LINE.match(lines[-1]) if lines else None
    if not match:
        return INVALID
    word = match.group(1).lower()
    return "tie" if word == "tie" else word.upper()


def outcome(first_order: str, second_order: str) -> str:
    """ "a" or "b" when both orders pick that arm, else "tie" (verdicts in arm terms, see judge_pairs)."""
    if first_order == second_order == "A":
        return "a"
    if first_order == second_order == "B":
        return "b"
    return "tie"


def _clip(text: str) -> str:
    return text if len(text) <= RAW_CHARS else "…" + text[-RAW_CHARS:]


# --- the judge -----------------------------------------------------------------------------------------------


class PairwiseJudge:
    """One judge model behind one backend.  `ask(prompt)` returns the judge's text for one filled-in prompt.

    token: the signed-in user's Hugging Face token (inference: required; local: only to download a gated or
    private model), kept in memory for this judge only."""

    def __init__(self, settings: Mapping | JudgeSettings, token: str | None = None):
        self.settings = JudgeSettings.from_dict(settings)
        self._token = token or None
        self._client = None
        self._local = None
        if self.settings.backend == "inference" and not self._token:
            raise JudgeError(
                "The inference judge calls Inference Providers with your own Hugging Face token: sign in "
                "(or pass the token) and run it again, or use judge.backend: local."
            )
        self._lock = threading.Lock()  # the client is made once, whichever of the concurrent calls comes first

    def __repr__(self) -> str:
        return f"PairwiseJudge({self.settings.backend}, {self.settings.model!r})"

    @property
    def concurrency(self) -> int:
        return self.settings.concurrency if self.settings.backend == "inference" else 1

    def scrub(self, text: str) -> str:
        """`text` with the token (and anything shaped like one) taken out."""
        if self._token:
            text = text.replace(self._token, "[token]")
        return TOKEN_SHAPES.sub("[token]", text)

    def ask(self, prompt: str) -> str:
        if self.settings.backend == "inference":
            return self._ask_inference(prompt)
        return self._ask_local(prompt)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._local = None

    def __enter__(self) -> PairwiseJudge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- inference --------------------------------------------------------------------------------------------
    def _inference_client(self):
        with self._lock:
            return self._make_client()

    def _make_client(self):
        if self._client is None:
            from huggingface_hub import InferenceClient

            s = self.settings
            if s.base_url:  # base_url and model are exclusive in InferenceClient: the model goes in the payload
                self._client = InferenceClient(base_url=s.base_url, token=self._token, timeout=s.timeout_s)
            else:
                self._client = InferenceClient(
                    model=s.routed_model, provider="auto", token=self._token, timeout=s.timeout_s
                )
        return self._client

    def _ask_inference(self, prompt: str) -> str:
        s = self.settings
        client = self._inference_client()

        def call():
            return client.chat_completion(
                [{"role": "user", "content": prompt}],
                model=s.routed_model,
                max_tokens=s.max_tokens,
                temperature=TEMPERATURE,
            )

        try:
            response = with_retries(call, "judge call", delay_s=RETRY_DELAY_S)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence
            log.warning("judge call failed: %s %s", type(exc).__name__, status_of(exc) or "")
            raise JudgeError(self.scrub(self.error_message(exc))) from None
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        return getattr(message, "content", None) or ""

    def error_message(self, exc: BaseException) -> str:
        """One sentence for a failed judge call (the caller scrubs it)."""
        from huggingface_hub import errors as hub_errors

        s = self.settings
        where = f"the endpoint {s.base_url}" if s.base_url else "Hugging Face Inference Providers"
        model = f"{s.model} (provider {s.provider})" if not s.base_url else s.model
        status = status_of(exc)
        detail = _server_detail(exc)
        if isinstance(exc, StudioError):
            return str(exc)
        if status == 401:
            return (
                f"{where} refused your Hugging Face token (401): sign in again; a fine-grained token needs the "
                "permission 'Make calls to Inference Providers'."
            )
        if status == 403:
            return (
                f"Your token may not call {model} on {where} (403): accept the model's terms on its Hub page, "
                "or use a token with the permission 'Make calls to Inference Providers'."
            )
        if status == 402:
            return (
                "Your Inference Providers credits are used up (402): add credits or a payment method at "
                "huggingface.co/settings/billing, or use judge.backend: local."
            )
        if status == 429:
            return (
                f"{where} is rate-limiting your calls or your quota is reached (429): wait a few minutes and run "
                "the judge again, lower judge.concurrency, pick another judge.provider, or use judge.backend: local."
            )
        if status == 404 or (status in (400, 422) and _unknown_model(detail)):
            return (
                f"The judge model {model} is not available on {where} ({status}): check judge.model and "
                "judge.provider against the model's Inference Providers list on its Hub page."
            )
        if status in RETRY_STATUSES or (status or 0) >= 500:
            return (
                f"{where} answered with a server error ({status}) three times: try again in a few minutes or pick "
                "another judge.provider."
            )
        if isinstance(exc, hub_errors.InferenceTimeoutError) or type(exc).__name__.endswith("Timeout"):
            return (
                f"The judge model {model} did not answer within {s.timeout_s:g} s: raise judge.timeout_s, lower "
                "judge.max_tokens, or pick a faster judge.provider."
            )
        if isinstance(exc, hub_errors.OfflineModeIsEnabled):
            return "HF_HUB_OFFLINE is set, so the inference judge cannot call Inference Providers: use judge.backend: local."
        if is_connection_error(exc):
            return f"{where} could not be reached: check the network and run the judge again."
        if status in (400, 413, 422):
            return f"{where} rejected the judge request ({status}: {detail or 'no reason given'})."
        if isinstance(exc, ValueError):  # huggingface_hub's own checks (provider, model, token shape)
            return f"The judge could not call {model}: {_first_line(str(exc))}."
        return f"The judge call failed ({user_message(exc).rstrip('.')})."

    # -- local ------------------------------------------------------------------------------------------------
    def _load_local(self):
        if self._local is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            s = self.settings
            hw = hardware()
            if s.model.startswith(("/", "./", "../", "~")) and not Path(s.model).expanduser().exists():
                raise JudgeError(
                    f"The judge model path {s.model} does not exist: use a Hub model id or a model folder."
                )
            try:
                path = self._local_files(resolve_model_path(s.model))
                tokenizer = AutoTokenizer.from_pretrained(path)
                dtype = torch.bfloat16 if hw["bf16"] else (torch.float16 if hw["device"] == "cuda" else torch.float32)
                model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(hw["device"]).eval()
            except JudgeError:
                raise
            except Exception as exc:  # noqa: BLE001 - one sentence
                log.warning("judge model %s failed to load: %s", s.model, type(exc).__name__)
                reason = self.scrub(user_message(exc)).rstrip(".")
                raise JudgeError(f"The judge model {s.model} could not be loaded ({reason}).") from None
            if tokenizer.chat_template is None:
                raise JudgeError(f"The judge model {s.model} has no chat template: use an instruction-tuned model.")
            self._local = (model, tokenizer)
        return self._local

    def _local_files(self, name_or_path: str) -> str:
        """A folder with the model's files.  A Hub id is downloaded here with the user's token or anonymously, never
        with the environment's (transformers lists a repo's files without the token it is given), and transformers
        then only reads the folder."""
        if Path(name_or_path).expanduser().is_dir():
            return str(Path(name_or_path).expanduser())
        from huggingface_hub import HfApi, constants, snapshot_download
        from huggingface_hub import errors as hub_errors

        token = self._token or False
        if not constants.HF_HUB_OFFLINE:  # the cache is shared: a private model cached for one user is not another's
            try:
                HfApi(token=token).auth_check(name_or_path)
            except Exception as exc:
                refused = isinstance(exc, hub_errors.RepositoryNotFoundError | hub_errors.GatedRepoError)
                if refused or status_of(exc) in (401, 403, 404):
                    raise JudgeError(
                        f"The judge model {name_or_path} was not found on the Hub, or it is private or gated and your "
                        "account cannot read it: check judge.model, or sign in with an account that can."
                    ) from None
                # the Hub is unreachable or failing: the cache decides, as for any download
        return snapshot_download(name_or_path, token=token, allow_patterns=LOCAL_FILES)

    def _ask_local(self, prompt: str) -> str:
        import torch

        from evaluation.metrics import _end_ids, reply_text

        model, tokenizer = self._load_local()
        inputs = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        length = int(inputs["input_ids"].shape[1])
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and length + self.settings.max_tokens > limit:
            return f"(not judged: the prompt is {length} tokens and judge.max_tokens {self.settings.max_tokens}, over the judge model's {limit})"
        device = next(model.parameters()).device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        with torch.no_grad():
            ids = model.generate(
                **inputs,
                max_new_tokens=self.settings.max_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            )
        new = [int(i) for i in ids[0][length:]]
        return reply_text(tokenizer, new, _end_ids(model, tokenizer))


def _server_detail(exc: BaseException) -> str:
    """The server's own reason, from a JSON error body ({"error": "..."} or {"error": {"message": "..."}})."""
    response = getattr(exc, "response", None)
    try:
        body = response.json() if response is not None else None
    except Exception:  # noqa: BLE001 - not JSON
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    if not error and isinstance(body, dict):
        error = body.get("message") or body.get("detail")
    return _first_line(str(error)) if error else ""


def _unknown_model(detail: str) -> bool:
    text = detail.lower()
    return "model" in text and any(w in text for w in ("not found", "does not exist", "not supported", "unknown"))


def _first_line(text: str) -> str:
    return ((text.strip().splitlines() or [""])[0])[:200].rstrip(".")


# --- judging pairs -------------------------------------------------------------------------------------------


def judge_pairs(
    prompts: list[list[dict]],
    replies_a: list[str],
    replies_b: list[str],
    settings: Mapping | JudgeSettings,
    *,
    token: str | None = None,
    judge: PairwiseJudge | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Judge arm A's against arm B's reply to every prompt, in both orders.  One record per prompt:

        {"prompt_index": i, "first_order": v1, "second_order": v2, "outcome": "a" | "b" | "tie", "raw": [t1, t2]}

    v1 is the verdict with A's reply shown first, v2 with B's shown first, both translated to arms: "A", "B",
    "tie" or "invalid" (unparseable); raw holds the two judge texts in that order, clipped to their last
    RAW_CHARS characters.  token: the signed-in user's (see PairwiseJudge); judge: an open judge to reuse instead
    (its own settings then apply).  progress(done, total) is called after each prompt.  A failed call raises
    JudgeError (one sentence; .records holds the prompts judged before it)."""
    if not len(prompts) == len(replies_a) == len(replies_b):
        raise ValueError(f"{len(prompts)} prompts, {len(replies_a)} A replies and {len(replies_b)} B replies")
    own = judge is None
    judge = judge or PairwiseJudge(settings, token)
    template = judge.settings.template_text
    done: dict[int, dict] = {}
    stop = threading.Event()  # set at the first failure: no call starts after it

    def one(i: int) -> dict | None:
        a, b = str(replies_a[i]), str(replies_b[i])
        texts = []
        for first, second in ((a, b), (b, a)):
            if stop.is_set():
                return None
            try:
                texts.append(judge.ask(judge_prompt(template, prompts[i], first, second)))
            except BaseException:
                stop.set()  # before this future completes, so the next queued prompt already sees it
                raise
        v1 = parse_verdict(texts[0])
        v2 = {"A": "B", "B": "A"}.get(v := parse_verdict(texts[1]), v)  # B's reply was shown as "A"
        return {
            "prompt_index": i,
            "first_order": v1,
            "second_order": v2,
            "outcome": outcome(v1, v2),
            "raw": [_clip(judge.scrub(t)) for t in texts],
        }

    failed: BaseException | None = None
    try:
        with ThreadPoolExecutor(max_workers=judge.concurrency, thread_name_prefix="judge") as pool:
            pending = {pool.submit(one, i) for i in range(len(prompts))}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                failed = failed or next((f.exception() for f in finished if f.exception() is not None), None)
                if failed is not None:
                    stop.set()
                    finished, pending = finished | wait(pending).done, set()
                for future in finished:
                    if future.exception() is None and future.result() is not None:
                        done[future.result()["prompt_index"]] = future.result()
                        if progress and failed is None:
                            progress(len(done), len(prompts))
    finally:
        if own:
            judge.close()
    if failed is not None:
        records = [done[i] for i in sorted(done)]
        if not isinstance(failed, JudgeError):
            log.warning("judge failed: %s", type(failed).__name__)
        message = str(failed) if isinstance(failed, JudgeError) else judge.scrub(user_message(failed))
        raise JudgeError(message, records) from None
    records = [done[i] for i in sorted(done)]
    log.info("judged %d prompts: %s", len(records), {k: v for k, v in summarize(records).items() if k != "rule"})
    return records


def summarize(records: list[dict], settings: Mapping | JudgeSettings | None = None) -> dict:
    """The report's judge section: counts, where the ties come from, the win rates with their rule, the position
    bias seen, and the judge's settings (when given)."""
    n = len(records)
    wins_a = sum(r["outcome"] == "a" for r in records)
    wins_b = sum(r["outcome"] == "b" for r in records)
    ties = n - wins_a - wins_b
    verdicts = [(r["first_order"], r["second_order"]) for r in records]
    with_invalid = sum(INVALID in pair for pair in verdicts)
    flips = sum(INVALID not in pair and set(pair) == {"A", "B"} for pair in verdicts)
    decisive = [v for pair in verdicts for v in pair if v in ("A", "B")]
    # position bias: in the first order the first-shown reply is A's, in the second it is B's
    first_shown = sum(p[0] == "A" for p in verdicts) + sum(p[1] == "B" for p in verdicts)
    out = {
        "prompts": n,
        "wins_a": wins_a,
        "wins_b": wins_b,
        "ties": ties,
        "ties_from_flips": flips,
        "ties_from_invalid": with_invalid,
        "ties_declared": ties - flips - with_invalid,  # a "tie" verdict in at least one order, the other not opposed
        "invalid_verdicts": sum(v == INVALID for pair in verdicts for v in pair),
        "verdicts": 2 * n,
        "decisive_verdicts": len(decisive),
        "first_shown_preferred": first_shown,  # of decisive_verdicts; about half when the judge has no position bias
        "win_rate_a": round((wins_a + ties / 2) / n, 4) if n else None,
        "win_rate_b": round((wins_b + ties / 2) / n, 4) if n else None,
        "rule": WIN_RATE_RULE,
    }
    if settings is not None:
        out["settings"] = JudgeSettings.from_dict(settings).describe()
    return out
