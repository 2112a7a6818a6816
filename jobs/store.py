"""The run store: one SQLite file (WAL) under STUDIO_HOME; parameterised SQL only.

Every read and write takes an owner, so one user can never see or touch another's runs.  "No owner" is
refused: the worker and its recovery, which act for every user, pass the explicit sentinel ANY_OWNER.
Connections are short-lived and per call, so threads and processes can share the file.

Workers hold a lease: each registers in `workers` (id, host, pid, heartbeat_at) and stamps the runs it
claims with its id, so recovery only touches runs whose worker is provably gone.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

STATUSES = ("queued", "running", "waiting", "succeeded", "failed", "cancelled", "interrupted")
FINAL = ("succeeded", "failed", "cancelled")
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    pid INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested_at REAL,
    exit_code INTEGER,
    exit_reason TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_owner ON runs (owner, seq);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, seq);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
"""
# Columns added after the first release: (name, SQL type). Added on open when an older file lacks them.
MIGRATIONS = (("worker_id", "TEXT"), ("needs_token", "INTEGER NOT NULL DEFAULT 0"), ("continues", "TEXT"))


class _AnyOwner:
    """The worker's explicit "every owner" (recovery, claiming, finishing); never a request's owner."""

    def __repr__(self) -> str:
        return "ANY_OWNER"


ANY_OWNER = _AnyOwner()


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


@dataclass
class Run:
    seq: int
    id: str
    owner: str
    name: str
    run_dir: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    pid: int | None
    attempts: int
    cancel_requested_at: float | None
    exit_code: int | None
    exit_reason: str | None
    error: str | None
    worker_id: str | None = None
    needs_token: int = 0
    continues: str | None = None  # the run this one continues ("train N more")

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class WorkerRow:
    id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float


def _owner_filter(owner) -> tuple[str, tuple]:
    """SQL condition and parameters for `owner`; None (a forgotten owner) is refused, never "all owners"."""
    if owner is ANY_OWNER:
        return "", ()
    if owner is None or not isinstance(owner, str) or not owner:
        raise ValueError("a run store call needs an owner (or ANY_OWNER for the worker)")
    return " AND owner = ?", (owner,)


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            have = {row["name"] for row in db.execute("PRAGMA table_info(runs)")}
            for name, kind in MIGRATIONS:  # names and types come from this module, never from input
                if name not in have:
                    with contextlib.suppress(sqlite3.OperationalError):  # another process added it first
                        db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")

    @contextlib.contextmanager
    def _connect(self):
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=30000")
        try:
            yield db
        finally:
            db.close()

    def _execute(self, sql: str, params: tuple = (), fetch: bool = False, row=None):
        """Run one statement, retrying briefly if another writer holds the lock past busy_timeout."""
        row = row or Run
        for attempt in range(20):
            try:
                with self._connect() as db:
                    cursor = db.execute(sql, params)
                    return [row(**dict(r)) for r in cursor.fetchall()] if fetch else cursor.rowcount
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    # --- writes ----------------------------------------------------------------------------------

    def add(
        self,
        owner: str,
        name: str,
        run_dir: str,
        run_id: str | None = None,
        needs_token: bool = False,
        continues: str | None = None,
    ) -> str:
        """Queue a run.  needs_token: it was submitted with the owner's token, so on a shared Space it may only
        start while that token is in the worker's memory (after a restart it waits for the owner to sign in).
        continues: the id of the finished run this one trains further."""
        _owner_filter(owner)
        run_id = run_id or new_run_id()
        self._execute(
            "INSERT INTO runs (id, owner, name, run_dir, status, created_at, needs_token, continues) "
            "VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
            (run_id, owner, name, run_dir, time.time(), int(bool(needs_token)), continues),
        )
        return run_id

    def update(self, run_id: str, owner, unless_status: tuple[str, ...] = (), only_worker=ANY_OWNER, **fields) -> int:
        """Set fields on one run of `owner` (ANY_OWNER: the worker).  unless_status: leave a run in one of these
        states alone (a terminal state is never overwritten by a worse guess).  only_worker: change the run only
        while that worker id (or None: no worker) holds it, a compare-and-set between recovering workers."""
        where, owner_params = _owner_filter(owner)
        allowed = {f for f in Run.__dataclass_fields__ if f not in ("seq", "id", "owner")}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown run fields: {sorted(unknown)}")
        if not fields:
            return 0
        columns = ", ".join(f"{name} = ?" for name in fields)  # names come from the dataclass, never from input
        sql = f"UPDATE runs SET {columns} WHERE id = ?" + where
        params = (*fields.values(), run_id, *owner_params)
        if unless_status:
            sql += f" AND status NOT IN ({', '.join('?' for _ in unless_status)})"
            params += tuple(unless_status)
        if only_worker is not ANY_OWNER:
            sql += " AND worker_id IS ?"
            params += (only_worker,)
        return self._execute(sql, params)

    def claim_next(self, worker_id: str | None = None) -> Run | None:
        """Atomically move the oldest queued run to running (FIFO), stamped with the claiming worker, and return it."""
        rows = self._execute(
            "UPDATE runs SET status = 'running', started_at = ?, attempts = attempts + 1, pid = NULL, worker_id = ? "
            "WHERE seq = (SELECT seq FROM runs WHERE status = 'queued' ORDER BY seq LIMIT 1) RETURNING *",
            (time.time(), worker_id),
            fetch=True,
        )
        return rows[0] if rows else None

    def delete(self, run_id: str, owner) -> int:
        where, params = _owner_filter(owner)
        return self._execute("DELETE FROM runs WHERE id = ?" + where, (run_id, *params))

    # --- reads -----------------------------------------------------------------------------------

    def get(self, run_id: str, owner) -> Run | None:
        where, params = _owner_filter(owner)
        rows = self._execute("SELECT * FROM runs WHERE id = ?" + where, (run_id, *params), fetch=True)
        return rows[0] if rows else None

    def list(self, owner, statuses: tuple[str, ...] = ()) -> list[Run]:
        where, owner_params = _owner_filter(owner)
        sql, params = "SELECT * FROM runs WHERE 1 = 1" + where, list(owner_params)
        if statuses:
            sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
            params += list(statuses)
        return self._execute(sql + " ORDER BY seq", tuple(params), fetch=True)

    # --- worker leases ---------------------------------------------------------------------------

    def heartbeat(self, worker_id: str, host: str, pid: int) -> None:
        now = time.time()
        self._execute(
            "INSERT INTO workers (id, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            (worker_id, host, pid, now, now),
        )

    def workers(self) -> list[WorkerRow]:
        return self._execute("SELECT * FROM workers", (), fetch=True, row=WorkerRow)

    def remove_worker(self, worker_id: str) -> None:
        self._execute("DELETE FROM workers WHERE id = ?", (worker_id,))
