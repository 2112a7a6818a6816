"""A loopback fake of the Hugging Face Hub HTTP API, good enough for the real `huggingface_hub`, `transformers`
and `datasets` clients (downloads, repo info, tree listings, auth errors, commits and LFS uploads).

    with FakeHub(tmp_path, tokens={"hf_good": "alice"}) as hub:   # hub.url == "http://127.0.0.1:<port>"
        hub.add_repo("alice/tiny", {"config.json": b"{}"})
        ...                                                        # point HF_ENDPOINT at hub.url (see fixture.py)
        assert hub.requests[-1].token == "hf_good"

Routes live in routes_read.py (downloads, info, listings, whoami, auth-check), routes_write.py (repo creation,
commits, LFS) and routes_spaces.py (Space runtime: pause, restart). `hub.inject(...)` makes chosen requests fail
(an HTTP error status, or a dropped connection) to test the clients' error handling and retries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .storage import Repo, RepoStore

CHUNK = 1 << 20


class HubError(Exception):
    """An error response shaped like the Hub's: JSON {"error": ...} plus X-Error-Code / X-Error-Message headers."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


@dataclass
class Response:
    status: int = 200
    body: bytes | Path = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj, status: int = 200, headers: dict | None = None) -> Response:
        return cls(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})


@dataclass(frozen=True)
class User:
    name: str
    role: str = "write"  # "read" or "write"
    orgs: tuple[str, ...] = ()

    def owns(self, namespace: str) -> bool:
        return namespace == self.name or namespace in self.orgs


@dataclass
class RecordedRequest:
    method: str
    path: str  # raw path, without the query string
    query: str
    authorized: bool  # an Authorization header was sent
    token: str | None  # the bearer token sent, if any
    host: str = ""  # Host header: "localhost:<port>" for the LFS "CDN", "127.0.0.1:<port>" for the Hub
    status: int = 0  # 0: no response sent (a dropped connection, see FakeHub.inject)
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # lower-cased names
    injected: bool = False  # answered by an injected fault (FakeHub.inject), not by the route


@dataclass
class Fault:
    """An injected failure (see FakeHub.inject); `hits` counts the requests it answered so far."""

    fragment: str
    status: int | None
    drop: bool
    times: int
    method: str | None
    message: str
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    @property
    def remaining(self) -> int:
        return self.times - self.hits

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and self.fragment in path and self.method in (None, method)


@dataclass
class Ctx:
    """What a route handler gets: the parsed request and the hub."""

    hub: FakeHub
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    token: str | None
    user: User | None
    params: dict[str, str]  # regex groups of the route

    def q(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, [default])[0]

    def flag(self, name: str) -> bool:
        return (self.q(name) or "").lower() in ("1", "true", "yes")

    def json(self):
        return json.loads(self.body or b"{}")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


