"""The judge section: every judge with its scale, its agreement with humans against min_kappa, the annotators'
ceiling, its bias checks, per-slice agreement, unparsed share, cost and time — ranked as calibration.json ranks them.

In alpaca_eval's leaderboard spirit (a judge next to its measured agreement with humans, price
and time): a judge's rates are worth what its agreement is worth, so the two sit side by side.
Reads calibration.json (the calibrate stage) and summary.json's judge block (its rates per pair).
"""

from __future__ import annotations

from genval.report.decision import ci, num, pct


def scale(meaning: dict | None) -> str:
    """Gives a judge's scale in words: its labels, or its score range and pass mark."""
    meaning = meaning or {}
    if meaning.get("kind") == "ordinal":
        mark = f", pass ≥ {meaning['pass_threshold']:g}" if meaning.get("pass_threshold") is not None else ""
        return f"ordinal {meaning.get('min'):g}–{meaning.get('max'):g}{mark}"
    if meaning.get("labels"):
        return f"{meaning.get('kind') or 'labels'}: {' / '.join(meaning['labels'])}"
    return meaning.get("kind") or "–"


def _bias(cal: dict) -> str:
    bias = cal.get("bias") or {}
    said = []
    length = bias.get("length") or {}
    if length.get("excess") is not None:
        said.append(f"length: judge ρ {num(length.get('judge_vs_length_gap_spearman'), 2)} vs humans "
                    f"{num(length.get('human_vs_length_gap_spearman'), 2)} (excess {length['excess']:+.2f})")
    rate = bias.get("positive_rate") or {}
    if rate.get("judge") is not None and rate.get("human") is not None:
        said.append(f"says yes {pct(rate['judge'])} vs humans {pct(rate['human'])}")
    if bias.get("flip_rate") is not None:
        said.append(f"order flips {pct(bias['flip_rate'])} of {bias.get('flip_n')}")
    return "; ".join(said) or "–"


def _ceiling(cal: dict) -> str:
    found = cal.get("annotators") or {}
    if found.get("pairwise_kappa_mean") is None:
        return "– (one annotator per item)"
    return (f"κ {num(found['pairwise_kappa_mean'], 3)} among {len(found.get('annotators') or [])} annotators "
            f"on {found.get('items_multi_rated')} items")


def _rates(summary: dict, name: str) -> str:
    pairs = ((summary.get("judge") or {}).get("judges") or {}).get(name) or {}
    out = []
    for pair, block in pairs.items():
        rate = block.get("equivalence_rate")
        if rate:
            out.append(f"{pair} {num(rate, 3)} ({ci(rate)}, n={rate.get('n')})")
    return "; ".join(out) or "–"


def per_slice(cal: dict) -> list[list[str]]:
    """Gives one row per slice the humans rated: slice, n, agreement, κ (small ones marked)."""
    rows = []
    for field, values in (cal.get("per_slice") or {}).items():
        for value, block in values.items():
            mark = " (small)" if block.get("small") else ""
            rows.append([f"{field}={value}{mark}", str(block.get("n")), num(block.get("agreement"), 3),
                         num(block.get("kappa"), 3)])
    return rows


def rows(summary: dict, calibration: dict | None) -> list[dict]:
    """Gives one row per judge, best first: every figure as shown, plus its per-slice agreement rows."""
    calibration = calibration or {}
    judges = calibration.get("judges") or {}
    order = list(calibration.get("ranking") or []) + sorted(set(judges) - set(calibration.get("ranking") or []))
    named = ((summary.get("judge") or {}).get("judges") or {})
    order += [n for n in named if n not in order]
    meanings = calibration.get("meaning") or {}
    out = []
    for rank, name in enumerate(order, 1):
        cal = judges.get(name) or {}
        kappa = cal.get("kappa") or {}
        unparsed, asked = cal.get("unparsed"), cal.get("judgments")
        verdict = "validated" if cal.get("validated") else ("NOT validated" if kappa else "no human labels")
        out.append({
            "rank": rank, "judge": name, "scale": scale(meanings.get(name)),
            "kappa": f"{num(kappa, 3)} ({ci(kappa)})" if kappa else "–", "kappa_value": kappa.get("value"),
            "n": cal.get("n"), "min_kappa": cal.get("min_kappa"), "verdict": verdict, "ceiling": _ceiling(cal),
            "bias": _bias(cal), "rates": _rates(summary, name),
            "unparsed": f"{unparsed} of {asked} ({pct(unparsed / asked)})" if asked else "–",
            "cost": "–" if cal.get("cost") is None else f"{cal['cost']:.2f} (price config's currency)",
            "seconds": "–" if cal.get("seconds") is None else f"{cal['seconds']:.1f} s",
            "per_slice": per_slice(cal), "warnings": cal.get("warnings") or []})
    return out


HEAD = ["rank", "judge", "scale", "κ vs humans (95 % CI)", "n", "min κ", "trust", "annotators' ceiling",
        "bias checks", "rates (95 % CI)", "unparsed", "cost", "time"]


def cells(row: dict) -> list:
    """Gives a judge row's cells in HEAD order."""
    return [row["rank"], row["judge"], row["scale"], row["kappa"], row["n"] if row["n"] is not None else "–",
            row["min_kappa"] if row["min_kappa"] is not None else "–", row["verdict"], row["ceiling"], row["bias"],
            row["rates"], row["unparsed"], row["cost"], row["seconds"]]
