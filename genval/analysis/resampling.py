"""Intervals for every number of one summary: the percentile bootstrap, exact or streamed.

Both methods take the run's per-example features window by window (`feed`: name → values
by example position, NaN where an example has no value; partition → group code per example,
-1 for none) and then give each group's numbers as {value, ci, n}:

- `Exact`, for eval sets up to `analysis.bootstrap_exact_max` examples: the seeded percentile
  bootstrap of genval.stats, resampling example indices (Efron & Tibshirani 1993, ch. 13), so
  its intervals are those genval has always given. Numbers of one group with the same n are
  resampled on the same indices, drawn once.
- `Poisson`, for larger ones: every example gets, per resample, a Poisson(1) count as its
  weight — the streaming form of the bootstrap, whose multinomial counts it approaches as n
  grows (Hanley & MacGibbon 2006, Comput Methods Programs Biomed 83(1):57–62; Chamandy,
  Muralidharan, Najmi & Naik 2012, "Estimating uncertainty for massive data streams", Google).
  The weights of the examples at positions [b·BLOCK, (b+1)·BLOCK) come from a generator seeded
  with (seed, b), so every number, slice and pass sees the same weights on the same examples
  and paired numbers stay paired. A number is a ratio of weighted sums: memory holds n_boot
  sums per feature and group, never the examples.

Either way a feature whose every value is 0 or 1 is a **share**, and a bootstrap cannot see the
uncertainty of a share it never samples (8 of 8 resamples to [1, 1]): a share's interval is the
Wilson score interval of its count, a ratio or difference of two shares on the same examples is
built from theirs (genval.analysis.intervals), from the exact sums both methods keep. Each number
says which in its `method`.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from threadpoolctl import threadpool_limits

from genval.analysis import intervals
from genval.analysis.numbers import Boot, empty, ratio, resampled_means
from genval.metrics.probabilities import bin_index, ece
from genval.stats import bootstrap_ci, percentile_interval, tail

BLOCK = 8192            # examples whose Poisson weights one (seed, block) generator draws
RESAMPLE_CHUNK = 128    # resamples drawn and multiplied at once (bounds the weights in memory: 4 MB)
ALL = ("all", 0)        # the group of every example


def _poisson_thresholds(bits: int = 24) -> np.ndarray:
    """Gives T_k = round(P(X ≤ k) · 2^bits) for X ~ Poisson(1), k = 0, 1, …, while under 2^bits."""
    out, cdf, term = [], 0.0, math.exp(-1.0)
    for k in range(32):
        cdf += term
        term /= k + 1
        t = round(cdf * 2**bits)
        if t >= 2**bits:
            break
        out.append(t)
    return np.array(out, dtype=np.uint32)


_THRESHOLDS = _poisson_thresholds()


def _bucket_table() -> np.ndarray:
    """Gives the count of each 2^16 bucket of 24-bit draws, 255 where a threshold falls inside the bucket."""
    starts = np.arange(2**16, dtype=np.uint32) << 8
    low = np.searchsorted(_THRESHOLDS, starts, side="right")
    high = np.searchsorted(_THRESHOLDS, starts + 255, side="right")
    return np.where(low == high, low, 255).astype(np.uint8)


_TABLE = _bucket_table()


def poisson_counts(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Gives Poisson(1) counts (float32) by the inverse CDF of 24-bit uniforms: count = #{k : T_k ≤ u·2^24}.

    A table of 2^16 buckets answers all but the draws that fall in a bucket holding a
    threshold (about 1 in 6,500); those are looked up exactly.
    """
    x = (rng.random(shape, dtype=np.float32) * np.float32(2**24)).astype(np.uint32)
    counts = _TABLE[x >> 8]
    edge = counts == 255
    if edge.any():
        counts[edge] = np.searchsorted(_THRESHOLDS, x[edge], side="right")
    return counts.astype(np.float32)