class FakeHub:
    """Start with `.start()` (returns the base url) or as a context manager; stop with `.stop()`.

    tokens: token -> user name (a write token), or token -> {"name": ..., "role": "read"|"write", "orgs": [...]}.
    tree_page_size: entries per page of /tree listings (the Hub uses 1000; lower it to test pagination).
    """

    def __init__(
        self,
        root_dir: str | Path,
        tokens: dict | None = None,
        *,
        tree_page_size: int = 1000,
        cdn_host: str | None = "localhost",
    ):
        self.store = RepoStore(root_dir)
        self.cdn_host = cdn_host
        self.tokens: dict[str, str | dict] = dict(tokens or {})
        self.tree_page_size = tree_page_size
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.secret = secrets.token_bytes(16)
        self._server: ThreadingHTTPServer | None = None
        self._cdn_host_ok = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeHub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def cdn_url(self) -> str:
        """Where LFS files are served from: the same server under another host name (cdn_host), so that the
        client treats it as a foreign CDN (no Authorization header), like the real Hub's signed CDN redirects.
        Falls back to the Hub's own host if cdn_host is None or does not resolve to 127.0.0.1."""
        host = self._cdn_host_ok and self.cdn_host
        return self.url.replace("127.0.0.1", host) if host else self.url

    def start(self) -> str:
        if self._server is None:
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self._server.hub = self
            self._cdn_host_ok = self.cdn_host is not None and _resolves_to_loopback(self.cdn_host)
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="fakehub", daemon=True
            )
            self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeHub:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- seeding ---------------------------------------------------------------------------------------------
    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes | str] | str | Path,
        repo_type: str = "model",
        private: bool | None = None,
        gated: bool | str | None = None,
        revision: str = "main",
        gated_users: tuple[str, ...] = (),
    ) -> str:
        """Create the repo if needed and set `revision` (a branch) to exactly `files`; returns the commit sha.

        files: {path_in_repo: bytes or str} or a local folder. gated: False, True/"manual" or "auto".
        private/gated: None keeps the current setting (False for a new repo).
        Calling again with another revision adds a branch (created from main).
        """
        if isinstance(files, (str, Path)):
            root = Path(files)
            additions = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}
        else:
            additions = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id) or self.store.create(repo_type, repo_id)
            if private is not None:
                repo.meta["private"] = private
            if gated is not None:
                repo.meta["gated"] = "manual" if gated is True else gated
            repo.meta["gated_users"] = sorted(set(repo.meta["gated_users"]) | set(gated_users))
            return self.store.commit(repo, revision, additions, title=f"Add {revision}", replace=True)

    def grant_access(self, repo_id: str, user: str, repo_type: str = "model") -> None:
        """Let `user` download a gated repo."""
        with self.store.lock:
            repo = self.repo(repo_id, repo_type)
            repo.meta["gated_users"] = sorted({*repo.meta["gated_users"], user})
            repo.save()

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        repo = self.store.get(repo_type, repo_id)
        if repo is None:
            raise KeyError(f"no {repo_type} repo {repo_id}")
        return repo

    def sha(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> str:
        return self.repo(repo_id, repo_type).resolve(revision)

    # -- requests log ----------------------------------------------------------------------------------------
    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def requests_to(self, fragment: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path contains `fragment` (and with that method, if given)."""
        with self._lock:
            return [r for r in self.requests if fragment in r.path and method in (None, r.method)]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # -- fault injection -------------------------------------------------------------------------------------
    def inject(
        self,
        fragment: str,
        *,
        status: int | None = None,
        drop: bool = False,
        times: int = 1,
        method: str | None = None,
        message: str = "Injected failure (FakeHub.inject)",
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Make the next `times` requests whose path contains `fragment` (and with that method, if given) fail:
        with HTTP `status` (JSON {"error": message}, X-Error-Message, X-Error-Code `code` if given, extra
        `headers`), or with `drop=True` by closing the connection without any response (the client sees
        httpx2.RemoteProtocolError "Server disconnected without sending a response.").

        The request body is read first; the route is not run (nothing changes on the hub). Faults are checked in
        the order they were injected, before authentication. Returns the Fault (`.hits`, `.remaining`).
        """
        if drop == (status is not None):
            raise ValueError("inject() needs exactly one of status=<int> or drop=True")
        if times < 1:
            raise ValueError("times must be >= 1")
        fault = Fault(fragment, status, drop, times, method and method.upper(), message, code, dict(headers or {}))
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # -- auth helpers used by the routes ---------------------------------------------------------------------
    def user_for(self, token: str) -> User | None:
        entry = self.tokens.get(token)
        if entry is None:
            return None
        if isinstance(entry, str):
            return User(entry)
        return User(entry["name"], entry.get("role", "write"), tuple(entry.get("orgs", ())))

    def sign(self, oid: str) -> str:
        return hmac.new(self.secret, oid.encode(), hashlib.sha256).hexdigest()[:32]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    hub: FakeHub


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms delayed-ACK stalls
    server_version = "FakeHub/1.0"
    timeout = 60

    def log_message(self, format, *args) -> None:  # noqa: A002 - keep test output clean
        pass

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        hub: FakeHub = self.server.hub
        split = urlsplit(self.path)
        auth = self.headers.get("Authorization")
        token = auth.split(" ", 1)[1].strip() if auth and " " in auth else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = RecordedRequest(
            self.command, split.path, split.query, auth is not None, token, headers.get("host", "")
        )
        record.headers = headers
        hub._record(record)
        try:
            body = self._read_body()
            if (fault := hub._take_fault(self.command, split.path)) is not None:
                record.injected = True
                if fault.drop:  # no status line at all: the client sees the server disconnect
                    self.close_connection = True
                    return
                raise HubError(fault.status, fault.message, fault.code, fault.headers)
            handler, match = _find_route(self.command, split.path)
            user = hub.user_for(token) if token else None
            if token and user is None and not split.path.startswith("/_"):
                raise HubError(401, "Invalid credentials in Authorization header")
            params = {k: v for k, v in match.groupdict().items() if v is not None}
            ctx = Ctx(hub, self.command, split.path, parse_qs(split.query), headers, body, token, user, params)
            response = handler(ctx)
        except HubError as e:
            headers = {"X-Error-Message": e.message, **({"X-Error-Code": e.code} if e.code else {}), **e.headers}
            response = Response.json({"error": e.message}, e.status, headers)
        except Exception as e:  # a bug in the fake: make it visible to the client instead of hanging
            response = Response.json({"error": f"FakeHub internal error: {type(e).__name__}: {e}"}, 500)
        record.status = response.status
        self._send(response)

    def _send(self, response: Response) -> None:
        body, start, end = response.body, 0, None
        size = body.stat().st_size if isinstance(body, Path) else len(body)
        status, headers = response.status, dict(response.headers)
        if isinstance(body, Path):
            headers.setdefault("Accept-Ranges", "bytes")
            if (rng := self.headers.get("Range")) and status == 200:
                span = _parse_range(rng, size)
                if span is None:
                    body, status = b"", 416
                    headers = {"Content-Range": f"bytes */{size}"}
                else:
                    start, end, status = *span, 206
                    headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        end = size if end is None else end
        if isinstance(body, bytes):
            body = body[start:end]
        self.send_response(status)
        headers.setdefault("Content-Type", "application/octet-stream")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if self.command == "HEAD":
            return
        if isinstance(body, bytes):
            self.wfile.write(body)
            return
        with open(body, "rb") as f:
            f.seek(start)
            remaining = end - start
            while remaining > 0 and (chunk := f.read(min(CHUNK, remaining))):
                self.wfile.write(chunk)
                remaining -= len(chunk)


def _find_route(method: str, path: str):
    from .routes_read import ROUTES as READ_ROUTES
    from .routes_spaces import ROUTES as SPACES_ROUTES
    from .routes_write import ROUTES as WRITE_ROUTES

    for methods, pattern, handler in READ_ROUTES + WRITE_ROUTES + SPACES_ROUTES:
        match = re.fullmatch(pattern, path)
        if match and method in methods:
            return handler, match
    raise HubError(404, f"Sorry, we can't find the page you are looking for ({method} {path})")


def _resolves_to_loopback(host: str) -> bool:
    try:
        return any(info[4][0] == "127.0.0.1" for info in socket.getaddrinfo(host, 80, socket.AF_INET))
    except OSError:
        return False


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """'bytes=a-b' / 'bytes=a-' / 'bytes=-n' -> (start, end_exclusive), or None if unsatisfiable."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size
    else:
        start, end = int(first), min(int(last) + 1, size) if last else size
    return (start, end) if start < end else None
