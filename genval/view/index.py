"""The viewer's index: the run's tables streamed once into one SQLite file, for paging, filtering and sorting.

Parquet reads a row group at a time; a page of 50 examples sorted by a score touches rows
spread over every row group, so serving pages straight from Parquet would read the whole
table per page. SQLite gives row-level access with memory bounded by its page cache. The
index holds one row per example (texts, slices, flags), one per output, one per judgment,
and the scores pivoted wide (one REAL column per pair × metric), so a filter or a sort is a
scan of 100k short rows, not of the scores table. It is built batch by batch (memory: one
batch plus the pivoted scores, 8 bytes × examples × score columns) into a temporary file
renamed into place, and rebuilt only when a table it reads changed (size and mtime).
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from genval.analysis.slices import DIFFICULTY_COLUMNS, LEVELS, difficulty_levels
from genval.analysis.table import FORMAT_METRICS, add_scores
from genval.columns import ColumnStore, Positions
from genval.errors import GenvalError
from genval.runfolder import Run

VERSION = 2  # bump when the layout below changes: an index of another version is rebuilt
FOLDER = ".view"
SOURCES = ("examples", "outputs", "scores", "judgments")
JUDGMENT_COLUMNS = ("id", "pair", "judge", "verdict", "score", "raw", "parsed", "problem", "swap_consistent")


def _stamp(run: Run) -> dict:
    """Gives what the index was built from: each source table's size and mtime, and the layout version."""
    out = {"version": VERSION}
    for name in SOURCES:
        path = run.path(name)
        if path.exists():
            st = path.stat()
            out[name] = [st.st_size, st.st_mtime_ns]
    return out


def _text(value):
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def open_index(run: Run, progress=None) -> sqlite3.Connection:
    """Gives a read-only connection to the run's index, building it first when it is missing or stale."""
    if not run.has("examples"):
        raise GenvalError(f"{run.root}: no examples table; run `genval run CONFIG` first")
    path = run.root / FOLDER / "index.sqlite"
    stamp = _stamp(run)
    if path.exists():
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            if json.loads(con.execute("SELECT value FROM meta WHERE key='stamp'").fetchone()[0]) == stamp:
                return con
            con.close()
        except (sqlite3.Error, TypeError, ValueError):
            pass
    build(run, path, stamp, progress)
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


def _say(progress, message: str) -> None:
    if progress is not None:
        progress.say(message)