def block_weights(seed: int, block: int, n_boot: int, rows: int) -> np.ndarray:
    """Gives the (n_boot × rows) Poisson weights of block `block`: every pass draws the same ones."""
    rng = np.random.default_rng([seed, block])
    return np.concatenate([poisson_counts(rng, (min(RESAMPLE_CHUNK, n_boot - r), rows))
                           for r in range(0, n_boot, RESAMPLE_CHUNK)])


def interval_of(statistic, n: int, boot: Boot) -> dict:
    """Gives {value, ci, n} of a statistic of example indices 0..n-1 (the statistic may give None)."""
    if n == 0:
        return empty()
    value = statistic(np.arange(n))

    def safe(idx):
        out = statistic(idx.astype(int))
        return np.nan if out is None else out

    lo, hi = bootstrap_ci(np.arange(n, dtype=float), statistic=safe, n_boot=boot.n_boot,
                          confidence=boot.confidence, seed=boot.seed)
    lo = None if lo is None or np.isnan(lo) else lo
    hi = None if hi is None or np.isnan(hi) else hi
    return {"value": None if value is None else float(value), "ci": [lo, hi], "n": int(n)}


def _binary(values: np.ndarray, name=None) -> bool:
    """Says whether every value that is not NaN is 0 or 1 and the feature may be a share: a metric registered with
    another range (a KL in nats, BLEU on 0–100) is no share when its values happen to be 0 and 1 — a token KL of 0
    on every example got Wilson's interval [0, 0.016] of a share; `honest` gives such a mean its range's interval."""
    if isinstance(name, tuple) and len(name) == 3 and isinstance(name[2], str):
        from genval import registry

        spec = registry.spec(name[2])
        if spec is not None and (spec.low, spec.high) != (0.0, 1.0):
            return False
    return bool(np.all((values == 0) | (values == 1) | np.isnan(values)))


def share(count: float, n: float, confidence: float) -> dict:
    """Gives a share `count` / `n` as {value, ci, n, method} with its Wilson score interval."""
    n = int(round(n))
    if n == 0:
        return empty()
    return {"value": float(count / n), "ci": intervals.wilson(count, n, confidence), "n": n, "method": intervals.WILSON}


def paired_shares(cells: tuple, confidence: float, value: float | None = None) -> dict:
    """Gives the ratio of two shares on the same examples from their sums (n, Σ top, Σ bottom, Σ top·bottom);
    `value`: the point value as the engine computes it (so it stays the same float as before)."""
    n, top, bottom, both = cells
    if n == 0:
        return empty()
    if bottom == 0:
        return {"value": None, "ci": [None, None], "n": int(n), "method": intervals.MOVER_RATIO}
    a, b, c = both, top - both, bottom - both
    return {"value": float(top / bottom) if value is None else value,
            "ci": intervals.paired_ratio(a, b, c, n - a - b - c, confidence), "n": int(n),
            "method": intervals.MOVER_RATIO}


def difference(engine, group, top, bottom, diff, sign: int = 1) -> dict:
    """Gives sign · (top − bottom) paired by example: for two shares Newcombe's interval from their sums, else the
    bootstrap of the per-example difference feature `diff` (no interval where it has no spread)."""
    if engine.shares(top, bottom):
        n, s, t, both = engine.cells(group, top, bottom)
        if not n:
            return empty()
        lo, hi = intervals.paired_difference(both, s - both, t - both, n - s - t + both, engine.boot.confidence)
        return {"value": sign * (s - t) / n, "ci": [lo, hi] if sign > 0 else [-hi, -lo], "n": n,
                "method": intervals.NEWCOMBE}
    found = engine.mean(group, diff)
    lo, hi = found["ci"]
    if lo is not None and hi - lo <= 1e-6 * max(1.0, abs(found["value"] or 0.0)):
        return {**found, "ci": [None, None], "note": "no interval: every example differs by the same amount"}
    return found


def _rows(features: dict, partitions: dict) -> int:
    return len(next(iter(partitions.values()))) if partitions else len(next(iter(features.values())))


