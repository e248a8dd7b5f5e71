"""The request cache: every model call, keyed by model fingerprint + parameters + prompt.

SQLite in WAL mode, one committed row per finished request, so a killed run loses nothing
that finished and two processes can write at once. A failed request is never cached: a
re-run tries it again.
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
    created REAL NOT NULL
)
"""


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

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        """Gives the cached responses among `keys`, as key → response."""
        out: dict[str, dict] = {}
        conn = self._connect()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, response in conn.execute(f"SELECT key, response FROM requests WHERE key IN ({marks})", chunk):
                out[key] = json.loads(response)
        return out

    def put(self, key: str, model: str, response: dict) -> None:
        """Writes one finished request, committed at once."""
        blob = json.dumps(response, ensure_ascii=False)
        self._connect().execute(
            "INSERT OR REPLACE INTO requests (key, model, response, created) VALUES (?, ?, ?, ?)",
            (key, model, blob, time.time()),
        )

    def __len__(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM requests").fetchone()[0]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
