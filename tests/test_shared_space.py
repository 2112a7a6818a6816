"""The app as a shared Space, attacked over gradio's own HTTP queue protocol (issue 13, items 1-6).

A subprocess serves the app with SYSTEM=spaces, SPACE_ID, OAUTH_CLIENT_ID/SECRET, OPENID_PROVIDER_URL and the
Space's own (planted) HF_TOKEN.  Two signed-in users, alice and bob, carry gradio's session cookie signed with the
client secret (itsdangerous TimestampSigner over base64 JSON, as starlette's SessionMiddleware makes it); a third
caller has no cookie.  Every call is what the page sends: `POST /gradio_api/queue/join` with the handler's
fn_index and a session_hash, then the `/gradio_api/queue/data` event stream.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from helpers import PLANTED_TOKEN, ROOT

from jobs import access
from ui import api_names

CLIENT_SECRET = "oauth-client-secret-of-the-space"
ALICE_TOKEN = "hf_alice" + "A" * 34
BOB_TOKEN = "hf_bob" + "B" * 36
LOCAL_ONLY = "Local paths on a shared Space are limited to your uploads and runs; use a Hub id."
SIGN_IN = "Sign in with Hugging Face (button at the top) to"
QUICK = {
    "method": "sft",
    "model": {"name_or_path": "demo-tiny"},
    "peft": {"type": "lora", "r": 4, "lora_alpha": 8},
    "data": {"source": "data/demo/sft_train.jsonl", "eval_size": 0, "max_samples": 16},
    "training": {"max_steps": 400, "per_device_train_batch_size": 2, "max_length": 64, "logging_steps": 1},
}


def cookie_for(user: str, token: str) -> str:
    """gradio's session cookie for a signed-in user (gradio/oauth.py + starlette SessionMiddleware)."""
    import itsdangerous

    key = hashlib.sha256((CLIENT_SECRET + "-v4").encode()).hexdigest()
    info = {
        "access_token": token,
        "scope": "openid profile inference-api",
        "expires_at": int(time.time()) + 8 * 3600,
        "userinfo": {"preferred_username": user, "name": user.title(), "picture": "", "profile": ""},
    }
    data = base64.b64encode(json.dumps({"oauth_info": info}).encode())
    return itsdangerous.TimestampSigner(key).sign(data).decode()


