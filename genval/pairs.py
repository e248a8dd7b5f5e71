"""Pairs, and the one join of examples with their outputs that every stage reads through.

A pair names what is compared: a candidate role against the teacher (`student~teacher`,
fidelity), against the reference (`student~reference`, task quality), or alone (`student`, a
format check). Stages meet only through the run's tables, so the join below is the one place
that lines an example up with each role's output; it streams, holding one batch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from genval.errors import GenvalError, did_you_mean
from genval.runfolder import BATCH_ROWS, Run

REFERENCE = "reference"


@dataclass(frozen=True)
class Pair:
    """A candidate role and what it is compared with: another role, `reference`, or nothing (None)."""

    candidate: str
    other: str | None = None

    @property
    def name(self) -> str:
        return f"{self.candidate}~{self.other}" if self.other else self.candidate

    @property
    def kind(self) -> str:
        """Gives 'task' (against the reference), 'fidelity' (against another role) or 'single'."""
        if self.other is None:
            return "single"
        return "task" if self.other == REFERENCE else "fidelity"

    @classmethod
    def parse(cls, name: str) -> "Pair":
        left, _, right = str(name).partition("~")
        return cls(left, right or None)

    def __str__(self) -> str:
        return self.name


def resolve_pairs(pairs: list[str], roles: list[str], where: str) -> list[Pair]:
    """Gives the pairs a judge reference names; `*` stands for every role (`*~teacher`: every non-teacher)."""
    out: list[Pair] = []
    for name in pairs:
        left, _, right = name.partition("~")
        right = right or None
        lefts = [r for r in roles if r != right] if left == "*" else [left]
        for role in lefts:
            if role not in roles:
                known = [*roles, *(f"{a}~{b}" for a in roles for b in [*roles, REFERENCE] if a != b)]
                raise GenvalError(f"{where}: pair '{name}' names role '{role}', which the config's models lack "
                                  f"(roles: {', '.join(roles)})" + did_you_mean(name, known))
            if right is not None and right != REFERENCE and right not in roles:
                raise GenvalError(f"{where}: pair '{name}' names '{right}', neither a role nor 'reference'")
            pair = Pair(role, right)
            if pair not in out:
                out.append(pair)
    return out


def roles_of(pairs: list[Pair]) -> list[str]:
    """Gives the roles whose outputs the pairs read, in order of first mention."""
    return list(dict.fromkeys(r for p in pairs for r in (p.candidate, p.other) if r and r != REFERENCE))


def score_pairs(roles: list[str], has_reference: bool) -> list[Pair]:
    """Gives the pairs a run scores: each candidate against the teacher, then each role against the reference."""
    out = [Pair(role, "teacher") for role in roles if role != "teacher"]
    if has_reference:
        out += [Pair(role, REFERENCE) for role in roles]
    return out


class _Rows:
    """Hands out exactly `k` rows at a time from a stream of frames (the streams' batches need not line up)."""

    def __init__(self, frames: Iterator[pd.DataFrame]):
        self._frames, self._buffer = frames, []
        self._held = 0

    def take(self, k: int) -> pd.DataFrame:
        while self._held < k:
            frame = next(self._frames, None)
            if frame is None:
                break
            self._buffer.append(frame)
            self._held += len(frame)
        joined = pd.concat(self._buffer, ignore_index=True) if len(self._buffer) > 1 else (
            self._buffer[0].reset_index(drop=True) if self._buffer else pd.DataFrame())
        head, rest = joined.iloc[:k], joined.iloc[k:]
        self._buffer, self._held = ([rest] if len(rest) else []), len(rest)
        return head.reset_index(drop=True)


def role_blocks(run: Run) -> dict[str, tuple[int, int]]:
    """Gives each role's (first row, row count) in the outputs table, which holds one contiguous block per role.

    The generate stage writes every role's outputs in the examples' order, one role after the
    other, one row per example (a failed request keeps its row). Anything else is not a table
    this join can read, and says so.
    """
    blocks: dict[str, list[int]] = {}
    order: list[str] = []
    start = 0
    for frame in run.iter_table("outputs", columns=["role"]):
        roles = frame["role"].astype(str).to_numpy()
        if not len(roles):
            continue
        cuts = np.flatnonzero(roles[1:] != roles[:-1]) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(roles)]):
            role = roles[lo]
            if order and order[-1] == role:
                blocks[role][1] += hi - lo
            elif role in blocks:
                raise GenvalError(f"{run.path('outputs')}: role '{role}' is not one block; "
                                  "re-run the generate stage (`genval run CONFIG --force generate`)")
            else:
                blocks[role] = [start + lo, hi - lo]
                order.append(role)
        start += len(roles)
    return {role: (first, n) for role, (first, n) in blocks.items()}


def _role_frames(run: Run, first: int, columns: list[str], batch_size: int) -> Iterator[pd.DataFrame]:
    """Yields the outputs table's rows from row `first` on, starting at the row group that holds it."""
    parquet = run._parquet("outputs")
    meta = parquet.metadata
    group, row = 0, 0
    while group < meta.num_row_groups and row + meta.row_group(group).num_rows <= first:
        row += meta.row_group(group).num_rows
        group += 1
    skip = first - row
    groups = list(range(group, meta.num_row_groups))
    if not groups:
        return
    for batch in parquet.iter_batches(batch_size=batch_size, columns=columns, row_groups=groups):
        frame = batch.to_pandas()
        if skip:
            frame, skip = frame.iloc[skip:], max(0, skip - len(frame))
        if len(frame):
            yield frame


def joined(run: Run, roles: list[str], example_columns: list[str] | None = None,
           output_columns: tuple[str, ...] = ("text", "error"),
           batch_size: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    """Yields the examples, batch by batch, each with every role's output beside it.

    A batch has the example columns asked for (all when None; `id` always) and, per role,
    `<role>.<column>` for each output column. Memory is one batch per role, whatever the size
    of the eval set. A role with no outputs yet is an error naming the stage to run.
    """
    n = run.table_rows("examples")
    blocks = role_blocks(run) if run.has("outputs") else {}
    for role in roles:
        if role not in blocks:
            raise GenvalError(f"{run.root}: no outputs of role '{role}'; run the generate stage first")
        if blocks[role][1] != n:
            raise GenvalError(f"{run.path('outputs')}: role '{role}' has {blocks[role][1]} outputs for {n} examples; "
                              "re-run the generate stage (`genval run CONFIG --force generate`)")
    columns = None if example_columns is None else list(dict.fromkeys(["id", *example_columns]))
    wanted = ["id", *[c for c in output_columns if c != "id"]]
    streams = {role: _Rows(_role_frames(run, blocks[role][0], wanted, batch_size)) for role in roles}
    for examples in run.iter_table("examples", columns=columns, batch_size=batch_size):
        examples = examples.reset_index(drop=True)
        parts = [examples]
        ids = examples["id"].astype(str).to_numpy()
        for role, stream in streams.items():
            rows = stream.take(len(examples))
            if len(rows) != len(examples) or not np.array_equal(rows["id"].astype(str).to_numpy(), ids):
                raise GenvalError(f"{run.path('outputs')}: the outputs of role '{role}' are not in the examples' "
                                  "order; re-run the generate stage (`genval run CONFIG --force generate`)")
            parts.append(rows.drop(columns="id").add_prefix(f"{role}."))
        yield pd.concat(parts, axis=1)
