"""The run store: one SQLite file (WAL) under STUDIO_HOME; parameterised SQL only.

Every read and write takes the owner, so one user can never see or touch another's runs.
Connections are short-lived and per call, so threads and processes can share the file.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
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
"""


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

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self):
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=30000")
        try:
            yield db
        finally:
            db.close()

    def _execute(self, sql: str, params: tuple = (), fetch: bool = False):
        """Run one statement, retrying briefly if another writer holds the lock past busy_timeout."""
        for attempt in range(20):
            try:
                with self._connect() as db:
                    cursor = db.execute(sql, params)
                    return [Run(**dict(row)) for row in cursor.fetchall()] if fetch else cursor.rowcount
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    # --- writes ----------------------------------------------------------------------------------

    def add(self, owner: str, name: str, run_dir: str, run_id: str | None = None) -> str:
        run_id = run_id or new_run_id()
        self._execute(
            "INSERT INTO runs (id, owner, name, run_dir, status, created_at) VALUES (?, ?, ?, ?, 'queued', ?)",
            (run_id, owner, name, run_dir, time.time()),
        )
        return run_id

    def update(self, run_id: str, owner: str | None = None, **fields) -> int:
        """Set fields on one run (owner-checked unless owner is None, which only the worker uses)."""
        allowed = {f for f in Run.__dataclass_fields__ if f not in ("seq", "id", "owner")}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown run fields: {sorted(unknown)}")
        columns = ", ".join(f"{name} = ?" for name in fields)  # names come from the dataclass, never from input
        sql = f"UPDATE runs SET {columns} WHERE id = ?" + (" AND owner = ?" if owner is not None else "")
        params = (*fields.values(), run_id) + ((owner,) if owner is not None else ())
        return self._execute(sql, params)

    def claim_next(self) -> Run | None:
        """Atomically move the oldest queued run to running (FIFO) and return it."""
        rows = self._execute(
            "UPDATE runs SET status = 'running', started_at = ?, attempts = attempts + 1, pid = NULL "
            "WHERE seq = (SELECT seq FROM runs WHERE status = 'queued' ORDER BY seq LIMIT 1) RETURNING *",
            (time.time(),),
            fetch=True,
        )
        return rows[0] if rows else None

    def delete(self, run_id: str, owner: str) -> int:
        return self._execute("DELETE FROM runs WHERE id = ? AND owner = ?", (run_id, owner))

    # --- reads -----------------------------------------------------------------------------------

    def get(self, run_id: str, owner: str | None) -> Run | None:
        if owner is None:
            rows = self._execute("SELECT * FROM runs WHERE id = ?", (run_id,), fetch=True)
        else:
            rows = self._execute("SELECT * FROM runs WHERE id = ? AND owner = ?", (run_id, owner), fetch=True)
        return rows[0] if rows else None

    def list(self, owner: str | None, statuses: tuple[str, ...] = ()) -> list[Run]:
        sql, params = "SELECT * FROM runs WHERE 1 = 1", []
        if owner is not None:
            sql += " AND owner = ?"
            params.append(owner)
        if statuses:
            sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
            params += list(statuses)
        return self._execute(sql + " ORDER BY seq", tuple(params), fetch=True)
