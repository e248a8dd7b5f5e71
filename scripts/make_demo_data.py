"""Makes the offline demo's illustrative data: support tickets, teacher and student replay files, human labels.

Everything here is synthetic and seeded (`--seed`, default 7), so the files are the same on
every machine. The tickets come from templates; the "teacher" and "student" outputs are
simulated with error rates that differ by slice — the student is worse on hard tickets and
on rare categories, breaks the schema now and then, and is over-confident in its label
probabilities — so that the demo report has something true to show. The human ratings come
from simulated annotators (a noisy reading of whether the student's fields match the
teacher's), and are marked as simulated in every record's note.

    python scripts/make_demo_data.py            # writes data/demo/ and human_labels/demo.jsonl

The simulated judge (data/demo/judge.jsonl, a replay of judges/extraction_equivalence.yaml)
draws from its own seeded stream, so adding it left the other files byte-identical.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = {  # category → share of tickets (fraud and legal are rare: under 5 %)
    "billing": 0.27, "shipping": 0.25, "account": 0.2, "technical": 0.19, "fraud": 0.05, "legal": 0.04,
}
SEVERITIES = ["low", "medium", "high", "critical"]
OPENERS = ["Hi,", "Hello team,", "Good morning,", "To whom it may concern,", "Hey,", ""]
PROBLEMS = {
    "billing": ["I was charged twice for my subscription this month", "my invoice shows a fee I never agreed to",
                "the discount code was not applied to my bill", "I was billed after cancelling my plan"],
    "shipping": ["my package has not arrived after two weeks", "the tracking page has not updated in days",
                 "the parcel was delivered to the wrong address", "the box arrived damaged and open"],
    "account": ["I cannot log in to my account since the update", "the password reset email never arrives",
                "my profile settings keep resetting", "I want to merge two accounts with the same email"],
    "technical": ["the app crashes when I open the order history", "the export button does nothing",
                  "the checkout page shows an error 500", "notifications stopped working on my phone"],
    "fraud": ["there are purchases on my card that I did not make", "someone changed my shipping address without me",
              "I got a message asking for my card number from your company"],
    "legal": ["I want all my personal data deleted under GDPR", "your terms changed and I dispute the new clause",
              "I am asking for a copy of the contract for my records"],
}
SEVERITY_HINTS = {"low": "It is not urgent.", "medium": "Please look into it this week.",
                  "high": "This is blocking me and I need help soon.", "critical": "This is urgent, I am losing money right now."}
REFUND_ASK = ["I would like a refund.", "Please refund the amount.", "Can I get my money back?"]
SUMMARY = {
    "billing": "Customer reports a billing problem: {p}.", "shipping": "Customer reports a delivery issue: {p}.",
    "account": "Customer cannot use their account as expected: {p}.", "technical": "Customer reports a technical fault: {p}.",
    "fraud": "Customer reports possible fraud: {p}.", "legal": "Customer raises a legal request: {p}.",
}
PARAPHRASE = ["The customer says {p}.", "Ticket about {c}: {p}.", "User writes that {p}."]


def make_ticket(i: int, rng: np.random.Generator) -> dict:
    category = rng.choice(list(CATEGORIES), p=list(CATEGORIES.values()))
    severity = SEVERITIES[int(rng.choice(4, p=[0.3, 0.35, 0.25, 0.1]))]
    problem = str(rng.choice(PROBLEMS[category]))
    has_order = category in ("billing", "shipping", "fraud") or rng.random() < 0.3
    order_id = f"ORD-{int(rng.integers(10000, 99999))}" if has_order else None
    refund = bool(category in ("billing", "fraud") and rng.random() < 0.6 or rng.random() < 0.08)
    hard = rng.random()
    difficulty = "hard" if hard < 0.25 else "medium" if hard < 0.6 else "easy"
    parts = [str(rng.choice(OPENERS)), problem[0].upper() + problem[1:] + "."]
    if order_id:
        parts.append(f"My order number is {order_id}." if difficulty != "hard" else f"(ref {order_id[4:]}, order {order_id})")
    if difficulty != "easy":
        parts.append(SEVERITY_HINTS[severity])
    if refund:
        parts.append(str(rng.choice(REFUND_ASK)))
    if difficulty == "hard":  # hard tickets bury the point in noise and mention a second topic
        other = str(rng.choice([c for c in CATEGORIES if c != category]))
        parts.insert(1, f"Also, unrelated, {rng.choice(PROBLEMS[other])}, but that can wait.")
    critical = bool(category in ("fraud", "legal") or severity == "critical")
    gold = {"category": str(category), "severity": severity, "order_id": order_id, "refund": refund,
            "summary": SUMMARY[category].format(p=problem)}
    return {
        "id": f"T{i:04d}", "input": " ".join(p for p in parts if p), "reference": gold, "label": str(category),
        "slices": {"difficulty": difficulty, "category": str(category), "critical": critical},
    }


def _probs(true_label: str, said: str, confidence: float, rng: np.random.Generator) -> dict:
    """Gives label probabilities that put `confidence` on the said label and spread the rest."""
    others = [c for c in CATEGORIES if c != said]
    rest = rng.dirichlet(np.ones(len(others)) * 0.7) * (1 - confidence)
    probs = {said: confidence, **{c: float(r) for c, r in zip(others, rest)}}
    return {c: round(probs[c], 6) for c in CATEGORIES}


def simulate(ticket: dict, role: str, rng: np.random.Generator) -> dict:
    """Gives one simulated model output (a replay record) for a ticket."""
    gold, sl = ticket["reference"], ticket["slices"]
    hard, rare = sl["difficulty"] == "hard", gold["category"] in ("fraud", "legal")
    if role == "teacher":
        p_wrong = 0.03 + 0.09 * hard + 0.04 * rare
    else:
        p_wrong = 0.03 + 0.16 * hard + 0.3 * rare
    out = dict(gold)
    wrong = rng.random() < p_wrong
    if wrong:
        out["category"] = str(rng.choice([c for c in CATEGORIES if c != gold["category"]]))
    if rng.random() < (0.06 if role == "teacher" else 0.12 + 0.1 * hard):
        out["severity"] = SEVERITIES[min(3, max(0, SEVERITIES.index(gold["severity"]) + int(rng.choice([-1, 1]))))]
    if rng.random() < (0.02 if role == "teacher" else 0.06 + 0.1 * hard):
        out["refund"] = not gold["refund"]
    if gold["order_id"] and rng.random() < (0.01 if role == "teacher" else 0.04 + 0.1 * hard):
        out["order_id"] = None
    problem = gold["summary"].split(": ", 1)[1].rstrip(".")
    if rng.random() < (0.3 if role == "teacher" else 0.55):
        out["summary"] = str(rng.choice(PARAPHRASE)).format(p=problem, c=out["category"])
    text = json.dumps(out)
    if role == "student":  # a few outputs break the format: fenced, truncated, or a bad enum
        u = rng.random()
        if u < 0.02:
            text = "```json\n" + text + "\n```"
        elif u < 0.035:
            text = text[: len(text) // 2]
        elif u < 0.05:
            text = json.dumps({**out, "severity": "urgent"})
    # Confidence: the teacher's matches its accuracy; the student's is pushed towards 1 (over-confident).
    if role == "teacher":
        confidence = float(np.clip(rng.beta(50, 1.5) if not wrong else rng.beta(4, 3), 0.2, 0.999))
    else:  # near-certain whether right or wrong
        confidence = float(np.clip(rng.beta(60, 1) if not wrong else rng.beta(40, 1), 0.3, 0.9995))
    prompt_tokens = int(len(ticket["input"].split()) * 1.3) + 120
    completion_tokens = int(len(text.split()) * 1.4)
    base = 0.9 if role == "teacher" else 0.25
    latency = float(base * math.exp(rng.normal(0, 0.25)) + completion_tokens * (0.012 if role == "teacher" else 0.004))
    return {"id": ticket["id"], "text": text, "latency_s": round(latency, 4), "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "label_probs": _probs(gold["category"], out["category"], confidence, rng)}


def _fields_match(a: str, b: str) -> bool:
    try:
        x, y = json.loads(a), json.loads(b)
    except json.JSONDecodeError:
        return False
    keys = ("category", "severity", "order_id", "refund")
    return isinstance(x, dict) and isinstance(y, dict) and all(x.get(k) == y.get(k) for k in keys)


def human_labels(tickets, teacher, student, rng: np.random.Generator, n: int = 150) -> list[dict]:
    """Gives simulated ratings of student~teacher equivalence: 3 annotators on 60 items, 1 on the rest."""
    by_slice: dict[str, list[int]] = {}
    for i, t in enumerate(tickets):
        by_slice.setdefault(t["slices"]["difficulty"], []).append(i)
    picked: list[int] = []
    for idx in by_slice.values():  # stratified: each difficulty in proportion, at least 30
        k = max(30, round(n * len(idx) / len(tickets)))
        picked.extend(int(i) for i in rng.choice(idx, size=min(k, len(idx)), replace=False))
    records = []
    for j, i in enumerate(sorted(picked)):
        truth = _fields_match(student[i]["text"], teacher[i]["text"])
        annotators = ["ann_a", "ann_b", "ann_c"] if j < 60 else [str(rng.choice(["ann_a", "ann_b", "ann_c"]))]
        for ann in annotators:
            verdict = truth if rng.random() > 0.07 else not truth
            records.append({"id": tickets[i]["id"], "pair": "student~teacher", "annotator": ann,
                            "verdict": "equivalent" if verdict else "not_equivalent",
                            "note": "simulated annotator (demo data)"})
    return records


FIELDS = ("category", "severity", "order_id", "refund", "summary")


def _judge_answer(student: str, teacher: str, rng: np.random.Generator) -> str:
    """Gives one simulated judge answer in judges/extraction_equivalence.yaml's format.

    The judge reads the fields as people do, but misreads 6 % of items, leans towards
    "equivalent" when the student's output is longer than the teacher's (a length bias of
    +12 points), and 2 % of its answers are unparseable (cut off, or no verdict).
    """
    try:
        s_obj, t_obj = json.loads(student), json.loads(teacher)
    except json.JSONDecodeError:
        s_obj, t_obj = None, json.loads(teacher)
    if not isinstance(s_obj, dict):
        fields = {k: "different" for k in FIELDS}
    else:
        fields = {k: "same" if s_obj.get(k) == t_obj.get(k) or k == "summary" else "different" for k in FIELDS}
    same = all(v == "same" for v in fields.values())
    if rng.random() < 0.06:
        same = not same
    elif not same and len(student) > len(teacher) and rng.random() < 0.12:
        same = True
    if same:
        fields = {k: "same" for k in FIELDS}
    elif all(v == "same" for v in fields.values()):
        fields[str(rng.choice(FIELDS[:4]))] = "different"
    body = json.dumps({"fields": fields, "verdict": "equivalent" if same else "not_equivalent"})
    u = rng.random()
    if u < 0.01:
        return body[: len(body) // 2]  # cut off mid-object
    if u < 0.02:
        return "The extractions mostly agree, but I cannot tell about the summary."
    if u < 0.35:
        return "Comparing field by field:\n```json\n" + body + "\n```"
    return body


def judge_replay(tickets, teacher, student, seed: int) -> list[dict]:
    """Gives the demo judge's replay records, keyed by the judge stage's request ids."""
    rng = np.random.default_rng([seed, 5])  # its own stream: the files above stay byte-identical
    return [{"id": f"{t['id']}|student~teacher|ab|0", "text": _judge_answer(s["text"], te["text"], rng)}
            for t, te, s in zip(tickets, teacher, student)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument("--labels-out", type=Path, default=ROOT / "human_labels" / "demo.jsonl")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    tickets = [make_ticket(i, rng) for i in range(args.n)]
    teacher = [simulate(t, "teacher", rng) for t in tickets]
    student = [simulate(t, "student", rng) for t in tickets]
    labels = human_labels(tickets, teacher, student, rng)
    args.out.mkdir(parents=True, exist_ok=True)
    args.labels_out.parent.mkdir(parents=True, exist_ok=True)
    for name, rows in (("tickets.jsonl", tickets), ("teacher.jsonl", teacher), ("student.jsonl", student)):
        with open(args.out / name, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(args.labels_out, "w", encoding="utf-8") as fh:
        for row in labels:
            fh.write(json.dumps(row) + "\n")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Support ticket extraction",
        "type": "object",
        "required": ["category", "severity", "order_id", "refund", "summary"],
        "additionalProperties": False,
        "properties": {
            "category": {"enum": list(CATEGORIES)},
            "severity": {"enum": SEVERITIES},
            "order_id": {"type": ["string", "null"], "pattern": "^ORD-[0-9]{5}$"},
            "refund": {"type": "boolean"},
            "summary": {"type": "string", "minLength": 10},
        },
    }
    (args.out / "schema.json").write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    with open(args.out / "judge.jsonl", "w", encoding="utf-8") as fh:
        for row in judge_replay(tickets, teacher, student, args.seed):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(tickets)} tickets, teacher/student replays and {len(labels)} human ratings to {args.out}")


if __name__ == "__main__":
    main()
