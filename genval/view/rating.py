"""Rating: the sample people rate, shown blind, and each rating written into the run's labels as it is given.

The sample is `genval sample`'s (genval.judging.sampling.pick: critical slices first, then
strata by slice), drawn per annotator from the items nobody should rate again: those the
annotator already rated, or with `fresh` those anyone rated. The drawn session — its ids in
order, each item's A/B order, the pair, judge, n, seed and guideline hash — is kept in
`labels/.sessions/<annotator>.json` (written whole, then renamed), so reloading the page or
restarting the server continues with the rest of the same items; `fresh`, another n, pair
or judge, a changed guideline or seed, or a session all rated starts a new one, and says why.

Blind: the page never sees a role name; each item's A/B order is drawn per annotator and
item (seeded) and recorded with the rating (`order`: `ab` shows the pair's candidate as A).
A rating is in the pair's own order: for a choice scale the page turns "A" back into the
role shown as A. Each rating is one JSON line appended to `labels/<annotator>.jsonl` (the
human_labels format plus `order`, `guideline` — the sha256 of the guideline text shown — and
`rated_at`), which genval.judging.labels reads for the calibrate stage; undo removes the
annotator's last line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from pathlib import Path

import pandas as pd

from genval.errors import GenvalError
from genval.judging.labels import FOLDER, _check, check_ratings, label_sources, read_sources
from genval.judging.sampling import pick, scale_text

ANNOTATOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SESSIONS = ".sessions"  # inside labels/: not *.jsonl, so no labels reader takes it for ratings
# A session is resumed only when all of these are the same; each named as the user would change it.
MATCH = {"pair": "--pair", "judge": "--judge", "n": "--n", "seed": "the config's analysis.seed"}


def guideline(definition) -> str:
    """Gives the guideline text the page shows: the judge's `guideline`, else its description, then its scale.

    Never the prompt: it is the model's, written for the judge's fenced texts ("Output 2, the
    teacher's output"), and its placeholders and role names would break the blind A/B.
    """
    parts = [definition.guideline.strip() or definition.description.strip(), f"Scale — {scale_text(definition.scale)}"]
    if definition.scale.kind == "ordinal" and definition.scale.anchors:
        parts.append(definition.scale.describe())
    return "\n\n".join(p for p in parts if p)


def check_annotator(name: str | None) -> str:
    if not name or not ANNOTATOR.match(name):
        raise GenvalError(f"annotator {name!r}: give a name of letters, digits, '.', '_' or '-' "
                          "(it names the file labels/NAME.jsonl)")
    return name


class RateSession:
    """One rating session: the pair, the judge whose scale is used, the drawn sample and the labels folder."""

    def __init__(self, run, config, browser, pair: str, n: int, fresh: bool = False, annotator: str | None = None,
                 judge: str | None = None):
        from genval.judging.stage import judge_scopes

        self.run, self.config, self.browser, self.pair = run, config, browser, pair
        self.scopes = judge_scopes(config)
        mine = [s for s in self.scopes if pair in s.pairs and (judge is None or s.name == judge)]
        if not mine:
            answered = sorted({p for s in self.scopes for p in s.pairs})
            raise GenvalError(f"--pair {pair}: no judge{' ' + judge if judge else ''} answers this pair, so there is "
                              f"no scale to rate on (judged pairs: {', '.join(answered) or 'none'})")
        self.scope = mine[0]
        self.definition = self.scope.definition
        self.guideline = guideline(self.definition)
        self.guideline_hash = "sha256:" + hashlib.sha256(self.guideline.encode("utf-8")).hexdigest()
        self.folder = Path(run.root) / FOLDER
        self.lock = threading.Lock()
        self.n, self.sessions = n, {}
        self.sample: list[str] = []
        if annotator:  # the starting annotator's session now, so the command line can say what it is
            self.sample = self.session(annotator, fresh=fresh)["ids"]

    # --- the session --------------------------------------------------------------------------
    def session_path(self, annotator: str) -> Path:
        return self.folder / SESSIONS / f"{check_annotator(annotator)}.json"

    def session(self, annotator: str, fresh: bool = False) -> dict:
        """Gives the annotator's session: resumed from labels/.sessions when it still fits, else drawn and kept."""
        if annotator in self.sessions and not fresh:
            return self.sessions[annotator]
        want = {"pair": self.pair, "judge": self.scope.name, "n": self.n, "seed": self.config.analysis.seed,
                "guideline": self.guideline_hash}
        old, why = None, "--fresh" if fresh else "no earlier session"
        path = self.session_path(annotator)
        if not fresh and path.exists():
            old = _read_session(path)
            why = self._stale(old, want, annotator)
        if why is None:
            session = {**old, "resumed": True, "why": None}
        else:
            rated = self.ratings()
            rated = rated[rated["pair"] == self.pair]
            if not fresh:
                rated = rated[rated["annotator"] == annotator]
            ids = self._draw(self.n, set(rated["id"]))
            session = {"annotator": annotator, **want, "fresh": fresh, "started": _now(), "ids": ids,
                       "orders": [self.order(annotator, i) for i in ids]}
            _replace(path, json.dumps(session, ensure_ascii=False, indent=1) + "\n")
            session = {**session, "resumed": False, "why": why}
        self.sessions[annotator] = session
        return session

    def _stale(self, old: dict, want: dict, annotator: str) -> str | None:
        """Gives why a kept session cannot be resumed (another setting, a changed run, all rated), or None."""
        for key, name in MATCH.items():
            if old.get(key) != want[key]:
                return f"{name} changed from the last session ({old.get(key)} -> {want[key]})"
        if old.get("guideline") != want["guideline"]:
            return "the guideline changed since the last session (its hash differs)"
        missing = [i for i in old["ids"] if self.browser.position(i) is None]
        if missing:
            return f"the run no longer has item {missing[0]!r} of the last session"
        if not self.todo(annotator, old):
            return f"the last session's {len(old['ids'])} items are all rated"
        return None

    def todo(self, annotator: str, session: dict | None = None, ratings: pd.DataFrame | None = None) -> list[str]:
        """Gives the ids of the annotator's session not yet rated, in the session's order."""
        session = session or self.session(annotator)
        ratings = self.ratings() if ratings is None else ratings
        mine = set(ratings[(ratings["annotator"] == annotator) & (ratings["pair"] == self.pair)]["id"])
        return [i for i in session["ids"] if i not in mine]

    def describe(self, annotator: str, todo: list[str] | None = None) -> str:
        """Gives one line on the annotator's session: resumed (with its progress) or new (and why)."""
        session = self.session(annotator)
        n, left = len(session["ids"]), len(self.todo(annotator) if todo is None else todo)
        if session["resumed"]:
            return f"resumed the session started {session['started']}: {n - left} of {n} rated, {left} to go"
        return f"new session of {n} items ({session['why']})"

    # --- the sample ---------------------------------------------------------------------------
    def _sides(self) -> list[tuple[str, str, list]]:
        """Gives each side of the pair that must exist for an item to be rated, as (side, SQL condition on `ex`,
        its arguments): a role's output without error, or the example's reference."""
        candidate, _, other = self.pair.partition("~")
        answered = "EXISTS (SELECT 1 FROM out o WHERE o.pos = ex.pos AND o.role = ? AND o.error IS NULL)"
        sides = [(candidate, answered, [candidate])]
        if other == "reference":
            sides.append((other, "ex.reference IS NOT NULL", []))
        elif other:
            sides.append((other, answered, [other]))
        return sides

    def _draw(self, n: int, exclude: set) -> list[str]:
        """Gives the ids to rate: items of the pair where both sides exist, not excluded, drawn as `genval sample`."""
        b = self.browser
        slices = [s for s in self.config.slices if s in b.meta["slices"]]
        select = ", ".join(["ex.id", *[f'ex."slice_{s}"' for s in slices]])
        sides = self._sides()
        where, args = " AND ".join(sql for _, sql, _ in sides), [a for _, _, side in sides for a in side]
        rows = b.con.execute(f"SELECT {select} FROM ex WHERE {where}", args)
        items = pd.DataFrame(rows.fetchall(), columns=["id", *[f"slice_{s}" for s in slices]]).set_index("id")
        items = items.drop(index=[i for i in exclude if i in items.index])
        ids = pick(items, n, self.config.critical, seed=self.config.analysis.seed)
        order = {ident: b.position(ident) for ident in ids}
        return sorted(ids, key=order.get)

    def lacking(self, ident: str) -> str | None:
        """Gives the side of the pair (`student`, `teacher`, `reference`) that has no output for `ident`, else None:
        the items `_draw` leaves out, by the same conditions."""
        position = self.browser.position(ident)
        for side, sql, args in self._sides():
            if self.browser.con.execute(f"SELECT 1 FROM ex WHERE ex.pos = ? AND {sql}", [position, *args]).fetchone() \
                    is None:
                return side
        return None

    def order(self, annotator: str, ident: str) -> str:
        """Gives the A/B order an annotator sees an item in: `ab` or `ba`, drawn once per (annotator, item)."""
        digest = hashlib.sha256(f"{self.config.analysis.seed}|{annotator}|{ident}".encode()).digest()
        return "ab" if digest[0] % 2 == 0 else "ba"

    # --- what has been rated ------------------------------------------------------------------
    def ratings(self) -> pd.DataFrame:
        """Gives every rating of the run so far (the config's human labels and labels/*.jsonl), checked."""
        return read_sources(label_sources(self.config.human_labels, self.run.root), self.scopes)

    def state(self, annotator: str) -> dict:
        """Gives the next item to rate (blind), progress, the session, scale, guideline and every annotator's counts."""
        check_annotator(annotator)
        session, ratings = self.session(annotator), self.ratings()
        todo = self.todo(annotator, session, ratings)
        n = len(session["ids"])
        out = {"annotator": annotator, "pair": self.pair, "judge": self.scope.name,
               "progress": {"done": n - len(todo), "n": n},
               "session": {"started": session["started"], "resumed": session["resumed"], "why": session["why"],
                           "line": self.describe(annotator, todo)},
               "scale": self.scale(), "guideline": self.guideline, "guideline_hash": self.guideline_hash,
               "can_undo": bool(self._lines(annotator)), "annotators": annotators(ratings, self.pair),
               "agreement": agreement(ratings, self.pair, self.scope), "item": None}
        if todo:
            out["item"] = self.blind(todo[0], session["orders"][session["ids"].index(todo[0])])
        return out

    def scale(self) -> dict:
        s = self.definition.scale
        if s.kind == "ordinal":
            return {"kind": s.kind, "values": list(range(s.min, s.max + 1)), "anchors": s.anchors, "field": "score"}
        return {"kind": s.kind, "values": list(s.labels), "field": "verdict"}

    def blind(self, ident: str, order: str) -> dict:
        """Gives an item as the page shows it: input, the two outputs as A and B, no role name."""
        item = self.browser.items([self.browser.position(ident)])[0]
        candidate, _, other = self.pair.partition("~")
        texts = [item["outputs"][candidate]["text"],
                 item["reference"] if other == "reference" else item["outputs"].get(other, {}).get("text")]
        if order == "ba":
            texts.reverse()
        return {"id": ident, "order": order, "input": item["input"], "a": texts[0], "b": texts[1]}

    # --- writing ------------------------------------------------------------------------------
    def path(self, annotator: str) -> Path:
        return self.folder / f"{check_annotator(annotator)}.jsonl"

    def _lines(self, annotator: str) -> list[str]:
        path = self.path(annotator)
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] \
            if path.exists() else []

    def add(self, body) -> dict:
        """Checks one rating (the POST body) and appends it to labels/<annotator>.jsonl; raises before any write."""
        where = "POST /api/labels"
        if not isinstance(body, dict):
            raise GenvalError(f"{where}: the body should be one JSON object (id, pair, annotator, verdict or score)")
        known = {"id", "pair", "annotator", "verdict", "score", "note", "aspect", "order"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise GenvalError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(known))})")
        body = {"pair": self.pair, **body}
        rating = _check(body, where)
        if rating is None:
            raise GenvalError(f"{where}: the rating has no annotator and neither verdict nor score")
        check_annotator(rating["annotator"])
        if body.get("order") not in (None, "ab", "ba"):
            raise GenvalError(f"{where}: order {body['order']!r} should be 'ab' or 'ba'")
        if self.browser.position(rating["id"]) is None:
            raise GenvalError(f"{where}: no example with id {rating['id']!r} in this run")
        lacking = self.lacking(rating["id"])
        if lacking:  # calibration leaves such a rating out of every n: refuse it rather than keep it unused
            raise GenvalError(f"{where}: {rating['id']!r} has no {lacking} output to rate for {self.pair} (it failed "
                              "or is missing); rate items whose outputs both exist")
        check_ratings([rating], [where], self.scopes)
        with self.lock:
            ratings = self.ratings()
            same = ratings[(ratings["id"] == rating["id"]) & (ratings["pair"] == rating["pair"])
                           & (ratings["annotator"] == rating["annotator"])]
            if len(same):
                raise GenvalError(f"{where}: {rating['annotator']} already rated {rating['id']!r} ({rating['pair']}) "
                                  f"in {same['source'].iloc[0]}; undo it first to rate it again")
            record = {k: v for k, v in rating.items() if v is not None}
            if record.get("score") is not None and float(record["score"]).is_integer():
                record["score"] = int(record["score"])
            record.update(order=body.get("order") or "ab", guideline=self.guideline_hash, rated_at=_now())
            path = self.path(rating["annotator"])
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        return record

    def undo(self, annotator: str) -> dict | None:
        """Removes the annotator's last rating (the file rewritten whole, then renamed); gives it, or None."""
        with self.lock:
            lines = self._lines(annotator)
            if not lines:
                return None
            path = self.path(annotator)
            if len(lines) == 1:
                path.unlink()
            else:
                _replace(path, "".join(line + "\n" for line in lines[:-1]))
            return json.loads(lines[-1])


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _replace(path: Path, text: str) -> None:
    """Writes `text` to `path` whole or not at all: a temporary file beside it, synced, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_session(path: Path) -> dict:
    """Gives a kept session, or raises naming the file when it is not one this module wrote."""
    try:
        session = json.loads(path.read_text(encoding="utf-8"))
        if not (isinstance(session.get("ids"), list) and isinstance(session.get("orders"), list)
                and len(session["ids"]) == len(session["orders"]) and "started" in session):
            raise ValueError("no 'ids' and 'orders' of one length, or no 'started'")
    except (ValueError, AttributeError) as exc:
        raise GenvalError(f"{path}: not a rating session genval view wrote ({exc}); "
                          "delete it or start with --fresh") from None
    return session


def annotators(ratings: pd.DataFrame, pair: str) -> list[dict]:
    """Gives, per annotator of `pair`, how many of its items they rated (every source: labels/ and human_labels)."""
    counts = ratings[ratings["pair"] == pair].drop_duplicates(["id", "annotator"])["annotator"].value_counts()
    return [{"annotator": str(a), "rated": int(counts[a])} for a in sorted(counts.index)]


def agreement(ratings: pd.DataFrame, pair: str, scope) -> list[dict]:
    """Gives, per two annotators who rated the same items of `pair`: the items shared, raw agreement, Cohen's kappa.

    Each rating is read through the judge's scale as calibrate reads it (`Equivalent` is
    `equivalent`; a score rounds to its step), and the pairs are genval.judging.bias's, so the
    page says what calibration.json says.
    """
    from genval.judging.bias import annotator_pairs
    from genval.judging.calibration import human_values

    rows = ratings[ratings["pair"] == pair]
    if scope.aspect is not None:
        rows = rows[rows["aspect"].isna() | (rows["aspect"] == scope.aspect)]
    rated = human_values(rows, scope.definition, "labels")
    return [{"annotators": [a["a"], a["b"]], "n": a["n"], "agreement": a["agreement"], "kappa": a["kappa"]}
            for a in annotator_pairs(rated, scope.definition)]
