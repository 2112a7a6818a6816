"""A loopback fake of an OpenAI-compatible chat-completions endpoint, the protocol Hugging Face Inference Providers
(router.huggingface.co/v1) and Inference Endpoints speak, for offline tests of real `huggingface_hub` clients.

    with FakeInference(reply=lambda req: "Verdict: A") as fake:      # fake.base_url == "http://127.0.0.1:<port>/v1"
        InferenceClient(base_url=fake.base_url, token="hf_...").chat_completion(messages, model="org/judge")
        assert fake.requests[-1].token == "hf_..."

Replies: `reply` is a function of the request (a ChatRequest) returning the assistant's text, or a list used as a
queue (one text per request, in arrival order); `script(...)` replaces it.  `fail(status)` answers the next
requests with an HTTP error instead (401, 402, 429, 500...); `tokens` (a set) makes every other bearer token a
401; `models` (a set) makes every other model a 404; `delay_s` holds every answer back (timeouts).  Every request
is recorded (`requests`), faulted or not, with its headers and parsed JSON body.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class ChatRequest:
    method: str
    path: str
    headers: dict[str, str] = field(repr=False)  # lower-cased names
    body: dict = field(repr=False)
    status: int = 0  # what the fake answered

    @property
    def token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages") or []

    @property
    def text(self) -> str:
        """Every message's content, joined: what a script looks for replies in."""
        return "\n".join(str(m.get("content") or "") for m in self.messages)

    def first_of(self, *needles: str) -> str | None:
        """Which of `needles` appears first in the request's text (None: none of them)."""
        found = [(self.text.find(n), n) for n in needles if n in self.text]
        return min(found)[1] if found else None


@dataclass
class Failure:
    status: int
    message: str
    times: int
    headers: dict[str, str]


def completion(text: str | None, model: str | None, number: int) -> dict:
    """A chat.completion object as OpenAI-compatible servers return it."""
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model or "fake",
        "system_fingerprint": "fakeinference",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class FakeInference:
    """Start with `.start()` (returns the url) or as a context manager; stop with `.stop()`."""

    def __init__(
        self,
        reply: Callable[[ChatRequest], str | None] | Iterable[str] | str = "Verdict: tie",
        *,
        tokens: set[str] | None = None,
        models: set[str] | None = None,
        delay_s: float = 0.0,
    ):
        self.tokens, self.models, self.delay_s = tokens, models, delay_s
        self.requests: list[ChatRequest] = []
        self._failures: list[Failure] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.script(reply)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeInference is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI-compatible client takes as its base URL (it appends /chat/completions)."""
        return self.url + "/v1"

    def start(self) -> str:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            self._server.daemon_threads = True
            self._server.fake = self
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="fakeinference", daemon=True
            )
            self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeInference:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------------------------------------------
    def script(self, reply: Callable[[ChatRequest], str | None] | Iterable[str] | str) -> None:
        """What the next requests are answered: a function of the request, a queue of texts, or one text."""
        with self._lock:
            if callable(reply):
                self._reply, self._queue = reply, None
            elif isinstance(reply, str):
                self._reply, self._queue = (lambda _request: reply), None
            else:
                self._reply, self._queue = None, deque(reply)

    def fail(self, status: int, times: int = 1, message: str | None = None, headers: dict | None = None) -> None:
        """Answer the next `times` chat requests with HTTP `status` and an OpenAI-style JSON error."""
        message = message or {401: "Invalid credentials in Authorization header", 402: "You have exceeded your "
                              "monthly included credits", 429: "Rate limit reached"}.get(status, "Internal error")  # fmt: skip
        with self._lock:
            self._failures.append(Failure(status, message, times, dict(headers or {})))

    def clear(self) -> None:
        """Forget recorded requests and pending failures."""
        with self._lock:
            self.requests.clear()
            self._failures.clear()

    # -- serving -----------------------------------------------------------------------------------------------
    def _answer(self, request: ChatRequest) -> tuple[int, dict, dict]:
        """(status, JSON body, extra headers) for one request."""
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
            failure = next((f for f in self._failures if f.times > 0), None)
            if failure is not None:
                failure.times -= 1
        if request.method != "POST" or not request.path.rstrip("/").endswith("/chat/completions"):
            return 404, {"error": f"Not found: {request.method} {request.path}"}, {}
        if failure is not None:
            return failure.status, {"error": {"message": failure.message, "type": "fake"}}, failure.headers
        if request.token is None or (self.tokens is not None and request.token not in self.tokens):
            return 401, {"error": {"message": "Invalid credentials in Authorization header"}}, {}
        if self.models is not None and request.model not in self.models:
            return 404, {"error": {"message": f"The requested model '{request.model}' does not exist"}}, {}
        if not request.messages:
            return 422, {"error": {"message": "messages: field required"}}, {}
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            text = self._queue.popleft() if self._queue is not None and self._queue else None
            reply = self._reply
        if reply is not None:
            text = reply(request)
        elif text is None:
            return 500, {"error": {"message": "FakeInference: the scripted queue is empty"}}, {}
        return 200, completion(text, request.model, number), {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = ChatRequest(self.command, self.path.split("?")[0], headers, body if isinstance(body, dict) else {})
        status, payload, extra = self.server.fake._answer(request)
        request.status = status
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass

    do_POST = do_GET = _handle