def build(run: Run, path: Path, stamp: dict, progress=None) -> None:
    """Writes the index of `run` at `path` (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".sqlite", dir=path.parent)
    os.close(fd)
    try:
        con = sqlite3.connect(tmp)
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        meta = _examples(run, con, progress)
        positions = meta.pop("_positions")
        meta["roles"] = _outputs(run, con, positions, progress)
        meta.update(_scores(run, con, positions, progress))
        _difficulty(run, con, meta)
        meta["judges"] = _judgments(run, con, positions, progress)
        _flags(con, meta)
        meta["stamp"] = stamp
        meta["name"] = run.manifest.get("config", {}).get("name") or run.root.name
        con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
        con.commit()
        con.close()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _examples(run: Run, con: sqlite3.Connection, progress) -> dict:
    columns = run.table_columns("examples")
    slices = [c[len("slice_"):] for c in columns if c.startswith("slice_")]
    wanted = [c for c in ("id", "input", "prompt", "reference", "label") if c in columns] + \
        [f"slice_{s}" for s in slices]
    slice_defs = "".join(f', "slice_{s}" TEXT' for s in slices)
    con.execute("CREATE TABLE ex (pos INTEGER PRIMARY KEY, id TEXT UNIQUE, input TEXT, reference TEXT, label TEXT, "
                f"failed INTEGER DEFAULT 0, student_only_error INTEGER DEFAULT 0, format_failure INTEGER DEFAULT 0"
                f"{slice_defs})")
    positions: dict[str, int] = {}
    quoted = "".join(f', "slice_{s}"' for s in slices)
    insert = f"INSERT INTO ex (pos, id, input, reference, label{quoted}) VALUES ({', '.join('?' * (5 + len(slices)))})"
    for frame in run.iter_table("examples", columns=wanted):
        ids = frame["id"].astype(str).tolist()
        start = len(positions)
        for k, ident in enumerate(ids):
            positions[ident] = start + k
        inputs = frame["input"] if "input" in frame else frame.get("prompt", pd.Series([None] * len(frame)))
        rows = zip(range(start, start + len(ids)), ids, map(_text, inputs),
                   map(_text, frame.get("reference", [None] * len(frame))),
                   map(_text, frame.get("label", [None] * len(frame))),
                   *[map(_text, frame[f"slice_{s}"]) for s in slices])
        con.executemany(insert, rows)
    _say(progress, f"view index: {len(positions)} examples")
    return {"n": len(positions), "slices": slices, "_positions": positions}


def _outputs(run: Run, con: sqlite3.Connection, positions: dict, progress) -> list[str]:
    con.execute("CREATE TABLE out (pos INTEGER, role TEXT, text TEXT, error TEXT, label_probs TEXT, latency_s REAL, "
                "PRIMARY KEY (pos, role)) WITHOUT ROWID")
    if not run.has("outputs"):
        return []
    present = set(run.table_columns("outputs"))
    wanted = [c for c in ("id", "role", "text", "error", "label_probs", "latency_s") if c in present]
    roles: list[str] = []
    for frame in run.iter_table("outputs", columns=wanted):
        for role in frame["role"].astype(str).unique():
            if role not in roles:
                roles.append(role)
        n = len(frame)
        rows = zip([positions.get(i, -1) for i in frame["id"].astype(str)], frame["role"].astype(str),
                   map(_text, frame.get("text", [None] * n)), map(_text, frame.get("error", [None] * n)),
                   map(_text, frame.get("label_probs", [None] * n)),
                   [None if v != v else float(v) for v in frame.get("latency_s", pd.Series([np.nan] * n))])
        con.executemany("INSERT OR REPLACE INTO out VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.execute("DELETE FROM out WHERE pos < 0")
    _say(progress, f"view index: outputs of {', '.join(roles)}")
    return roles


def _scores(run: Run, con: sqlite3.Connection, positions: dict, progress) -> dict:
    """Pivots the scores table wide: one column `s<k>` per (pair, metric), and the non-empty details beside."""
    con.execute("CREATE TABLE detail (pos INTEGER, pair TEXT, metric TEXT, detail TEXT)")
    columns: dict[tuple[str, str], int] = {}
    if not run.has("scores"):
        con.execute("CREATE TABLE sc (pos INTEGER PRIMARY KEY)")
        return {"scores": []}
    present = set(run.table_columns("scores"))
    wanted = [c for c in ("id", "pair", "metric", "value", "detail") if c in present]
    n = len(positions)
    values = np.full((n, 8), np.nan)
    for frame in run.iter_table("scores", columns=wanted):
        pos = np.fromiter((positions.get(i, -1) for i in frame["id"].astype(str)), dtype=np.int64, count=len(frame))
        keys = list(zip(frame["pair"].astype(str), frame["metric"].astype(str)))
        for key in dict.fromkeys(keys):
            if key not in columns:
                columns[key] = len(columns)
        col = np.fromiter((columns[k] for k in keys), dtype=np.int64, count=len(keys))
        if len(columns) > values.shape[1]:
            values = np.hstack([values, np.full((n, len(columns) * 2 - values.shape[1]), np.nan)])
        ok = pos >= 0
        values[pos[ok], col[ok]] = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float)[ok]
        if "detail" in frame:
            has = frame["detail"].notna().to_numpy() & ok
            con.executemany("INSERT INTO detail VALUES (?, ?, ?, ?)",
                            zip(pos[has].tolist(), frame["pair"][has].astype(str), frame["metric"][has].astype(str),
                                frame["detail"][has].astype(str)))
    names = [f"s{k}" for k in range(len(columns))]
    con.execute(f"CREATE TABLE sc (pos INTEGER PRIMARY KEY{''.join(f', {c} REAL' for c in names)})")
    insert = f"INSERT INTO sc VALUES ({', '.join('?' * (1 + len(names)))})"
    for lo in range(0, n, 8192):
        block = values[lo:lo + 8192, :len(columns)]
        con.executemany(insert, ([lo + k, *[None if v != v else float(v) for v in row]]
                                 for k, row in enumerate(block.tolist())))
    con.execute("CREATE INDEX detail_pos ON detail (pos)")
    _say(progress, f"view index: {len(columns)} scores per example")
    return {"scores": [[pair, metric, f"s{k}"] for (pair, metric), k in columns.items()]}


def _difficulty(run: Run, con: sqlite3.Connection, meta: dict) -> None:
    """Adds the derived `difficulty` slice where the data has none, by aggregate's own rule.

    The summary and the report name `difficulty=hard` (and link to it) when aggregate derived
    it from the teacher's quality; without the column here such a link was an error.
    """
    if "difficulty" in meta["slices"] or not run.has("scores"):
        return
    positions = Positions(run)
    store = ColumnStore(run, positions.n)
    add_scores(store, run, positions, keep=DIFFICULTY_COLUMNS)
    levels = difficulty_levels(store)[0]
    if levels is None:
        return
    con.execute('ALTER TABLE ex ADD COLUMN "slice_difficulty" TEXT')
    con.executemany('UPDATE ex SET "slice_difficulty" = ? WHERE pos = ?',
                    ((LEVELS[v], k) for k, v in enumerate(levels.tolist()) if v >= 0))
    meta["slices"].append("difficulty")


def _judgments(run: Run, con: sqlite3.Connection, positions: dict, progress) -> list[list[str]]:
    con.execute("CREATE TABLE jd (pos INTEGER, pair TEXT, judge TEXT, verdict TEXT, score REAL, raw TEXT, "
                "parsed INTEGER, problem TEXT, swap_consistent INTEGER)")
    judges: dict[tuple[str, str], None] = {}
    if run.has("judgments"):
        present = set(run.table_columns("judgments"))
        wanted = [c for c in JUDGMENT_COLUMNS if c in present]
        for frame in run.iter_table("judgments", columns=wanted):
            frame = frame.reindex(columns=list(JUDGMENT_COLUMNS))
            judges.update(dict.fromkeys(zip(frame["pair"].astype(str), frame["judge"].astype(str))))
            rows = [(positions.get(str(r[0]), -1), str(r[1]), str(r[2]), _text(r[3]),
                     None if r[4] is None or r[4] != r[4] else float(r[4]), _text(r[5]),
                     None if pd.isna(r[6]) else int(bool(r[6])), _text(r[7]),
                     None if pd.isna(r[8]) else int(bool(r[8]))) for r in frame.itertuples(index=False)]
            con.executemany("INSERT INTO jd VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute("CREATE INDEX jd_pos ON jd (pos)")
    con.execute("CREATE INDEX jd_verdict ON jd (judge, verdict)")
    _say(progress, f"view index: {len(judges)} judge × pair")
    return [list(k) for k in judges]


def score_column(meta: dict, pair: str, metric: str) -> str | None:
    return next((c for p, m, c in meta["scores"] if p == pair and m == metric), None)


def _flags(con: sqlite3.Connection, meta: dict) -> None:
    """Sets each example's flags: failed (an output has an error), student_only_error, format_failure.

    A student-only error is an example the teacher gets right and a candidate does not: by
    `label_correct` against the reference where the run has labels, else (no correctness to
    read) a candidate whose request failed while the teacher's did not. A format failure is a
    candidate output failing a format check (json_valid, schema_valid: genval.analysis.table).
    """
    con.execute("UPDATE ex SET failed = 1 WHERE pos IN (SELECT pos FROM out WHERE error IS NOT NULL)")
    candidates = [r for r in meta["roles"] if r != "teacher"]
    teacher_right = score_column(meta, "teacher~reference", "label_correct")
    only = []
    for role in candidates:
        mine = score_column(meta, f"{role}~reference", "label_correct")
        if teacher_right and mine:
            only.append(f"(sc.{teacher_right} = 1 AND (sc.{mine} = 0 OR sc.{mine} IS NULL))")
    if only:
        con.execute(f"UPDATE ex SET student_only_error = 1 WHERE pos IN (SELECT pos FROM sc WHERE {' OR '.join(only)})")
    else:
        con.execute("UPDATE ex SET student_only_error = 1 WHERE pos IN (SELECT c.pos FROM out c JOIN out t "
                    "ON c.pos = t.pos AND t.role = 'teacher' WHERE c.role != 'teacher' AND c.error IS NOT NULL "
                    "AND t.error IS NULL)")
    fails = [f"sc.{c} = 0" for role in candidates for metric in FORMAT_METRICS
             if (c := score_column(meta, role, metric))]
    if fails:
        con.execute(f"UPDATE ex SET format_failure = 1 WHERE pos IN (SELECT pos FROM sc WHERE {' OR '.join(fails)})")
