"""The request cache: every model call, keyed by model fingerprint + parameters + prompt.

SQLite in WAL mode, one committed row per finished request, so a killed run loses nothing
that finished and two processes can write at once. A failed request is never cached: a
re-run tries it again.

Each answer keeps how it was measured: the pass (one timed stretch of live calls) that made
it and the seconds since that pass's clock started when it finished; `passes` holds each
pass's run, role, start, batch settings, and — once it finished — its wall time and answers.
A later run that takes answers from here reports the figures measured when they were made.
A cache written before genval recorded passes gains the two columns when it is opened; its
old answers have no pass.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

from genval.errors import GenvalError

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL,
    pass_id TEXT,
    elapsed_s REAL
)
"""
PASSES = "CREATE TABLE IF NOT EXISTS passes (pass_id TEXT PRIMARY KEY, info TEXT NOT NULL)"
# Random keys made once per cache and kept in it, never printed: the judge prompts' fence nonces
# (genval.judging.prompts) are derived with one, so they are stable for this cache (its prompts stay
# cacheable) and unknowable to an output that tries to close its fence.
SECRETS = "CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL)"
ADDED_COLUMNS = {"pass_id": "TEXT", "elapsed_s": "REAL"}  # what a cache from before passes lacks


def _add_columns(conn: sqlite3.Connection) -> None:
    """Adds the columns an older cache file lacks; a second process doing the same at once is harmless."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
    for name, kind in ADDED_COLUMNS.items():
        if name not in have:
            try:
                conn.execute(f"ALTER TABLE requests ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):
                    raise
    conn.execute("CREATE INDEX IF NOT EXISTS requests_pass ON requests (pass_id)")


def request_key(model_fingerprint: str, params: dict, prompt) -> str:
    """Gives the cache key of one request: sha256 over the model, its parameters and the prompt."""
    blob = json.dumps(
        {"model": model_fingerprint, "params": params, "prompt": prompt},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class RequestCache:
    """A SQLite file of finished requests; safe to share between threads and processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(SCHEMA)
                conn.execute(PASSES)
                conn.execute(SECRETS)
                _add_columns(conn)
        except (OSError, sqlite3.Error) as exc:
            raise GenvalError(f"{self.path}: cannot open the request cache ({exc}); "
                              "point 'cache' at a file genval may write") from None

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get(self, key: str) -> dict | None:
        row = self._connect().execute("SELECT response FROM requests WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def _select(self, sql: str, values: list) -> list[tuple]:
        """Gives the rows of `sql` (with one `{marks}` for an IN list) over `values`, 500 at a time."""
        conn, rows = self._connect(), []
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            rows.extend(conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk))
        return rows

    def lookup(self, keys: list[str]) -> dict[str, tuple[dict, str | None]]:
        """Gives the cached responses among `keys`, as key → (response, the pass that measured it or None)."""
        rows = self._select("SELECT key, response, pass_id FROM requests WHERE key IN ({marks})", keys)
        return {key: (json.loads(response), pass_id) for key, response, pass_id in rows}

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        """Gives the cached responses among `keys`, as key → response."""
        return {key: response for key, (response, _) in self.lookup(keys).items()}

    def put(self, key: str, model: str, response: dict, pass_id: str | None = None,
            elapsed_s: float | None = None) -> None:
        """Writes one finished request, committed at once, with the pass that measured it."""
        blob = json.dumps(response, ensure_ascii=False)
        self._connect().execute(
            "INSERT OR REPLACE INTO requests (key, model, response, created, pass_id, elapsed_s) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (key, model, blob, time.time(), pass_id, elapsed_s),
        )

    def secret(self, name: str) -> bytes:
        """Gives this cache's secret called `name`: 32 random bytes, made the first time it is asked for.

        Two processes asking at once get the same one (the first insert wins). It never leaves the cache file.
        """
        import os

        conn = self._connect()
        conn.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", (name, os.urandom(32)))
        return bytes(conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()[0])

    def record_pass(self, pass_id: str, info: dict) -> None:
        """Writes (or rewrites) what is known of a pass: at its start, and again with its figures when it ends."""
        self._connect().execute("INSERT OR REPLACE INTO passes (pass_id, info) VALUES (?, ?)",
                                (pass_id, json.dumps(info, ensure_ascii=False, default=str)))

    def passes(self, pass_ids) -> dict[str, dict]:
        """Gives pass id → its record, with `answers` and `wall_s` for every pass.

        A pass that never finished (a killed run) has no figures of its own: its answers are the
        rows it wrote and its wall time the last of their `elapsed_s`, and `finished` is False.
        """
        ids = [p for p in pass_ids if p]
        out = {pass_id: json.loads(info)
               for pass_id, info in self._select("SELECT pass_id, info FROM passes WHERE pass_id IN ({marks})", ids)}
        unfinished = [p for p in ids if out.get(p, {}).get("wall_s") is None]
        for pass_id, answers, wall in self._select(
                "SELECT pass_id, COUNT(*), MAX(elapsed_s) FROM requests WHERE pass_id IN ({marks}) GROUP BY pass_id",
                unfinished):
            out[pass_id] = {**out.get(pass_id, {}), "answers": answers, "wall_s": wall, "finished": False}
        return out

    def __len__(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM requests").fetchone()[0]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