class Exact:
    """The exact percentile bootstrap over resampled example indices (genval.stats), for eval sets that fit."""

    name = "percentile bootstrap (expanded, Hesterberg 2015), resampled example indices"

    def __init__(self, boot: Boot, bins: int):
        self.boot, self.bins = boot, bins
        self._features: dict = {}
        self._partitions: dict = defaultdict(list)
        self._rows = 0
        self._means: dict = {}

    def declare(self, ratios=(), eces=()) -> None:
        """Nothing to declare: every number is computed from the stored features when asked."""

    def feed(self, features: dict, partitions: dict, lo: int) -> None:
        rows = _rows(features, partitions)
        for name, values in features.items():
            parts = self._features.setdefault(name, [np.full(self._rows, np.nan)])  # first seen in a later window
            parts.append(np.asarray(values, dtype=float))
        for name, parts in self._features.items():
            if name not in features:
                parts.append(np.full(rows, np.nan))
        for name, codes in partitions.items():
            self._partitions[name].append(np.asarray(codes))
        self._rows += rows

    def finish(self) -> None:
        self.F = {name: np.concatenate(parts) for name, parts in self._features.items()}
        self.P = {name: np.concatenate(parts) for name, parts in self._partitions.items()}
        self.binary = {name: _binary(values, name) for name, values in self.F.items()}
        self._features = self._partitions = None

    def _mask(self, group) -> np.ndarray | slice:
        partition, code = group
        return slice(None) if partition == "all" else self.P[partition] == code

    def _values(self, group, name) -> np.ndarray:
        found = self.F.get(name)
        if found is None:
            return np.empty(0)
        values = found[self._mask(group)]
        return values[~np.isnan(values)]

    def mean(self, group, name) -> dict:
        """Gives the mean of a feature over the group's examples that have it, as genval.stats.number does."""
        if (group, name) not in self._means:
            self._fill(group, name[0] if isinstance(name, tuple) else name)
        return dict(self._means.get((group, name)) or empty())

    def _fill(self, group, family) -> None:
        """Computes every mean of one feature family in a group, drawing the indices once per n (shares: Wilson)."""
        by_size: dict[int, list] = defaultdict(list)
        for name in self.F:
            if (name[0] if isinstance(name, tuple) else name) == family:
                values = self._values(group, name)
                if self.binary[name]:
                    self._means[(group, name)] = share(values.sum(), values.size, self.boot.confidence)
                    continue
                by_size[values.size].append((name, values))
        for size, items in by_size.items():
            for name, values in items:
                self._means[(group, name)] = {"value": float(values.mean()) if size else None,
                                              "ci": [None, None], "n": int(size), "method": self.name}
            if size < 2:
                continue
            alpha = tail(self.boot.confidence, size)
            for (name, _), resampled in zip(items, resampled_means([values for _, values in items], self.boot)):
                lo, hi = np.quantile(resampled, [alpha, 1 - alpha])  # as genval.stats.bootstrap_ci
                self._means[(group, name)]["ci"] = [float(lo), float(hi)]

    def cells(self, group, num, den) -> tuple:
        """Gives (n, Σ num, Σ den, Σ num·den) over the group's examples that have both."""
        mask = self._mask(group)
        top, bottom = self.F[num][mask], self.F[den][mask]
        both = ~(np.isnan(top) | np.isnan(bottom))
        top, bottom = top[both], bottom[both]
        return int(both.sum()), float(top.sum()), float(bottom.sum()), float((top * bottom).sum())

    def shares(self, num, den) -> bool:
        """Says whether both features are shares (every value 0 or 1)."""
        return self.binary.get(num, False) and self.binary.get(den, False)

    def ratio(self, group, num, den) -> dict:
        if num not in self.F or den not in self.F:
            return empty()
        mask = self._mask(group)
        found = {**ratio(self.F[num][mask], self.F[den][mask], self.boot, interval=not self.shares(num, den)),
                 "method": self.name}
        if self.shares(num, den):
            return paired_shares(self.cells(group, num, den), self.boot.confidence, found["value"])
        return found

    def ece(self, group, role) -> dict:
        """Gives a role's ECE with its interval: the statistic recomputed on each resample of the examples."""
        conf, hit = self.F.get(("conf", role)), self.F.get(("hit", role))
        if conf is None:
            return empty()
        mask = self._mask(group)
        conf, hit = conf[mask], hit[mask]
        keep = ~np.isnan(conf)
        conf, hit = conf[keep], hit[keep]
        return {**interval_of(lambda i: ece(conf[i], hit[i], self.bins), conf.size, self.boot), "method": self.name}

    def count(self, group, name) -> int:
        return int(self._values(group, name).size)


