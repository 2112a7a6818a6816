"""Fault injection (`hub.inject`), `HfApi.auth_check` and the minimal Space runtime (pause / get_space_runtime)."""

import types

import httpx2
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.utils import _http

from .fixture import ALICE, ALICE_READ, BOB


@pytest.fixture
def backoff_sleeps(monkeypatch):
    """Seconds huggingface_hub's http_backoff would have slept between retries (without sleeping)."""
    sleeps: list[float] = []
    monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=sleeps.append))
    return sleeps


def test_inject_status_then_recover(fake_hub_env):
    hub = fake_hub_env
    api = HfApi(endpoint=hub.url, token=ALICE)
    fault = hub.inject("/api/whoami-v2", status=500, message="boom")
    with pytest.raises(HfHubHTTPError) as err:
        api.whoami(cache=False)
    assert err.value.response.status_code == 500
    assert err.value.response.headers["X-Error-Message"] == "boom" and err.value.response.json() == {"error": "boom"}
    assert api.whoami(cache=False)["name"] == "alice"
    assert (fault.hits, fault.remaining, hub.faults) == (1, 0, [])
    assert [(r.status, r.injected) for r in hub.requests_to("/api/whoami-v2")] == [(500, True), (200, False)]


def test_inject_drop_method_filter_and_clear(fake_hub_env):
    hub = fake_hub_env
    api = HfApi(endpoint=hub.url, token=ALICE)
    hub.inject("/api/whoami-v2", drop=True, method="post")  # whoami is a GET: never matches
    hub.inject("/api/whoami-v2", drop=True, times=2, method="GET")
    for _ in range(2):
        with pytest.raises(httpx2.TransportError):  # RemoteProtocolError: disconnected without a response
            api.whoami(cache=False)
    assert api.whoami(cache=False)["name"] == "alice"
    assert [(r.status, r.injected) for r in hub.requests_to("/api/whoami-v2")] == [(0, True), (0, True), (200, False)]
    assert [f.method for f in hub.faults] == ["POST"]
    hub.clear_faults()
    assert hub.faults == []
    with pytest.raises(ValueError):
        hub.inject("/x")  # neither status nor drop


def test_commit_retries_uploads_but_not_the_commit(fake_hub_env, backoff_sleeps):
    """create_commit (and upload_folder/upload_file without Xet): preupload, LFS batch, PUT and verify go through
    http_backoff (retried on 5xx / dropped connections); the final POST /commit is sent once."""
    hub = fake_hub_env
    hub.add_repo("alice/flaky", {"a.txt": "a"})
    api = HfApi(endpoint=hub.url, token=ALICE)
    ops = [CommitOperationAdd("b.txt", b"b"), CommitOperationAdd("w.bin", b"\0weights")]
    faults = [hub.inject("/preupload/", status=503), hub.inject("/objects/batch", drop=True),
              hub.inject("/_lfs/upload/", status=500), hub.inject("/objects/verify", status=502)]  # fmt: skip
    info = api.create_commit("alice/flaky", ops, commit_message="retried")
    assert [f.hits for f in faults] == [1, 1, 1, 1] and backoff_sleeps == [1, 1, 1, 1]
    assert info.oid == hub.sha("alice/flaky")

    before = hub.sha("alice/flaky")
    hub.inject("/commit/main", status=500, method="POST")
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_file(path_or_fileobj=b"c", path_in_repo="c.txt", repo_id="alice/flaky")
    assert err.value.response.status_code == 500 and hub.sha("alice/flaky") == before
    assert len(hub.requests_to("/commit/main", "POST")) == 2  # one per commit call: no retry
    api.upload_file(path_or_fileobj=b"c", path_in_repo="c.txt", repo_id="alice/flaky")  # fault used up
    assert "c.txt" in api.list_repo_files("alice/flaky")


def test_auth_check(fake_hub_env):
    hub = fake_hub_env
    hub.add_repo("alice/ac-public", {"a.txt": "a"})
    hub.add_repo("alice/ac-private", {"a.txt": "a"}, private=True)
    hub.add_repo("alice/ac-gated", {"a.txt": "a"}, gated=True)
    hub.add_repo("alice/ac-data", {"a.txt": "a"}, "dataset")
    alice, bob, alice_read = (HfApi(endpoint=hub.url, token=t) for t in (ALICE, BOB, ALICE_READ))
    anonymous = HfApi(endpoint=hub.url, token=False)

    for repo in ("alice/ac-public", "alice/ac-private", "alice/ac-gated"):
        alice.auth_check(repo)
        alice.auth_check(repo, write=True)
    alice.auth_check("alice/ac-data", repo_type="dataset", write=True)
    bob.auth_check("alice/ac-public")
    anonymous.auth_check("alice/ac-public")
    alice_read.auth_check("alice/ac-private")

    def status_of(api, repo, exc, **kwargs) -> int:
        with pytest.raises(exc) as err:
            api.auth_check(repo, **kwargs)
        return err.value.response.status_code

    assert status_of(bob, "alice/ac-gated", GatedRepoError) == 403
    assert status_of(anonymous, "alice/ac-gated", GatedRepoError) == 401
    assert status_of(bob, "alice/ac-private", RepositoryNotFoundError) == 404
    assert status_of(anonymous, "alice/ac-private", RepositoryNotFoundError) == 401
    assert status_of(bob, "alice/ac-missing", RepositoryNotFoundError) == 404
    assert status_of(bob, "alice/ac-public", RepositoryNotFoundError, repo_type="dataset") == 404
    assert status_of(bob, "alice/ac-public", HfHubHTTPError, write=True) == 403
    assert status_of(alice_read, "alice/ac-public", HfHubHTTPError, write=True) == 403
    assert status_of(anonymous, "alice/ac-public", RepositoryNotFoundError, write=True) == 401
    assert status_of(bob, "alice/ac-private", RepositoryNotFoundError, write=True) == 404
    hub.grant_access("alice/ac-gated", "bob")
    bob.auth_check("alice/ac-gated")
    assert [r.status for r in hub.requests_to("/auth-check/write")][:2] == [200, 200]


def test_pause_space(fake_hub_env):
    hub = fake_hub_env
    hub.add_repo("alice/demo-space", {"app.py": "print('hi')", "README.md": "---\nsdk: gradio\n---\n"}, "space")
    alice, bob = HfApi(endpoint=hub.url, token=ALICE), HfApi(endpoint=hub.url, token=BOB)
    assert bob.get_space_runtime("alice/demo-space").stage == "RUNNING"

    with pytest.raises(HfHubHTTPError) as err:
        bob.pause_space("alice/demo-space")
    assert err.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError) as err:
        HfApi(endpoint=hub.url, token=False).pause_space("alice/demo-space")
    assert err.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError) as err:
        alice.pause_space("alice/no-such-space")
    assert err.value.response.status_code == 404
    assert alice.get_space_runtime("alice/demo-space").stage == "RUNNING"

    runtime = alice.pause_space("alice/demo-space")
    assert runtime.stage == "PAUSED" and runtime.requested_hardware == "cpu-basic" and runtime.hardware is None
    assert bob.get_space_runtime("alice/demo-space").stage == "PAUSED"
    info = bob.space_info("alice/demo-space")
    assert info.runtime.stage == "PAUSED" and info.sdk == "gradio"
    assert hub.repo("alice/demo-space", "space").meta["runtime"]["stage"] == "PAUSED"
    assert alice.restart_space("alice/demo-space").stage == "RUNNING"
