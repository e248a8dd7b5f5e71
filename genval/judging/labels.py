"""Human labels: one rating per line (`id`, `pair`, `annotator`, `verdict` or `score`, optional `note`).

JSONL is the format of record; CSV round-trips through a spreadsheet or labelling tool.
Extra columns (the inputs and outputs a sample sheet shows) are ignored on reading, and a
row with no annotator and neither verdict nor score is an item not yet rated, skipped. A malformed line
is one error naming file:line.

Read for a run, each rating is also checked against the judges that answer its pair
(`check_ratings`): a pair no judge answers, a score for a judge that answers with labels (or
a label for one that scores), a score off the judge's scale (9 on 1–5) or a label not on it
is an error naming the line — never clipped, never dropped in silence. A sample sheet's row
states its scale (`scale`); `check_stated` holds each rating to it when no judge is at hand.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pandas as pd

from genval.errors import GenvalError, did_you_mean
from genval.evalset import read_csv, read_jsonl
from genval.files import read_text

LABEL_COLUMNS = ["id", "pair", "annotator", "verdict", "score", "note", "aspect"]


def _check(data: dict, where: str) -> dict | None:
    """Gives one rating as a clean dict, None for an unrated sheet row, or raises naming `where`."""
    clean = {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()}
    verdict, score = clean.get("verdict"), clean.get("score")
    verdict = None if verdict in ("", None) else verdict
    score = None if score in ("", None) else score
    if verdict is None and score is None:
        if clean.get("annotator") in (None, ""):
            return None  # a sheet row nobody has rated yet
        raise GenvalError(f"{where}: the rating has neither 'verdict' nor 'score' (give one)")
    for key in ("id", "pair", "annotator"):
        if clean.get(key) in (None, ""):
            raise GenvalError(f"{where}: the rating has no '{key}' (every rating needs id, pair and annotator)")
    if verdict is not None and not isinstance(verdict, str):
        raise GenvalError(f"{where}: 'verdict' should be text (e.g. equivalent), found {verdict!r}")
    if score is not None:
        try:
            score = float(score)
        except (TypeError, ValueError):
            raise GenvalError(f"{where}: 'score' should be a number, found {score!r}") from None
        if isinstance(clean.get("score"), bool) or not math.isfinite(score):
            raise GenvalError(f"{where}: 'score' should be a finite number, found {clean.get('score')!r}")
    note, aspect = clean.get("note"), clean.get("aspect")
    return {"id": str(clean["id"]), "pair": str(clean["pair"]), "annotator": str(clean["annotator"]),
            "verdict": verdict, "score": score, "note": note or None, "aspect": aspect or None}


def _unique(rows: list[dict], wheres: list[str]) -> None:
    seen: dict[tuple, str] = {}
    for row, where in zip(rows, wheres):
        key = (row["id"], row["pair"], row["annotator"], row["aspect"])
        if key in seen:
            raise GenvalError(f"{where}: annotator '{row['annotator']}' rated '{row['id']}' ({row['pair']}) twice "
                              f"(first at {seen[key]}); keep one rating")
        seen[key] = where


def _read(path: str | Path) -> tuple[list[dict], list[str], list]:
    """Gives the ratings of a JSONL or CSV file, each with its `file:line` and the scale its row states (or None)."""
    path = Path(path)
    if not path.exists():
        raise GenvalError(f"{path}: no such human-labels file (check 'human_labels' in the config)")
    is_csv = path.suffix.lower() == ".csv"
    if is_csv:
        header = next(csv.reader(io.StringIO(read_text(path, "human labels"), newline="")), [])
        missing = sorted({"id", "pair", "annotator"} - set(header))
        if not {"verdict", "score"} & set(header):  # else every row reads as "neither verdict nor score"
            missing.append("'verdict' or 'score'")
        if missing:
            hint = "".join(did_you_mean(m.strip("'"), header) for m in missing[:1])
            raise GenvalError(f"{path}:1: the header lacks {', '.join(missing)} (it has: {', '.join(header)}){hint}")
    records = read_csv(path, "human labels") if is_csv else read_jsonl(path, "human labels")
    rows, wheres, stated = [], [], []
    for record in records:
        rating = _check(record.data, record.where)
        if rating:
            rows.append(rating)
            wheres.append(record.where)
            stated.append(record.data.get("scale") or None)
    _unique(rows, wheres)
    return rows, wheres, stated


def read_labels(path: str | Path, judges=None, stated: bool = False) -> pd.DataFrame:
    """Gives the ratings in a JSONL or CSV file as a table of LABEL_COLUMNS.

    With `judges` (JudgeScope objects: name, pairs, definition, aspect), each rating is first
    checked against the judges that answer its pair (`check_ratings`); with `stated`, against
    the scale its own row states (a sample sheet's `scale` column, `check_stated`).
    """
    rows, wheres, scales = _read(path)
    if judges:
        check_ratings(rows, wheres, judges)
    if stated:
        check_stated(rows, wheres, scales)
    return pd.DataFrame(rows, columns=LABEL_COLUMNS).astype({"score": "float64"})


def check_stated(rows: list[dict], wheres: list[str], scales: list) -> None:
    """Raises, naming the line, for the first rating off the scale its row states; a row stating none passes."""
    from genval.judging.parsing import match_scale
    from genval.judging.sampling import stated_scale

    read = {}
    for row, where, text in zip(rows, wheres, scales):
        if text is None:
            continue
        if text not in read:
            read[text] = stated_scale(str(text), where)
        scale = read[text]
        says = f"the scale the row states ({text})"
        if scale.kind == "ordinal":
            if row["verdict"] is not None:
                raise GenvalError(f"{where}: a verdict ({row['verdict']!r}) where {says} asks for a score; "
                                  "give 'score' instead")
            if not scale.min <= row["score"] <= scale.max:
                raise GenvalError(f"{where}: score {row['score']:g} is off {says}; "
                                  f"give a score in {scale.min}..{scale.max}")
        elif row["score"] is not None:
            raise GenvalError(f"{where}: a score ({row['score']:g}) where {says} asks for a verdict; "
                              f"give 'verdict' ({' or '.join(scale.labels)}) instead")
        elif match_scale(row["verdict"], scale).verdict is None:
            raise GenvalError(f"{where}: verdict {row['verdict']!r} is off {says}; "
                              f"give one of {', '.join(scale.labels)}")


def check_ratings(rows: list[dict], wheres: list[str], judges) -> None:
    """Raises, naming the line, for the first rating no judge can be compared with.

    A rating whose aspect no judge of its pair answers is left alone: it belongs to another
    aspect (e.g. SummEval's four, read by `genval metaeval`).
    """
    from genval.judging.parsing import match_scale

    pairs = sorted({p for j in judges for p in j.pairs})
    for row, where in zip(rows, wheres):
        mine = [j for j in judges if row["pair"] in j.pairs]
        if not mine:
            raise GenvalError(f"{where}: a rating of pair '{row['pair']}', which no judge answers "
                              f"(the judges answer: {', '.join(pairs)}); fix 'pair' or add it to a judge's 'pairs'")
        mine = [j for j in mine if row["aspect"] is None or j.aspect is None or row["aspect"] == j.aspect]
        ordinal = [j for j in mine if j.definition.scale.kind == "ordinal"]
        labelled = [j for j in mine if j.definition.scale.kind != "ordinal"]
        if row["score"] is not None and mine:
            if not ordinal:
                raise GenvalError(f"{where}: a score ({row['score']:g}) for pair '{row['pair']}', but judge "
                                  f"'{labelled[0].name}' answers with labels; give 'verdict' "
                                  f"({' or '.join(labelled[0].definition.scale.labels)}) instead")
            if not any(j.definition.scale.min <= row["score"] <= j.definition.scale.max for j in ordinal):
                scale = ordinal[0].definition.scale
                raise GenvalError(f"{where}: score {row['score']:g} is off judge '{ordinal[0].name}''s scale "
                                  f"{scale.min}..{scale.max}; give a score in that range")
        if row["verdict"] is not None and mine:
            if not labelled:
                scale = ordinal[0].definition.scale
                raise GenvalError(f"{where}: a verdict ({row['verdict']!r}) for pair '{row['pair']}', but judge "
                                  f"'{ordinal[0].name}' scores it {scale.min}..{scale.max}; give 'score' instead")
            if all(match_scale(row["verdict"], j.definition.scale).verdict is None for j in labelled):
                raise GenvalError(f"{where}: verdict {row['verdict']!r} is not on judge '{labelled[0].name}''s scale "
                                  f"({', '.join(labelled[0].definition.scale.labels)})")


def check_ids(sources: list, id_batches, eval_set: str) -> None:
    """Raises, naming the line, for the first rating of an id the eval set lacks.

    `sources` is [(path, its ratings as read_labels gives them)]; `id_batches` yields the eval
    set's ids batch by batch, read once for all of them; only the ids the ratings name are held.
    A rating of an unknown id would be copied into the run and count for nothing, silently.
    """
    wanted = {str(i) for _path, frame in sources for i in frame["id"]}
    for ids in id_batches:
        wanted.difference_update(str(i) for i in ids)
        if not wanted:
            return
    for path, frame in sources:
        mine = sorted(set(frame["id"].astype(str)) & wanted)
        if mine:
            rows, wheres, _ = _read(path)
            first = next(where for row, where in zip(rows, wheres) if row["id"] in wanted)
            raise GenvalError(f"{first}: {len(mine)} rated id(s) the eval set {eval_set} does not have "
                              f"({', '.join(repr(i) for i in mine[:5])}{' …' if len(mine) > 5 else ''}); "
                              "rate items of this eval set, or fix the ids")


def eval_set_ids(path: str | Path):
    """Yields the ids of the eval set at `path` in batches, reading it as it goes."""
    from genval.evalset import iter_records

    batch = []
    for record in iter_records(Path(path)):
        batch.append(str(record.data.get("id")))
        if len(batch) == 8192:
            yield batch
            batch = []
    yield batch


def _plain(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def write_labels(frame: pd.DataFrame, path: str | Path) -> Path:
    """Writes ratings (and any extra context columns) as JSONL or CSV, by the file's suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [c for c in LABEL_COLUMNS if c in frame.columns] + [c for c in frame.columns if c not in LABEL_COLUMNS]
    records = [{c: _plain(row[c]) for c in columns} for row in frame.to_dict("records")]
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for rec in records:
                writer.writerow({k: "" if v is None else v for k, v in rec.items()})
    else:
        with path.open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps({k: v for k, v in rec.items() if v is not None}, ensure_ascii=False) + "\n")
    return path


# --- labels in the run folder ---------------------------------------------------------------
# A run keeps its human ratings as the `labels` table: the config's `human_labels` file plus
# every `RUN/labels/*.jsonl` (where `genval calibrate RUN --labels FILE` puts a copy of FILE,
# and a rating page writes its raters' files), one row per example × pair × annotator.
FOLDER = "labels"
TABLE_COLUMNS = [*LABEL_COLUMNS, "source"]


def label_sources(human_labels: Path | None, root: Path) -> list[Path]:
    """Gives the files a run's labels come from: the config's `human_labels`, then `RUN/labels/*.jsonl` by name."""
    folder = Path(root) / FOLDER
    return ([Path(human_labels)] if human_labels else []) + \
        (sorted(folder.glob("*.jsonl")) if folder.is_dir() else [])


def read_sources(sources: list[Path], judges=None) -> pd.DataFrame:
    """Gives the ratings of every source as one table (TABLE_COLUMNS), each checked against the judges.

    The same person's rating of the same item in two files is kept once when it is the same
    rating; two different ratings are an error naming both files (keep one).
    """
    from genval.judging.parsing import normalise

    frames, seen = [], {}
    for path in sources:
        frame = read_labels(path, judges=judges)
        keep = []
        for row in frame.itertuples(index=False):
            key = (row.id, row.pair, row.annotator, row.aspect)
            # compared as a scale reads a verdict: `Equivalent` in one file is `equivalent` in another
            rating = (None if row.verdict is None else normalise(row.verdict), None if pd.isna(row.score) else row.score)
            if key in seen:
                if seen[key][1] != rating:
                    raise GenvalError(f"{path}: annotator '{row.annotator}' rated '{row.id}' ({row.pair}) "
                                      f"differently in {seen[key][0]}; keep one of the two ratings")
                keep.append(False)
                continue
            seen[key] = (path, rating)
            keep.append(True)
        frames.append(frame[keep].assign(source=Path(path).name))
    if not frames:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[TABLE_COLUMNS].astype({"score": "float64"})


def copy_name(frame: pd.DataFrame, path: Path) -> str:
    """Gives the name a labels file is copied under into RUN/labels: its one annotator, else its file's stem."""
    annotators = frame["annotator"].dropna().unique()
    name = str(annotators[0]) if len(annotators) == 1 else Path(path).stem
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "labels"


def _rating_key(record: dict) -> tuple:
    aspect = record.get("aspect")
    return (str(record["id"]), str(record["pair"]), str(record["annotator"]),
            None if aspect is None or (isinstance(aspect, float) and math.isnan(aspect)) else str(aspect))


def _rating_value(record: dict) -> tuple:
    from genval.judging.parsing import normalise

    verdict, score = record.get("verdict"), record.get("score")
    return (None if verdict is None or (isinstance(verdict, float) and math.isnan(verdict)) else normalise(verdict),
            None if score is None or (isinstance(score, float) and math.isnan(score)) else float(score))


def merged_copy(copy: Path, incoming: pd.DataFrame, judges=None) -> tuple[pd.DataFrame, int, int]:
    """Gives what RUN/labels/NAME.jsonl holds once `incoming` is added, how many earlier ratings it changes
    and how many it leaves as they were.

    The file may hold ratings made on the rating page (genval view --rate) or by an earlier sheet:
    those of items `incoming` does not rate are kept as written (the page's `order` and `rated_at`
    too); `incoming` replaces the ones it rates again, so an edited sheet takes effect. Copying
    over the file instead lost every earlier rating without a word.
    """
    if not copy.exists():
        return incoming, 0, 0
    read_labels(copy, judges=judges)  # checked as every source is
    earlier = [json.loads(line) for line in copy.read_text(encoding="utf-8").splitlines() if line.strip()]
    new = {_rating_key(r): _rating_value(r) for r in incoming.to_dict("records")}
    kept = [r for r in earlier if _rating_key(r) not in new]
    changed = sum(1 for r in earlier if _rating_key(r) in new and new[_rating_key(r)] != _rating_value(r))
    frame = pd.concat([pd.DataFrame(kept), incoming], ignore_index=True) if kept else incoming
    return frame, changed, len(kept)


def labels_key(sources: list[Path]) -> str | None:
    """Gives a digest of the label sources (their names and contents), None when there are none."""
    import hashlib

    if not sources:
        return None
    digest = hashlib.sha256()
    for path in sources:
        digest.update(Path(path).name.encode("utf-8") + b"\0" + Path(path).read_bytes() + b"\0")
    return digest.hexdigest()


def update_table(run, human_labels: Path | None, judges=None) -> None:
    """Writes the run's `labels` table when its sources changed, and removes it when there are none.

    The sources are read and checked first (`read_sources`): a mistake leaves the table as it was.
    """
    sources = label_sources(human_labels, run.root)
    key = labels_key(sources)
    if key is None:
        run.path("labels").unlink(missing_ok=True)
        run.manifest.pop("labels_key", None)
        return
    if run.manifest.get("labels_key") == key and run.has("labels"):
        return
    frame = read_sources(sources, judges)
    run.write_table("labels", frame)
    run.manifest["labels_key"] = key