class Caller:
    """One browser: its cookie (or none) and the page's protocol."""

    def __init__(self, url: str, cookie: str | None):
        self.url = url
        self.http = httpx.Client(base_url=url, cookies={"session": cookie} if cookie else {}, timeout=120)
        self.config = self.http.get("/config").json()

    def fn_index(self, api_name: str | None = None, button: str | None = None) -> tuple[int, int | None]:
        """(fn_index, trigger id) of an endpoint, or of the click handler of the button labelled `button`."""
        deps = self.config["dependencies"]
        if api_name:
            dep = next(d for d in deps if d.get("api_name") == api_name)
            return dep["id"], (dep["targets"][0][0] if dep["targets"] else None)
        comp = next(c for c in self.config["components"] if c.get("props", {}).get("value") == button)
        dep = next(d for d in deps if [comp["id"], "click"] in [list(t) for t in d["targets"]])
        return dep["id"], comp["id"]

    def call(self, data: list, api_name: str | None = None, button: str | None = None) -> dict:
        """Join the queue like the page and read the event stream to the end: {"data": [...]} or {"error": ...}."""
        fn, trigger = self.fn_index(api_name, button)
        session = uuid.uuid4().hex[:11]
        body = {"data": data, "event_data": None, "fn_index": fn, "trigger_id": trigger, "session_hash": session}
        joined = self.http.post("/gradio_api/queue/join", json=body)
        assert joined.status_code == 200, joined.text
        event_id = joined.json()["event_id"]
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("event_id") not in (None, event_id):
                    continue
                if msg.get("msg") == "process_completed":
                    output = msg.get("output") or {}
                    if not msg.get("success", True) or output.get("error"):
                        return {"error": output.get("error") or "failed"}
                    return {"data": output.get("data")}
        raise AssertionError("the event stream ended without a result")

    def ok(self, data, **where) -> list:
        result = self.call(data, **where)
        assert "data" in result, result
        return result["data"]

    def refused(self, data, **where) -> str:
        result = self.call(data, **where)
        assert "error" in result, result
        return result["error"]

    def upload(self, path: Path) -> dict:
        with open(path, "rb") as handle:
            response = self.http.post("/gradio_api/upload", files={"files": (path.name, handle)})
        assert response.status_code == 200, response.text
        return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def space(tmp_path_factory, demo_model_dir):
    home = tmp_path_factory.mktemp("space-home")
    (home / "models").mkdir()
    (home / "models" / "demo-tiny").symlink_to(demo_model_dir)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "STUDIO_MULTI"))}
    env.update(
        SYSTEM="spaces",
        SPACE_ID="acme/fine-tune-studio",
        OAUTH_CLIENT_ID="client-id-of-the-space",
        OAUTH_CLIENT_SECRET=CLIENT_SECRET,
        OAUTH_SCOPES="openid profile",
        OPENID_PROVIDER_URL="http://127.0.0.1:9",  # never reached: sessions are forged, not logged in
        HF_TOKEN=PLANTED_TOKEN,  # the Space owner's token
        STUDIO_HOME=str(home),
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONPATH=str(ROOT),
    )
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "spaces" / "serve.py"), str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300  # a cold import of gradio and torch on a busy machine
    while True:
        assert proc.poll() is None, (home / "server.log").read_text()[-3000:]
        try:
            if httpx.get(url + "/config", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.time() < deadline, "the Space did not start"
        time.sleep(0.5)
    secret = tmp_path_factory.mktemp("server-files") / "secret_notes.txt"
    secret.write_text("the server's own notes\n")
    yield {
        "url": url,
        "home": home,
        "secret": secret,
        "alice": Caller(url, cookie_for("alice", ALICE_TOKEN)),
        "bob": Caller(url, cookie_for("bob", BOB_TOKEN)),
        "anon": Caller(url, None),
    }
    os.killpg(proc.pid, 15)
    proc.wait(timeout=60)
    log.close()


def check_args(source: str, upload=None, model: str = "demo-tiny") -> list:
    return [source, upload, "", "train", "sft", model, ""]


def yaml_of(doc: dict) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def wait_for(predicate, what: str, limit_s: float = 240.0):
    """Polls a condition that the server makes true (not a timing assumption: the limit only bounds a hang)."""
    deadline = time.time() + limit_s
    while not (value := predicate()):
        assert time.time() < deadline, f"gave up waiting for {what}"
        time.sleep(0.3)
    return value


@pytest.fixture(scope="module")
def alice_run(space):
    """alice queues a run over HTTP; its training child is started, recorded, and cancelled."""
    alice = space["alice"]
    run_id = alice.ok([yaml_of(QUICK)], api_name=api_names.SUBMIT_RUN)[0]
    run_dir = space["home"] / "runs" / run_id
    record = wait_for(lambda: _record_for(space["home"], run_dir), "the run's child to start")
    alice.ok([run_id], api_name=api_names.CANCEL_RUN)
    wait_for(
        lambda: alice.ok([run_id], api_name=api_names.RUN_STATUS)[0]["status"] in ("cancelled", "failed", "succeeded"),
        "the cancelled run to stop",
    )
    return {"id": run_id, "dir": run_dir, "record": record}


def _record_for(home: Path, run_dir: Path) -> dict | None:
    for path in sorted((home / "observed-env").glob("*.json")):
        record = json.loads(path.read_text())
        if str(run_dir) in record["cmd"]:
            return record
    return None


def plant_adapter(run_dir: Path, home: Path) -> Path:
    """A real (untrained) LoRA adapter on the demo model in the run folder, as a finished run leaves it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = home / "models" / "demo-tiny"
    model = AutoModelForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules="all-linear"))
    adapter = run_dir / "adapter"
    peft_model.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(base).save_pretrained(adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(base)
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    return adapter


# --- 1. the Data tab reads only your own uploads, runs and the shipped demo data ---------------------------------


def test_data_check_upload_goes_to_the_users_own_folder_and_nobody_else_reads_it(space, tmp_path):
    alice, bob, anon = space["alice"], space["bob"], space["anon"]
    rows = tmp_path / "alice_rows.jsonl"
    lines = [{"prompt": f"alice secret question {i}", "completion": f"alice answer {i}"} for i in range(8)]
    rows.write_text("".join(json.dumps(r) + "\n" for r in lines))
    upload = alice.upload(rows)
    fmt, preview, _ = alice.ok(check_args("", upload), api_name=api_names.CHECK_DATA)
    kept = space["home"] / "uploads" / "alice" / "alice_rows.jsonl"
    assert str(kept) in fmt and "alice secret question" in preview and kept.is_file()
    gradio_folder = str(Path(upload["path"]).parent)

    # the signed-out visitor: nothing, whatever the path
    for source in (gradio_folder, str(kept), str(space["secret"]), "data/demo/sft_train.jsonl"):
        message = anon.refused(check_args(source), api_name=api_names.CHECK_DATA)
        assert message.startswith(SIGN_IN) and "alice" not in message
    # bob: not gradio's shared cache, not alice's uploads, not a server file, not `..` nor a link out
    link = space["home"] / "uploads" / "bob" / "innocent.jsonl"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(kept)
    for source in (
        gradio_folder,
        upload["path"],
        str(kept),
        str(kept.parent),
        str(space["secret"]),
        str(space["home"] / "uploads" / "bob" / ".." / "alice" / "alice_rows.jsonl"),
        str(link),
        "../../etc/passwd",
        str(space["home"]),
    ):
        assert bob.refused(check_args(source), api_name=api_names.CHECK_DATA) == LOCAL_ONLY, source
    assert bob.refused(
        check_args("data/demo/sft_train.jsonl", model=str(kept.parent)), api_name=api_names.CHECK_DATA
    ) == (LOCAL_ONLY)
    # what stays allowed: the owner's own upload, the shipped demo data, for everyone signed in
    assert "alice secret question" in alice.ok(check_args(str(kept)), api_name=api_names.CHECK_DATA)[1]
    fmt, _, report = bob.ok(check_args("data/demo/sft_train.jsonl"), api_name=api_names.CHECK_DATA)
    assert fmt.startswith("messages") and "verdict: trainable" in report


# --- 2. the adapter download needs its owner ------------------------------------------------------------------------


def test_adapter_download_is_refused_without_the_owner(space, alice_run):
    plant_adapter(alice_run["dir"], space["home"])
    download = {"button": "Download adapter (.zip)"}
    assert space["anon"].refused([alice_run["id"]], **download).startswith(SIGN_IN)
    assert "no run" in space["bob"].refused([alice_run["id"]], **download)
    (got,) = space["alice"].ok([alice_run["id"]], **download)
    assert got["path"].endswith("-adapter.zip") or got["orig_name"].endswith("-adapter.zip")
    # a link in the run folder is never zipped
    (alice_run["dir"] / "adapter" / "notes.txt").symlink_to(space["secret"])
    try:
        message = space["alice"].refused([alice_run["id"]], **download)
        assert "notes.txt" in message and "link" in message
    finally:
        (alice_run["dir"] / "adapter" / "notes.txt").unlink()


# --- 3. nobody takes another's adapter through a path ----------------------------------------------------------------


def test_submit_refuses_paths_outside_your_own_folders(space, alice_run, tmp_path):
    bob = space["bob"]
    alice_upload = space["home"] / "uploads" / "alice" / "x.jsonl"
    alice_upload.parent.mkdir(parents=True, exist_ok=True)
    alice_upload.write_text('{"prompt": "a", "completion": "b"}\n')
    bob_uploads = space["home"] / "uploads" / "bob"
    bob_uploads.mkdir(parents=True, exist_ok=True)
    sneaky_recipe = bob_uploads / "sneaky.yaml"  # inside bob's folder, but it names alice's data
    sneaky_recipe.write_text(yaml_of({**QUICK, "data": {"source": str(alice_upload)}}))
    attempts = {
        "init_from alice's run": {**QUICK, "init_from": str(alice_run["dir"])},
        "init_from alice's adapter": {**QUICK, "init_from": str(alice_run["dir"] / "adapter")},
        "init_from via ..": {**QUICK, "init_from": str(bob_uploads / ".." / ".." / "runs" / alice_run["id"])},
        "a recipe naming alice's data": {**QUICK, "init_from": str(sneaky_recipe)},
        "alice's upload as data": {**QUICK, "data": {"source": str(alice_upload)}},
        "alice's upload as eval data": {**QUICK, "data": {**QUICK["data"], "eval_source": str(alice_upload)}},
        "alice's run as the model": {**QUICK, "model": {"name_or_path": str(alice_run["dir"] / "adapter")}},
        "a server file": {**QUICK, "data": {"source": str(space["secret"])}},
        "the second document": [QUICK, {**QUICK, "init_from": str(alice_run["dir"])}],
    }
    for what, doc in attempts.items():
        text = yaml.safe_dump_all(doc) if isinstance(doc, list) else yaml_of(doc)
        assert bob.refused([text], api_name=api_names.SUBMIT_RUN) == LOCAL_ONLY, what
    assert "Sign in" in space["anon"].refused([yaml_of(QUICK)], api_name=api_names.SUBMIT_RUN)
    # the owner may start from her own run
    own = alice_run["dir"]
    run_ids = space["alice"].ok([yaml_of({**QUICK, "init_from": str(own)})], api_name=api_names.SUBMIT_RUN)[0]
    space["alice"].ok([run_ids], api_name=api_names.CANCEL_RUN)


def test_playground_runs_only_for_signed_in_users_and_their_own_adapters(space, alice_run):
    adapter = alice_run["dir"] / "adapter"
    if not (adapter / "adapter_config.json").exists():
        plant_adapter(alice_run["dir"], space["home"])
    ask = {"api_name": api_names.PLAYGROUND_REPLY}  # the raw queue protocol sends every input (no defaults)
    args = lambda choice: [choice, "Please greet Ada.", 0.0, 8, None, "", 1.0, 0]  # noqa: E731
    for choice in (alice_run["id"], str(adapter)):
        assert space["anon"].refused(args(choice), **ask).startswith(SIGN_IN)
    assert space["bob"].refused(args(str(adapter)), **ask) == LOCAL_ONLY
    assert space["bob"].refused(args(str(alice_run["dir"])), **ask) == LOCAL_ONLY
    assert "neither one of your runs" in space["bob"].refused(args(alice_run["id"]), **ask)
    base, tuned = space["alice"].ok(args(alice_run["id"]), **ask)
    assert base and tuned


# --- 5. the training child: an allowlisted environment with the owner's token only ---------------------------------


def test_the_training_child_gets_the_owners_token_and_no_space_secret(alice_run):
    record = alice_run["record"]
    assert "OAUTH_CLIENT_SECRET" not in record["names"] and "OAUTH_CLIENT_ID" not in record["names"]
    assert record["hf_token_sha256"] == hashlib.sha256(ALICE_TOKEN.encode()).hexdigest()
    assert record["hf_token_sha256"] != hashlib.sha256(PLANTED_TOKEN.encode()).hexdigest()


# --- 6. remote code, and actions that need sign-in --------------------------------------------------------------------


def test_trust_remote_code_is_refused_on_a_shared_space(space):
    for doc in (
        {**QUICK, "model": {"name_or_path": "demo-tiny", "trust_remote_code": True}},
        {**QUICK, "training": {**QUICK["training"], "model_init_kwargs": {"trust_remote_code": True}}},
    ):
        message = space["alice"].refused([yaml_of(doc)], api_name=api_names.SUBMIT_RUN)
        assert "trust_remote_code" in message and "STUDIO_ALLOW_REMOTE_CODE=1" in message


def test_every_action_needs_sign_in_but_viewing_does_not(space):
    anon = space["anon"]
    assert anon.http.get("/").status_code == 200
    for data, where in (
        (["whatever"], {"api_name": api_names.RUN_STATUS}),
        (["whatever"], {"api_name": api_names.CANCEL_RUN}),
        (["method: sft"], {"api_name": api_names.ESTIMATE}),
        (["x"], {"api_name": api_names.START_COMPARISON}),
        (["x"], {"api_name": api_names.COMPARISON_STATUS}),
        (["r", "me/repo", True, False, False], {"api_name": api_names.PUBLISH_RUN}),
        (["r"], {"button": "Cancel"}),
        (["r"], {"button": "Resume"}),
        (["r"], {"button": "Delete"}),
    ):
        assert anon.refused(data, **where).startswith(SIGN_IN), where


# --- push: secrets by shape, links, no local paths or run ids in what is published ---------------------------------


def _finished_run(home: Path, run_id: str, config: dict) -> Path:
    run_dir = home / "runs" / run_id
    (run_dir / "adapter").mkdir(parents=True)
    (run_dir / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "demo-tiny"}))
    (run_dir / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    (run_dir / "config.yaml").write_text(f"# Queued run {run_id}\n" + yaml_of(config))
    (run_dir / "summary.json").write_text(json.dumps({"status": "succeeded", "init_from": config.get("init_from")}))
    (run_dir / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0}) + "\n")
    return run_dir


@pytest.fixture
def recording_hub(monkeypatch):
    """HfApi as the push uses it, recording the commit instead of uploading."""
    from huggingface_hub import HfApi

    commits = []

    class Url(str):
        repo_id = "alice/published"

    def upload_folder(self, repo_id, folder_path, commit_message):
        files = {str(p.relative_to(folder_path)): p.read_bytes() for p in Path(folder_path).rglob("*") if p.is_file()}
        commits.append({"message": commit_message, "files": files})
        return type("Commit", (), {"commit_url": "http://hub/commit/1"})()

    monkeypatch.setattr(HfApi, "whoami", lambda self: {"name": "alice"})
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: Url("http://hub/alice/published"))
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return commits


def test_push_publishes_no_local_path_nor_run_id(home, recording_hub):
    from hub.push import push_run

    upload = {"source": str(home / "uploads" / "alice" / "a.jsonl")}
    sft = _finished_run(home, "20250101-000000-aaaaaa", QUICK)
    dpo = _finished_run(
        home, "20250101-000001-bbbbbb", {**QUICK, "method": "dpo", "init_from": str(sft), "data": upload}
    )
    push_run(dpo, "alice/published", token="hf_pusher" + "P" * 30)
    (commit,) = recording_hub
    assert "20250101" not in commit["message"] and str(home) not in commit["message"]
    for name, data in commit["files"].items():
        if name.endswith((".yaml", ".json", ".md")):
            text = data.decode()
            assert str(home) not in text and "20250101-00000" not in text, name
    published = yaml.safe_load(commit["files"]["training/config.yaml"])
    assert published["init_from"] == "a local SFT run (not published)"
    assert published["data"]["source"] == "local file a.jsonl"


def test_push_refuses_token_shaped_strings_and_links(home, recording_hub):
    from hub.errors import HubError
    from hub.push import push_run

    leaky = {**QUICK, "training": {**QUICK["training"], "model_init_kwargs": {"token": "hf_" + "z" * 34}}}
    run_dir = _finished_run(home, "20250101-000002-cccccc", leaky)
    with pytest.raises(HubError, match=r"training/config.yaml.*looks like a Hugging Face token; nothing was uploaded"):
        push_run(run_dir, "alice/published", token="hf_pusher" + "P" * 30)
    clean = _finished_run(home, "20250101-000003-dddddd", QUICK)
    (clean / "adapter" / "extra.txt").symlink_to(run_dir / "config.yaml")
    with pytest.raises(HubError, match="extra.txt .*link"):
        push_run(clean, "alice/published", token="hf_pusher" + "P" * 30)
    assert recording_hub == []  # nothing reached the Hub


def test_cli_push_relies_on_the_shape_scan(home, recording_hub, capsys):
    from hub.__main__ import main

    leaky = {**QUICK, "data": {**QUICK["data"], "system_prompt": "use hf_" + "q" * 34}}
    run_dir = _finished_run(home, "20250101-000004-eeeeee", leaky)
    assert main(["push", str(run_dir), "--repo-id", "alice/published"]) == 1
    assert "looks like a Hugging Face token" in capsys.readouterr().err and recording_hub == []


# --- the one module, off and on a Space --------------------------------------------------------------------------


def test_paths_stay_free_off_a_space_and_no_owner_is_refused(home, monkeypatch, tmp_path):
    from jobs.store import Store

    store = Store(home / "jobs.db")
    monkeypatch.setenv("STUDIO_MULTI_USER", "0")
    access.check_config({**QUICK, "data": {"source": str(tmp_path)}}, "local", home, store)
    monkeypatch.setenv("STUDIO_MULTI_USER", "1")
    with pytest.raises(access.AccessError, match="Local paths"):
        access.check_config({**QUICK, "data": {"source": str(tmp_path)}}, "alice", home, store)
    access.check_config({**QUICK, "data": {"source": "trl-lib/Capybara"}}, "alice", home, store)  # a Hub id
    with pytest.raises(access.AccessError, match="Sign in"):
        access.check_config(QUICK, None, home, store)
    monkeypatch.setenv("STUDIO_ALLOW_REMOTE_CODE", "1")
    access.check_config({**QUICK, "model": {"name_or_path": "org/m", "trust_remote_code": True}}, "a", home, store)
    from core.errors import StudioError
    from jobs.api import JobQueue

    with pytest.raises(StudioError, match="Sign in"):
        JobQueue(home).adapter_zip("any", None)
    shutil.rmtree(home / "uploads", ignore_errors=True)
