"""The one join of examples with outputs, and the run folder's streamed tables: same rows as a whole-table merge."""

import pandas as pd
import pytest

from genval.errors import GenvalError
from genval.pairs import Pair, joined, role_blocks, score_pairs
from genval.runfolder import Run

ROLES = ["teacher", "student", "student_v2"]


def _folder(tmp_path, n=23, roles=ROLES, shuffle_role=None) -> Run:
    """A run folder whose outputs table holds one block per role, written in uneven row groups."""
    run = Run(tmp_path / "run")
    examples = pd.DataFrame({"id": [f"e{i:03d}" for i in range(n)], "input": [f"text {i}" for i in range(n)],
                             "slice_kind": ["x" if i % 3 else "y" for i in range(n)]})
    run.write_table("examples", examples)
    with run.table_writer("outputs") as out:
        for role in roles:
            frame = pd.DataFrame({"id": examples["id"], "role": role, "text": [f"{role} says {i}" for i in range(n)],
                                  "error": [None if i % 5 else "boom" for i in range(n)]})
            if role == shuffle_role:
                frame = frame.sample(frac=1.0, random_state=1)
            for lo in range(0, n, 7):  # row groups of 7: no batch below lines up with them
                out.write(frame.iloc[lo:lo + 7])
    return run


def _merged(run: Run, roles) -> pd.DataFrame:
    """The same join the slow way: whole tables, one pandas merge per role."""
    examples, outputs = run.read_table("examples"), run.read_table("outputs")
    out = examples
    for role in roles:
        mine = outputs[outputs["role"] == role][["id", "text", "error"]]
        out = out.merge(mine.rename(columns={"text": f"{role}.text", "error": f"{role}.error"}), on="id", how="left")
    return out


@pytest.mark.parametrize("batch_size", [1, 4, 10, 64])
def test_joined_batches_equal_a_whole_table_merge(tmp_path, batch_size):
    run = _folder(tmp_path)
    batches = list(joined(run, ["student", "teacher", "student_v2"], batch_size=batch_size))
    assert max(len(b) for b in batches) <= batch_size
    got = pd.concat(batches, ignore_index=True)
    want = _merged(run, ["student", "teacher", "student_v2"])
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)


def test_joined_reads_only_the_columns_asked_for(tmp_path):
    run = _folder(tmp_path)
    batch = next(joined(run, ["teacher"], example_columns=["slice_kind"], output_columns=("text",), batch_size=5))
    assert list(batch.columns) == ["id", "slice_kind", "teacher.text"]


def test_role_blocks_give_each_roles_rows(tmp_path):
    run = _folder(tmp_path, n=9)
    assert role_blocks(run) == {"teacher": (0, 9), "student": (9, 9), "student_v2": (18, 9)}


def test_outputs_out_of_order_are_an_error_not_a_wrong_join(tmp_path):
    run = _folder(tmp_path, shuffle_role="student")
    with pytest.raises(GenvalError, match="not in the examples' order"):
        list(joined(run, ["teacher", "student"], batch_size=8))


def test_a_missing_role_names_the_stage_to_run(tmp_path):
    run = _folder(tmp_path, roles=["teacher"])
    with pytest.raises(GenvalError, match="no outputs of role 'student'"):
        list(joined(run, ["teacher", "student"]))


def test_a_writer_that_fails_leaves_the_old_table(tmp_path):
    run = _folder(tmp_path, n=5)
    before = run.path("outputs").read_bytes()
    with pytest.raises(RuntimeError):
        with run.table_writer("outputs") as out:
            out.write(pd.DataFrame({"id": ["x"], "role": ["teacher"], "text": ["half"], "error": [None]}))
            raise RuntimeError("killed mid-stage")
    assert run.path("outputs").read_bytes() == before
    assert [p.name for p in run.root.iterdir() if p.name.startswith(".")] == []


def test_streamed_tables_match_the_stored_table(tmp_path):
    run = _folder(tmp_path, n=30)
    whole = run.read_table("outputs")
    parts = list(run.iter_table("outputs", columns=["id", "text"], batch_size=8))
    assert all(len(p) <= 8 for p in parts) and run.table_rows("outputs") == 90
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole[["id", "text"]])


def test_pairs_by_name_and_kind():
    assert [p.name for p in score_pairs(["teacher", "student", "student_v2"], True)] == [
        "student~teacher", "student_v2~teacher", "teacher~reference", "student~reference", "student_v2~reference"]
    assert [p.kind for p in map(Pair.parse, ["student~teacher", "student~reference", "student"])] == [
        "fidelity", "task", "single"]
    assert Pair.parse("student~teacher") == Pair("student", "teacher")


def test_the_generate_stage_writes_outputs_the_join_reads(small_run, tmp_path):
    import genval

    folder = genval.run(small_run, out_dir=tmp_path / "runs", quiet=True)
    run = Run(folder)
    got = pd.concat(joined(run, ["teacher", "student"], batch_size=3), ignore_index=True)
    pd.testing.assert_frame_equal(got, _merged(run, ["teacher", "student"])[got.columns], check_dtype=False)

