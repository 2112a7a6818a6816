"""Queue several RunConfig documents as one submission: all are checked before any is queued, and
`init_from: previous` points a document at the run queued just before it (SFT→DPO from the Train tab)."""

from __future__ import annotations

from core.errors import StudioError
from hub.pull import check_run_sources
from jobs import access
from trainers import config as config_mod

PREVIOUS = "previous"


def check(queue, docs: list[dict], owner: str | None, token: str | None) -> None:
    """The shared-Space path rules, then validation and Hub access of every document; queues nothing."""
    access.check_config(docs, owner, queue.home, queue.store)  # shared Space: local paths are the user's own
    for doc in docs:
        check_run_sources(config_mod.from_dict({**doc, "init_from": None} if _chained(doc) else doc), token)


def submit_chain(queue, docs: list[dict], owner: str | None, token: str | None = None) -> list[str]:
    """Queue every document in order; returns their run ids."""
    check(queue, docs, owner, token)
    ids: list[str] = []
    for doc in docs:
        if _chained(doc):
            if not ids:
                raise StudioError("init_from: previous needs a run before it in the same config.")
            doc = {**doc, "init_from": queue.get(ids[-1], owner).run_dir}
        ids.append(queue.submit(doc, owner=owner, token=token))
    return ids


def _chained(doc: dict) -> bool:
    return doc.get("init_from") == PREVIOUS
