"""Browsing: a filter (genval.viewfilter) as one query over the index, and a page of examples in full.

Every key of the filter syntax is read here. A name the run does not have (slice field,
metric, judge, diagnosis) is a one-line error naming what the run has, never an empty page.
"""

from __future__ import annotations

import json
import sqlite3

from genval import registry
from genval.errors import GenvalError, did_you_mean
from genval.summary import Summary
from genval.view.index import score_column

MAX_LIMIT = 200


class Browser:
    """Queries one run's index: totals and pages of examples for a filter."""

    def __init__(self, con: sqlite3.Connection, summary: Summary | None):
        self.con = con
        self.meta = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}
        self.diagnoses = summary.diagnoses if summary else []
        self.rare = sorted(summary.slices.get("rare_class", {})) if summary else []

    # --- what the run has ---------------------------------------------------------------------
    def pairs(self) -> list[str]:
        return list(dict.fromkeys(p for p, _, _ in self.meta["scores"]))

    def slices(self) -> dict[str, list[str]]:
        out = {}
        for field in self.meta["slices"]:
            rows = self.con.execute(f'SELECT DISTINCT "slice_{field}" FROM ex ORDER BY 1 LIMIT 200').fetchall()
            out[field] = [r[0] for r in rows if r[0] is not None]
        if self.rare:
            out["rare_class"] = self.rare
        return out

    def run_info(self) -> dict:
        return {"name": self.meta["name"], "n": self.meta["n"], "roles": self.meta["roles"], "pairs": self.pairs(),
                "metrics": self.meta["scores"] and sorted({m for _, m, _ in self.meta["scores"]}),
                "scores": [[p, m] for p, m, _ in self.meta["scores"]],
                "judges": [{"judge": j, "pair": p, "verdicts": self._verdicts(j)} for p, j in self.meta["judges"]],
                "slices": self.slices(),
                "diagnoses": [{"kind": d.kind, "message": d.message} for d in self.diagnoses]}

    def _verdicts(self, judge: str) -> list[str]:
        rows = self.con.execute("SELECT DISTINCT verdict FROM jd WHERE judge = ? AND verdict IS NOT NULL ORDER BY 1",
                                (judge,)).fetchall()
        return [r[0] for r in rows]

    # --- the filter as SQL --------------------------------------------------------------------
    def _column(self, metric: str, pair: str | None) -> str:
        """Gives the index column of a metric for a pair; without a pair, the first pair that has it, fidelity first."""
        if pair:
            column = score_column(self.meta, pair, metric)
            if column is None:
                raise GenvalError(f"filter: pair {pair!r} has no score {metric!r} (its scores: "
                                  f"{', '.join(m for p, m, _ in self.meta['scores'] if p == pair) or 'none'})")
            return column
        ranked = sorted(self.meta["scores"], key=lambda s: ("~teacher" not in s[0], "~" not in s[0]))
        column = next((c for _, m, c in ranked if m == metric), None)
        if column is None:
            raise GenvalError(f"filter: no score named {metric!r} in this run "
                              f"(it has: {', '.join(sorted({m for _, m, _ in self.meta['scores']}))})")
        return column

    def _slice(self, text: str) -> tuple[str, list]:
        field, sep, value = text.partition("=")
        if not sep:
            raise GenvalError(f"filter: slice={text!r} should be FIELD=VALUE, e.g. critical=true")
        if field in self.meta["slices"]:
            if self.con.execute(f'SELECT 1 FROM ex WHERE "slice_{field}" = ? LIMIT 1', (value,)).fetchone() is None:
                self._no_value(field, value, self.slices()[field])
            return f'ex."slice_{field}" = ?', [value]
        if field == "rare_class":
            if value not in self.rare:
                self._no_value(field, value, self.rare)
            return "ex.label = ?", [value]
        fields = self.meta["slices"] + (["rare_class"] if "rare_class" in self.slices() else [])
        raise GenvalError(f"filter: no slice field {field!r} in this run (it has: {', '.join(fields)})")

    @staticmethod
    def _no_value(field: str, value: str, values: list[str]) -> None:
        # A misspelt value would match nothing: an empty page that reads as "no such examples".
        hint = did_you_mean(value, values) or next(  # a case slip difflib's ratio misses on short values ('A', 'a')
            (f"; did you mean '{v}'?" for v in values if v.casefold() == value.casefold()), "")
        shown = ", ".join(values[:20]) + (" …" if len(values) > 20 else "")
        raise GenvalError(f"filter: no example has {field}={value!r} (its values: {shown}){hint}")

    def _diagnosis(self, kind: str) -> tuple[str, list]:
        found = [d for d in self.diagnoses if d.kind == kind]
        if not found:
            kinds = sorted({d.kind for d in self.diagnoses})
            raise GenvalError(f"filter: diagnosis={kind!r} is not among this run's diagnoses "
                              f"({', '.join(kinds) or 'none in summary.json'})")
        parts, args = [], []
        for d in found:
            numbers = d.numbers
            if d.slice:
                sql, a = self._slice(d.slice)
                parts.append(sql)
                args += a
            elif kind == "student_only_errors":
                parts.append("ex.student_only_error = 1")
            elif kind == "format_failures" and numbers.get("metric"):
                columns = [c for role in self.meta["roles"] if role != "teacher"
                           if (c := score_column(self.meta, role, numbers["metric"]))]
                parts.append("(" + " OR ".join(f"sc.{c} = 0" for c in columns) + ")" if columns else "0")
            elif kind == "judge_not_validated" and numbers.get("judge"):
                parts.append("EXISTS (SELECT 1 FROM jd WHERE jd.pos = ex.pos AND jd.judge = ?)")
                args.append(numbers["judge"])
            elif kind in ("teacher_ceiling", "poor_calibration"):
                wrong = [c for role in self.meta["roles"] if role != "teacher"
                         if (c := score_column(self.meta, f"{role}~reference", "label_correct"))]
                parts.append("(" + " OR ".join(f"sc.{c} = 0" for c in wrong) + ")" if wrong else "1")
            else:  # a run-wide pattern (latency against cost): every example is what it is about
                parts.append("1")
        return "(" + " OR ".join(parts) + ")", args

    def where(self, terms: dict) -> tuple[str, list]:
        """Gives the WHERE clause and its arguments for a parsed filter."""
        parts, args = ["1"], []
        pair = terms.get("pair")
        if pair and pair not in self.pairs() and pair not in self.meta["roles"]:
            raise GenvalError(f"filter: no pair {pair!r} in this run (pairs: {', '.join(self.pairs())})")
        if "slice" in terms:
            sql, a = self._slice(terms["slice"])
            parts.append(sql)
            args += a
        if "metric" in terms:
            column = self._column(terms["metric"], pair)
            parts.append(f"sc.{column} IS NOT NULL")
            for key, op in (("min", ">="), ("max", "<=")):
                if key in terms:
                    parts.append(f"sc.{column} {op} ?")
                    args.append(float(terms[key]))
        elif "min" in terms or "max" in terms:
            raise GenvalError("filter: min and max need metric=NAME (the score they bound)")
        if "judge" in terms or "verdict" in terms:
            sql = "EXISTS (SELECT 1 FROM jd WHERE jd.pos = ex.pos"
            if "judge" in terms:
                if terms["judge"] not in {j for _, j in self.meta["judges"]}:
                    raise GenvalError(f"filter: no judge {terms['judge']!r} in this run (judges: "
                                      f"{', '.join(sorted({j for _, j in self.meta['judges']})) or 'none'})")
                sql += " AND jd.judge = ?"
                args.append(terms["judge"])
            if "verdict" in terms:
                sql += " AND jd.verdict = ?"
                args.append(terms["verdict"])
            if pair and "~" in pair:
                sql += " AND jd.pair = ?"
                args.append(pair)
            parts.append(sql + ")")
        if "diagnosis" in terms:
            sql, a = self._diagnosis(terms["diagnosis"])
            parts.append(sql)
            args += a
        if "flag" in terms:
            parts.append(f"ex.{terms['flag']} = 1")  # parse_filter allows only the three flag columns
        if terms.get("q"):
            like = "%" + terms["q"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            parts.append("(ex.id = ? OR ex.input LIKE ? ESCAPE '\\' OR ex.reference LIKE ? ESCAPE '\\' OR EXISTS "
                         "(SELECT 1 FROM out WHERE out.pos = ex.pos AND out.text LIKE ? ESCAPE '\\'))")
            args += [terms["q"], like, like, like]
        return " AND ".join(parts), args

    def order(self, terms: dict) -> str:
        """Gives the ORDER BY clause: the sort score (worst first by default, by its registered direction), then
        position."""
        if "sort" not in terms:
            return "ORDER BY ex.pos"
        column = self._column(terms["sort"], terms.get("pair"))
        found = registry.spec(terms["sort"])
        lower_is_better = bool(found and found.sign and found.sign < 0)
        order = terms.get("order") or ("desc" if lower_is_better else "asc")
        return f"ORDER BY sc.{column} IS NULL, sc.{column} {order.upper()}, ex.pos"

    # --- pages --------------------------------------------------------------------------------
    def page(self, terms: dict, offset: int = 0, limit: int = 50) -> dict:
        """Gives {"total", "offset", "items"}: the examples matching `terms`, `limit` of them from `offset`."""
        limit = max(1, min(int(limit), MAX_LIMIT))
        offset = max(0, int(offset))
        where, args = self.where(terms)
        base = f"FROM ex JOIN sc ON sc.pos = ex.pos WHERE {where}"
        total = self.con.execute(f"SELECT COUNT(*) {base}", args).fetchone()[0]
        rows = self.con.execute(f"SELECT ex.pos {base} {self.order(terms)} LIMIT ? OFFSET ?",
                                [*args, limit, offset]).fetchall()
        return {"total": total, "offset": offset, "items": self.items([r[0] for r in rows])}

    def position(self, ident: str) -> int | None:
        row = self.con.execute("SELECT pos FROM ex WHERE id = ?", (ident,)).fetchone()
        return None if row is None else row[0]

    def items(self, positions: list[int]) -> list[dict]:
        """Gives each example in full: texts, every output, scores by pair, judgments, flags."""
        if not positions:
            return []
        marks = ", ".join("?" * len(positions))
        slices = "".join(f', "slice_{s}"' for s in self.meta["slices"])
        found = {}
        for row in self.con.execute(f"SELECT pos, id, input, reference, label, failed, student_only_error, "
                                    f"format_failure{slices} FROM ex WHERE pos IN ({marks})", positions):
            found[row[0]] = {"id": row[1], "input": row[2], "reference": row[3], "label": row[4],
                             "flags": {"failed": bool(row[5]), "student_only_error": bool(row[6]),
                                       "format_failure": bool(row[7])},
                             "slices": dict(zip(self.meta["slices"], row[8:])),
                             "outputs": {}, "scores": {}, "details": {}, "judgments": []}
        for pos, role, text, error, probs, latency in self.con.execute(
                f"SELECT pos, role, text, error, label_probs, latency_s FROM out WHERE pos IN ({marks})", positions):
            found[pos]["outputs"][role] = {"text": text, "error": error, "latency_s": latency,
                                           "label_probs": _json(probs)}
        columns = [c for _, _, c in self.meta["scores"]]
        if columns:
            for row in self.con.execute(f"SELECT pos, {', '.join(columns)} FROM sc WHERE pos IN ({marks})", positions):
                scores = found[row[0]]["scores"]
                for (pair, metric, _), value in zip(self.meta["scores"], row[1:]):
                    if value is not None:
                        scores.setdefault(pair, {})[metric] = value
        for pos, pair, metric, detail in self.con.execute(
                f"SELECT pos, pair, metric, detail FROM detail WHERE pos IN ({marks})", positions):
            found[pos]["details"].setdefault(pair, {})[metric] = detail
        for row in self.con.execute(f"SELECT pos, pair, judge, verdict, score, raw, parsed, problem, swap_consistent "
                                    f"FROM jd WHERE pos IN ({marks}) ORDER BY judge, pair", positions):
            found[row[0]]["judgments"].append(dict(zip(
                ("pair", "judge", "verdict", "score", "raw", "parsed", "problem", "swap_consistent"), row[1:])))
        return [found[p] for p in positions if p in found]


def _json(text):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