class Poisson:
    """The streaming Poisson bootstrap: n_boot weighted sums per feature and group, accumulated block by block."""

    name = "Poisson bootstrap (expanded percentile, Hesterberg 2015), weights drawn per block of 8192 examples from " \
           "(seed, block)"

    def __init__(self, boot: Boot, bins: int):
        self.boot, self.bins = boot, bins
        self.features: list | None = None  # fixed by the first window: every window gives the same names
        self.binary: dict = {}             # feature → every value so far 0 or 1
        self._ratios: list = []
        self._eces: list = []
        self._acc: dict = {}

    def declare(self, ratios=(), eces=()) -> None:
        """Declares the ratios (num, den) and ECE roles to be computed: their sums are gathered as the features pass."""
        self._ratios += [r for r in ratios if r not in self._ratios]
        self._eces += [r for r in eces if r not in self._eces]

    def _columns(self) -> list:
        cols = list(self.features or []) + [("ratio", r, side) for r in self._ratios for side in (0, 1, 2)]
        return cols + [("ecebin", role, j) for role in self._eces for j in range(self.bins)]

    def _matrix(self, features: dict, rows: int) -> np.ndarray:
        nan = np.full(rows, np.nan)
        cols = [np.asarray(features.get(name, nan), dtype=float) for name in self.features]
        for num, den in self._ratios:
            a, b = features.get(num, nan), features.get(den, nan)
            both = ~(np.isnan(a) | np.isnan(b))
            cols += [np.where(both, a, np.nan), np.where(both, b, np.nan), np.where(both, a * b, np.nan)]
        for role in self._eces:
            conf, hit = features.get(("conf", role), nan), features.get(("hit", role), nan)
            has = ~np.isnan(conf)
            which = bin_index(np.where(has, conf, 0.0), self.bins)
            gap = hit - conf
            cols += [np.where(has, np.where(which == j, gap, 0.0), np.nan) for j in range(self.bins)]
        return np.stack(cols, axis=1) if cols else np.empty((rows, 0))

    def feed(self, features: dict, partitions: dict, lo: int) -> None:
        rows = _rows(features, partitions)
        if self.features is None:
            self.features = sorted(features, key=repr)
        for name, values in features.items():
            self.binary[name] = self.binary.get(name, True) and _binary(np.asarray(values, dtype=float), name)
        groups = {"all": np.zeros(rows, dtype=np.int64), **{k: np.asarray(v) for k, v in partitions.items()}}
        with threadpool_limits(1, user_api="blas"):
            self._feed(features, groups, lo, rows)

    def _feed(self, features: dict, groups: dict, lo: int, rows: int) -> None:
        # One BLAS thread: the products are small (128 resamples × a group's rows × a few dozen columns),
        # so threads cost more than they give (×4 slower on 2 busy cores), and the sums come out the
        # same on every machine.
        for start in range(lo - lo % BLOCK, lo + rows, BLOCK):
            a, b = max(start, lo) - lo, min(start + BLOCK, lo + rows) - lo
            matrix = self._matrix({name: values[a:b] for name, values in features.items()}, b - a)
            valid = ~np.isnan(matrix)
            both = np.concatenate([np.where(valid, matrix, 0.0), valid], axis=1)
            self._block(start, a + lo - start, both, {name: codes[a:b] for name, codes in groups.items()})

    def _block(self, start: int, offset: int, part: np.ndarray, groups: dict) -> None:
        """Adds one block's examples: exact sums, and per resample chunk the weighted sums of every group."""
        plans = []
        for partition, codes in groups.items():
            order = np.argsort(codes, kind="stable")
            ranked = codes[order]
            present = np.unique(ranked[ranked >= 0])
            spans = []
            for code, s, e in zip(present, np.searchsorted(ranked, present, "left"),
                                  np.searchsorted(ranked, present, "right")):
                acc = self._acc.get((partition, int(code)))
                if acc is None:
                    acc = self._acc[(partition, int(code))] = [np.zeros((self.boot.n_boot, part.shape[1])),
                                                               np.zeros(part.shape[1])]
                acc[1] += part[order[s:e]].sum(axis=0)
                spans.append((acc, slice(int(s), int(e))))
            whole = len(spans) == 1 and spans[0][1] == slice(0, len(codes))
            plans.append((None if whole else order, spans))
        x32 = part.astype(np.float32)
        rng = np.random.default_rng([self.boot.seed, start // BLOCK])
        for r in range(0, self.boot.n_boot, RESAMPLE_CHUNK):
            k = min(RESAMPLE_CHUNK, self.boot.n_boot - r)
            weights = poisson_counts(rng, (k, BLOCK))[:, offset:offset + len(part)]
            for order, spans in plans:
                w, x = (weights, x32) if order is None else (weights[:, order], x32[order])
                for acc, cut in spans:
                    acc[0][r:r + k] += w[:, cut] @ x[cut]

    def finish(self) -> None:
        self._index = {name: j for j, name in enumerate(self._columns())}
        self._width = len(self._index)

    def _sums(self, group, name):
        acc, j = self._acc.get(group), self._index.get(name)
        if acc is None or j is None:
            return None
        return acc[0][:, j], acc[0][:, self._width + j], acc[1][j], acc[1][self._width + j]

    def _number(self, value, stats: np.ndarray, n: float, expand: bool = True) -> dict:
        ci = percentile_interval(stats, self.boot.confidence, int(round(n)) if expand else None) \
            if n >= 2 and value is not None else [None, None]
        return {"value": value, "ci": ci, "n": int(round(n)), "method": self.name}

    def mean(self, group, name) -> dict:
        found = self._sums(group, name)
        if found is None or found[3] == 0:
            return empty()
        total, counts, point, n = found
        if self.binary.get(name, False):
            return share(point, n, self.boot.confidence)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._number(float(point / n), total / counts, n)

    def cells(self, group, num, den) -> tuple:
        """Gives (n, Σ num, Σ den, Σ num·den) over the group's examples that have both (exact sums)."""
        found = [self._sums(group, ("ratio", (num, den), side)) for side in (0, 1, 2)]
        if found[0] is None:
            return 0, 0.0, 0.0, 0.0
        return int(round(found[0][3])), float(found[0][2]), float(found[1][2]), float(found[2][2])

    def shares(self, num, den) -> bool:
        """Says whether both features are shares (every value 0 or 1)."""
        return self.binary.get(num, False) and self.binary.get(den, False)

    def ratio(self, group, num, den) -> dict:
        top, bottom = self._sums(group, ("ratio", (num, den), 0)), self._sums(group, ("ratio", (num, den), 1))
        if top is not None and top[3] and self.shares(num, den):
            return paired_shares(self.cells(group, num, den), self.boot.confidence)
        if top is None or top[3] == 0 or bottom[2] == 0:
            return {"value": None, "ci": [None, None], "n": 0 if top is None else int(round(top[3])),
                    "method": self.name}
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._number(float(top[2] / bottom[2]), top[0] / bottom[0], top[3])

    def ece(self, group, role) -> dict:
        bins = [self._sums(group, ("ecebin", role, j)) for j in range(self.bins)]
        if bins[0] is None or bins[0][3] == 0:
            return empty()
        n = bins[0][3]
        with np.errstate(divide="ignore", invalid="ignore"):
            stats = sum(np.abs(b[0]) for b in bins) / bins[0][1]
        return self._number(float(sum(abs(b[2]) for b in bins) / n), stats, n, expand=False)

    def count(self, group, name) -> int:
        found = self._sums(group, name)
        return 0 if found is None else int(round(found[3]))


