"""Property: any bytes given to a reader give a result or a GenvalError, never another exception.

Over the eval-set reader (JSONL and CSV, and the whole load with a prompt), the replay
reader, the human-labels reader (JSONL and CSV, alone and checked against judges) and the
judge-answer parser. Inputs are arbitrary bytes, and near-valid ones (JSON values mutated,
spliced with odd bytes, nested, with lone surrogate escapes), so the search reaches past the
first line. Example counts are modest: the suite takes a few seconds.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genval.errors import GenvalError
from genval.evalset import load_evalset, read_records
from genval.judging.definition import Parser, load_definition
from genval.judging.labels import read_labels
from genval.judging.parsing import parse_answer
from genval.judging.prompts import render_prompt
from genval.judging.stage import JudgeScope
from genval.models.replay import ReplayBackend
from tests.conftest import ROOT

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FOLDER = Path(tempfile.mkdtemp(prefix="genval-property-"))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["id", "T1", "input", "student~teacher", "equivalent", "4"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["id", "input", "text", "pair", "annotator", "verdict", "score", "label_probs", "latency_s",
                     "completion_tokens", "reference", "slices", "note", "aspect", "error"]), inner, max_size=6),
    max_leaves=12)
records = st.lists(st.dictionaries(st.sampled_from(["id", "input", "text", "pair", "annotator", "verdict", "score",
                                                    "reference", "label_probs", "latency_s", "prompt_tokens"]),
                                   values, max_size=7), max_size=5)
odd = st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\r", b"\n", b'"', b"{", b"[" * 300, b"\\ud800", b",", b"\xef\xbb\xbf"])


@st.composite
def jsonl_bytes(draw):
    """Lines of JSON records, some spliced with odd bytes; or plain random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    lines = [json.dumps(r).encode() for r in draw(records)]
    for _ in range(draw(st.integers(0, 2))):
        if lines:
            i = draw(st.integers(0, len(lines) - 1))
            cut = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:cut] + draw(odd) + lines[i][cut:]
    return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n", b"\r\n"]))


@st.composite
def csv_bytes(draw):
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    header = draw(st.lists(st.sampled_from(["id", "input", "pair", "annotator", "verdict", "score", "note"]),
                           min_size=0, max_size=5))
    rows = [",".join(header)] + [",".join(draw(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)),
                                                                        max_size=6), max_size=6)))
                                 for _ in range(draw(st.integers(0, 4)))]
    data = "\n".join(rows).encode()
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(odd) + data[cut:]
    return data


def _file(name: str, data: bytes) -> Path:
    path = FOLDER / name
    path.write_bytes(data)
    return path


def _result_or_genval_error(call):
    try:
        call()
    except GenvalError as exc:
        assert str(exc) and "\n" not in str(exc)


@SETTINGS
@given(jsonl_bytes())
def test_eval_set_jsonl(data):
    path = _file("eval.jsonl", data)
    _result_or_genval_error(lambda: read_records(path))
    _result_or_genval_error(lambda: load_evalset(path, "Q: {input}", []))


@SETTINGS
@given(csv_bytes())
def test_eval_set_csv(data):
    path = _file("eval.csv", data)
    _result_or_genval_error(lambda: load_evalset(path, "Q: {input}", []))


@SETTINGS
@given(jsonl_bytes(), st.booleans())
def test_replay_file(data, labelled):
    path = _file("replay.jsonl", data)
    _result_or_genval_error(lambda: ReplayBackend(path, labels=["billing", "shipping"] if labelled else None))


EQUIV = load_definition(ROOT / "judges" / "equivalence.yaml")
QUALITY = load_definition(ROOT / "judges" / "summary_quality.yaml")
JUDGES = [JudgeScope("eq", frozenset({"student~teacher"}), EQUIV, None),
          JudgeScope("q", frozenset({"student"}), QUALITY, QUALITY.aspect)]


@SETTINGS
@given(st.one_of(jsonl_bytes(), csv_bytes()), st.booleans(), st.booleans())
def test_human_labels(data, as_csv, with_judges):
    path = _file("labels.csv" if as_csv else "labels.jsonl", data)
    _result_or_genval_error(lambda: read_labels(path, judges=JUDGES if with_judges else None))


fragments = st.sampled_from(["VERDICT:", "verdict =", "**VERDICT:**", "equivalent", "not_equivalent", "{", "}", '"',
                             '{"verdict": "equivalent"}', "<candidate-0123456789>", "</candidate-0123456789>", "\n",
                             "&lt;", "\\u00", "\\", "SCORE: 4", "[" * 50, "\u0395", "\u200b", "\ud800", "5/5"])
answers = st.one_of(st.text(max_size=80), st.lists(st.one_of(fragments, st.text(max_size=5)), max_size=12).map("".join))


@SETTINGS
@given(answers, answers)
def test_judge_answers(answer, candidate):
    for definition in (EQUIV, load_definition(ROOT / "judges" / "extraction_equivalence.yaml"), QUALITY,
                       QUALITY.model_copy(update={"parser": Parser(kind="tagged", tag="SCORE")})):
        system, user = render_prompt(definition, {"task": "t", "input": "x", "candidate": candidate, "other": "o"}, key=b"k")
        parsed = parse_answer(answer, definition, f"{system}\n{user}")
        assert parsed.verdict is None or parsed.verdict in definition.scale.tokens
        assert (parsed.verdict is None) == bool(parsed.problem)
