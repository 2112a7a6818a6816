"""One sentence for every way a Hub call can fail, and retries for the failures that pass on their own.

Below hub/ because the engine calls the Hub too (checkpoint sync, trainers/checkpoint_sync.py); hub.errors
re-exports it.  Kernel material: it belongs in core/ next to core.errors' translator."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from core.errors import StudioError

log = logging.getLogger("hub.errors")
T = TypeVar("T")

RETRY_STATUSES = {500, 502, 503, 504}
UNCHANGED = "your run folder is unchanged"


class HubError(StudioError):
    """A Hub call failed; the message says what to change."""


def status_of(exc: BaseException) -> int | None:
    return getattr(getattr(exc, "response", None), "status_code", None)


def is_connection_error(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, (httpx.TransportError, ConnectionError)) or type(exc).__name__ in {
        "ConnectError",
        "ConnectTimeout",
        "RemoteProtocolError",
        "ReadError",
        "ReadTimeout",
        "WriteError",
    }


def _transient(exc: BaseException) -> bool:
    return status_of(exc) in RETRY_STATUSES or is_connection_error(exc)


def with_retries(call: Callable[[], T], what: str, attempts: int = 3, delay_s: float = 1.0) -> T:
    """Run `call`; retry server errors (5xx) and dropped connections with backoff, then re-raise."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - re-raised unless transient
            if attempt == attempts or not _transient(exc):
                raise
            log.warning(
                "%s failed (%s); retry %d of %d", what, status_of(exc) or type(exc).__name__, attempt, attempts - 1
            )
            time.sleep(delay_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def message(exc: BaseException, repo_id: str, action: str = "push to") -> str:
    """The sentence a user sees for a failed Hub call on `repo_id`."""
    from huggingface_hub import errors as hub_errors

    if isinstance(exc, StudioError):
        return str(exc)
    status = status_of(exc)
    writing = action.startswith(("push", "upload", "create", "pause"))
    unchanged = f"; {UNCHANGED}" if writing else ""
    namespace = repo_id.split("/")[0] if "/" in repo_id else "your namespace"
    if isinstance(exc, hub_errors.GatedRepoError):
        return (
            f"{repo_id} is gated: accept its terms on its Hub page with your account, "
            "then sign in again or use a token of that account."
        )
    if status == 401:
        return (
            f"The Hugging Face token was rejected (401) when trying to {action} {repo_id}: sign in again or set "
            f"HF_TOKEN to a valid token{unchanged}."
        )
    if status == 403:
        return (
            f"Your token may not {action} {repo_id} (403): use a token with write access to '{namespace}' "
            f"(fine-grained tokens need it granted for that namespace), or choose a repo in your own namespace"
            f"{unchanged}."
            if writing
            else f"Your token may not {action} {repo_id} (403): use a token with read access to it "
            "(fine-grained tokens need the repo or its namespace granted)."
        )
    if status == 409:
        return (
            f"{repo_id} changed on the Hub while pushing, or already exists (409): run the push again, "
            f"or choose another repo id{unchanged}."
        )
    if isinstance(exc, hub_errors.RepositoryNotFoundError) or status == 404:
        return (
            f"{repo_id} was not found, or your token cannot see it (404): check the id, "
            f"or use a token of an account with access{unchanged}."
        )
    if status in RETRY_STATUSES:
        return (
            f"The Hub answered with a server error ({status}) three times while trying to {action} {repo_id}: "
            f"try again in a few minutes{unchanged}."
        )
    if is_connection_error(exc) or isinstance(exc, hub_errors.OfflineModeIsEnabled):
        return (
            f"The connection to the Hugging Face Hub failed or dropped while trying to {action} {repo_id}: "
            f"check the network and run it again (files already uploaded are not sent twice){unchanged}."
        )
    if status == 413 or "too large" in str(exc).lower():
        return f"The Hub refused a file as too large while trying to {action} {repo_id}{unchanged}."
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"Could not {action} {repo_id} ({type(exc).__name__}: {first[:200]}){unchanged}."
