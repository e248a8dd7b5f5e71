"""The judge section: every judge with its scale, its agreement with humans against min_kappa, the annotators'
ceiling, its bias checks, per-slice agreement, unparsed share, cost and time — ranked as calibration.json ranks them.

In alpaca_eval's leaderboard spirit (a judge next to its measured agreement with humans, price
and time): a judge's rates are worth what its agreement is worth, so the two sit side by side.
Reads calibration.json (the calibrate stage) and summary.json's judge block (its rates per pair).
"""

from __future__ import annotations

from genval.report.decision import ci, num, pct
from genval.summary import Calibration, JudgeCalibration, Meaning, Summary, parse


def scale(meaning: Meaning | None) -> str:
    """Gives a judge's scale in words: its labels, or its score range and pass mark."""
    if meaning is None:
        return "–"
    if meaning.kind == "ordinal":
        mark = f", pass ≥ {meaning.pass_threshold:g}" if meaning.pass_threshold is not None else ""
        return f"ordinal {meaning.min:g}–{meaning.max:g}{mark}"
    if meaning.labels:
        return f"{meaning.kind or 'labels'}: {' / '.join(meaning.labels)}"
    return meaning.kind or "–"


def _bias(cal: JudgeCalibration) -> str:
    bias = cal.bias
    if bias is None:
        return "–"
    said = []
    length = bias.length
    if length and length.excess is not None:
        said.append(f"length: judge ρ {num(length.judge_vs_length_gap_spearman, 2)} vs humans "
                    f"{num(length.human_vs_length_gap_spearman, 2)} (excess {length.excess:+.2f})")
    rate = bias.positive_rate
    if rate and rate.judge is not None and rate.human is not None:
        said.append(f"says yes {pct(rate.judge)} vs humans {pct(rate.human)}")
    if bias.flip_rate is not None:
        said.append(f"order flips {pct(bias.flip_rate)} of {bias.flip_n}")
    return "; ".join(said) or "–"


def _ceiling(cal: JudgeCalibration) -> str:
    found = cal.annotators
    if found is None or found.pairwise_kappa_mean is None:
        return "– (one annotator per item)"
    return (f"κ {num(found.pairwise_kappa_mean, 3)} among {len(found.annotators)} annotators "
            f"on {found.items_multi_rated} items")


def _rates(summary: Summary, name: str) -> str:
    pairs = summary.judge.judges.get(name, {}) if summary.judge else {}
    out = []
    for pair, rates in pairs.items():
        rate = rates.equivalence_rate
        if rate:
            out.append(f"{pair} {num(rate, 3)} ({ci(rate)}, n={rate.n})")
    return "; ".join(out) or "–"


def per_slice(cal: JudgeCalibration) -> list[list[str]]:
    """Gives one row per slice the humans rated: slice, n, agreement, κ (small ones marked)."""
    rows = []
    for field, values in cal.per_slice.items() if cal.per_slice else ():
        for value, block in values.items():
            mark = " (small)" if block.small else ""
            rows.append([f"{field}={value}{mark}", str(block.n), num(block.agreement, 3), num(block.kappa, 3)])
    return rows


def rows(summary: Summary | dict, calibration: Calibration | dict | None) -> list[dict]:
    """Gives one row per judge, best first: every figure as shown, plus its per-slice agreement rows."""
    summary = parse(summary)
    calibration = Calibration.model_validate(calibration) if isinstance(calibration, dict) else \
        calibration or Calibration()
    judges = calibration.judges
    order = list(calibration.ranking) + sorted(set(judges) - set(calibration.ranking))
    order += [n for n in (summary.judge.judges if summary.judge else {}) if n not in order]
    out = []
    for rank, name in enumerate(order, 1):
        cal = judges.get(name) or JudgeCalibration()
        kappa = cal.kappa
        unparsed, asked = cal.unparsed, cal.judgments
        verdict = "validated" if cal.validated else ("NOT validated" if kappa else "no human labels")
        out.append({
            "rank": rank, "judge": name, "scale": scale(calibration.meaning.get(name)),
            "kappa": f"{num(kappa, 3)} ({ci(kappa)})" if kappa else "–",
            "kappa_value": kappa.value if kappa else None,
            "n": cal.n, "min_kappa": cal.min_kappa, "verdict": verdict, "ceiling": _ceiling(cal),
            "bias": _bias(cal), "rates": _rates(summary, name),
            "unparsed": f"{unparsed} of {asked} ({pct(unparsed / asked)})" if asked else "–",
            "cost": "–" if cal.cost is None else f"{cal.cost:.2f} (price config's currency)",
            "seconds": "–" if cal.seconds is None else f"{cal.seconds:.1f} s",
            "per_slice": per_slice(cal), "warnings": cal.warnings or []})
    return out


HEAD = ["rank", "judge", "scale", "κ vs humans (95 % CI)", "n", "min κ", "trust", "annotators' ceiling",
        "bias checks", "rates (95 % CI)", "unparsed", "cost", "time"]


def cells(row: dict) -> list:
    """Gives a judge row's cells in HEAD order."""
    return [row["rank"], row["judge"], row["scale"], row["kappa"], row["n"] if row["n"] is not None else "–",
            row["min_kappa"] if row["min_kappa"] is not None else "–", row["verdict"], row["ceiling"], row["bias"],
            row["rates"], row["unparsed"], row["cost"], row["seconds"]]
