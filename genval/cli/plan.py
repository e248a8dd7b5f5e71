"""`genval plan CONFIG`: the examples each slice has and needs, before a run pays for generation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _fraction(text: str) -> float:
    """An argparse type: a share strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} should be a share strictly between 0 and 1 (0.05 for 5 points)")
    return value


def _cmd_plan(args) -> int:
    from genval.analysis.plan import plan
    from genval.config import load_config

    config = load_config(args.config)
    rows = plan(config, args.drop, args.share)
    a = config.analysis
    print(f"Examples to detect a drop of {args.drop:g} in a share near {args.share:g} at {a.confidence:.0%} "
          f"confidence with 80 % power: {rows[0].needed if rows[0].needed else 'more than 10,000,000'} per slice "
          "(the MDE the report gives a slice, inverted).")
    print("| slice | n | MDE at n | needs | |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        mark = "ok" if row.enough else f"short by {row.needed - row.n}" if row.needed else "–"
        small = f" (under min_slice_n {a.min_slice_n}: not ranked)" if row.small else ""
        mde = "–" if row.mde is None else f"{row.mde:.3f}"
        print(f"| {row.slice} | {row.n} | {mde} | {row.needed or '–'} | {mark}{small} |")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "drop": args.drop, "share": args.share, "confidence": a.confidence, "power": 0.8,
            "min_slice_n": a.min_slice_n,
            "rows": [{"slice": r.slice, "n": r.n, "mde": r.mde, "needed": r.needed, "enough": r.enough,
                      "too_small_to_rank": r.small} for r in rows]}, indent=2) + "\n", encoding="utf-8")
    return 0


def add_commands(subparsers) -> None:
    """Adds `plan` to the `genval` command."""
    p = subparsers.add_parser("plan", help="per slice, the examples the eval set has and the examples it needs to "
                                           "detect a given drop (before generating anything)")
    p.add_argument("config", help="the run config (YAML)")
    p.add_argument("--drop", type=_fraction, default=0.05, help="the drop to detect, as a share (default 0.05)")
    p.add_argument("--share", type=_fraction, default=0.5,
                   help="the share you expect (student accuracy, a judge's rate); 0.5, the default, is the worst case")
    p.add_argument("--json", help="also write the plan as JSON to this path")
    p.set_defaults(func=_cmd_plan)
