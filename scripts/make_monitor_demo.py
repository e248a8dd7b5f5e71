"""Makes the offline monitor demo's illustrative data: eight weeks of a deployed student's logged traffic.

Everything here is synthetic and seeded (`--seed`, default 11), so the files are the same on
every machine. A support desk routes tickets to billing, shipping or account; the deployed
(student) classifier's answers are logged with the ticket, its customer segment and channel.
The simulated student agrees with the teacher about 95 % of the time, except where the demo
plants a problem:

- from week 6 on (2026-02-09), tickets in segment=enterprise get a new product vocabulary and the
  student's agreement there falls to about 70 % (the planted rate; 62–68 % in these seeded files), the drop
  the monitor must page for;
- about 3 % of the traffic comes through channel=voice (phone transcripts), a channel the frozen
  eval set (eval_set.jsonl) does not cover: it shows as `uncovered_share`;
- about 0.5 % of requests fail (no output, an error logged), as in any service.

The teacher's answers for every request are in a replay file (teacher.jsonl); people labelled
a few tickets a week (human_labels.jsonl, simulated: the ticket's true queue, marked in a note).

    python scripts/make_monitor_demo.py        # writes data/monitor_demo/
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["billing", "shipping", "account"]
START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday: the monitor's 7-day windows start on Mondays
WEEKS, PER_WEEK, DROP_WEEK = 8, 700, 5  # weeks are 0-based: the drop starts in the sixth week
SEGMENTS = {"enterprise": 0.3, "smb": 0.45, "consumer": 0.25}
CHANNELS = {"web": 0.55, "email": 0.3, "chat": 0.12, "voice": 0.03}  # voice: not in the frozen eval set
PROBLEMS = {
    "billing": ["charged twice this month", "a fee on my invoice I never agreed to", "the discount was not applied",
                "billed after I cancelled", "need a VAT invoice for last order"],
    "shipping": ["my package has not arrived", "tracking has not updated in days", "delivered to the wrong address",
                 "the box arrived damaged", "need to change the delivery date"],
    "account": ["cannot log in since the update", "the password reset email never arrives",
                "my settings keep resetting", "please merge my two accounts", "need to add a user to our team"],
}
# From DROP_WEEK on, enterprise customers write about a newly launched product in its own words.
ENTERPRISE_NEW = ["on the new Fleet plan", "for our Fleet seats", "since the Fleet rollout"]
OPENERS = ["Hi,", "Hello,", "Hey team,", "", "Good morning,"]


def ticket(queue: str, segment: str, week: int, rng: np.random.Generator) -> str:
    text = f"{rng.choice(OPENERS)} {rng.choice(PROBLEMS[queue])}".strip()
    if segment == "enterprise" and week >= DROP_WEEK:
        text += f" {rng.choice(ENTERPRISE_NEW)}"
    return text[0].upper() + text[1:] + "."


def student_agrees(segment: str, channel: str, week: int, rng: np.random.Generator) -> bool:
    rate = 0.70 if segment == "enterprise" and week >= DROP_WEEK else 0.95
    return bool(rng.random() < (rate - 0.04 if channel == "voice" else rate))


def pick(rng: np.random.Generator, shares: dict) -> str:
    return str(rng.choice(list(shares), p=list(shares.values())))


def traffic(rng: np.random.Generator) -> tuple[dict[int, list], list, list]:
    """Gives week → logged requests, the teacher's replay records and the people's labels."""
    weeks, teacher, people = {}, [], []
    for week in range(WEEKS):
        rows = []
        for i in range(PER_WEEK):
            ident = f"r{week}-{i:03d}"
            segment, channel, truth = pick(rng, SEGMENTS), pick(rng, CHANNELS), LABELS[int(rng.integers(3))]
            stamp = START + timedelta(weeks=week, seconds=int(rng.integers(7 * 86400)))
            answer = truth if rng.random() < 0.97 else LABELS[(LABELS.index(truth) + 1) % 3]  # the teacher
            output = answer if student_agrees(segment, channel, week, rng) else \
                LABELS[(LABELS.index(answer) + int(rng.integers(1, 3))) % 3]
            row = {"id": ident, "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "input": ticket(truth, segment, week, rng), "output": output, "segment": segment,
                   "channel": channel}
            if rng.random() < 0.005:
                row.update(output=None, error="upstream timeout")
            rows.append(row)
            teacher.append({"id": ident, "text": answer})
            if rng.random() < 30 / PER_WEEK:
                people.append({"id": ident, "label": truth, "note": "simulated annotator"})
        weeks[week] = sorted(rows, key=lambda r: r["timestamp"])
    return weeks, teacher, people


def eval_set(rng: np.random.Generator) -> list[dict]:
    """Gives the frozen eval set the student was released on: web, email and chat only (no voice)."""
    covered = {k: v for k, v in CHANNELS.items() if k != "voice"}
    total = sum(covered.values())
    out = []
    for i in range(240):
        segment, truth = pick(rng, SEGMENTS), LABELS[int(rng.integers(3))]
        channel = pick(rng, {k: v / total for k, v in covered.items()})
        out.append({"id": f"e{i:03d}", "input": ticket(truth, segment, 0, rng), "label": truth,
                    "slices": {"segment": segment, "channel": channel}})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "monitor_demo")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    weeks, teacher, people = traffic(rng)
    for week, rows in weeks.items():
        write_jsonl(args.out / "traffic" / f"{(START + timedelta(weeks=week)):%Y-%m-%d}.jsonl", rows)
    write_jsonl(args.out / "teacher.jsonl", teacher)
    write_jsonl(args.out / "human_labels.jsonl", people)
    write_jsonl(args.out / "eval_set.jsonl", eval_set(rng))


if __name__ == "__main__":
    main()
