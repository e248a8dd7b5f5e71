"""The release gate: rules on summary numbers, overall or per slice, and against a baseline run.

A rule names a headline number (see `lookup` and docs/reports.md for the names), an
optional pair and slice (`field=*`: every slice of the field), and bounds: `min`/`max` on
the point value; `lower`/`upper` on the ends of its interval; `non_inferiority` on the lower
end of the paired interval of student − teacher; `max_regression` against the baseline run's
same number. Interval tests on slices are corrected together for multiplicity (Holm, see
genval.analysis.significance). A rule on a judge number fails unless the judge is validated.
Which way is better comes from genval.registry.
"""

from __future__ import annotations

from pathlib import Path

from genval import registry
from genval.analysis.diagnosis import value
from genval.analysis.significance import holm, one_sided_p
from genval.config import GateConfig, GateRule, read_yaml, validated
from genval.errors import GenvalError
from genval.summary import Block, Classification, Estimate, Findings, Judge, Number, Summary, parse, read

CLASSIFICATION = ("accuracy_retention", "agreement_rate", "kl_teacher_student", "spearman", "kendall")
ROLE_FIGURES = ("accuracy", "precision", "recall", "f1", "brier", "nll")
ERROR_KINDS = ("both_correct", "both_wrong", "only_student_wrong", "only_teacher_wrong")
JUDGE_NUMBERS = ("equivalence_rate", "corrected_equivalence_rate", "equivalence_rate_ppi", "mean_score")
RETENTION = "_retention"   # `<metric>_retention`: a reference metric's student / teacher (fidelity.retention)


def lookup(summary: Findings, block: Block | Findings, metric: str, pair: str | None
           ) -> tuple[bool, Estimate | float | None]:
    """Gives (known, number) of a rule's number in `block` (the run's, or one of its slices).

    The number is typed (value, interval, n) where the summary has one, else a plain float (or None).
    """
    cls = block.classification
    if metric in CLASSIFICATION:
        return True, getattr(cls, metric) if cls else None
    if metric in ROLE_FIGURES:
        figures = getattr(cls, pair or "student", None) if cls else None
        return True, getattr(figures, metric) if figures else None
    if metric == "ece":
        return True, cls.ece.get(pair or "student") if cls else None
    if metric in ERROR_KINDS:
        return True, getattr(cls.errors, metric) if cls and cls.errors else None
    if metric == "mcnemar_p":
        return True, mcnemar(cls)
    if metric in JUDGE_NUMBERS:
        return True, _judge_number(block.judge, metric, pair)
    if metric == "task_retention":
        return True, block.fidelity.task_retention
    kept, of = block.fidelity.retention, metric[:-len(RETENTION)]
    if metric.endswith(RETENTION) and summary.fidelity.retention and of in summary.fidelity.retention:
        return True, kept.get(of) if kept else None
    if metric == "generation_error":
        return True, block.generation.get(pair or "student")
    ops = summary.ops
    if metric in ops.savings:
        return True, ops.savings[metric]
    if any(metric in figures for figures in ops.roles.values() if figures):
        return True, ops.figure(pair or "student", metric)
    candidates = [pair] if pair else ["student~reference", "student~teacher", "student"]
    for name in candidates:
        if metric in block.metrics.get(name, {}):
            return True, block.metrics[name][metric]
    known = any(metric in m for m in summary.metrics.values())
    return known, None


def mcnemar(classification: Classification | None) -> Number | None:
    """Gives McNemar's exact two-sided p (McNemar 1947; the binomial form genval compare uses) on the examples that
    only one of teacher and student labels right, as a number whose n is those examples; None without label rows.

    The counts are the error shares times the examples they are over (the accuracy's n), so the summary suffices.
    """
    from scipy.stats import binomtest

    errors = classification.errors if classification else None
    n = classification.student.accuracy.n if classification else 0
    if errors is None or not n:
        return None
    b, c = round(errors.only_student_wrong * n), round(errors.only_teacher_wrong * n)
    p = binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0
    return Number(value=float(p), ci=[None, None], n=int(b + c)).named("mcnemar_p")


def _judge_number(judge: Judge | None, metric: str, pair: str | None):
    """Gives the primary judge's number: the top-level one, else the one of its `pair` (default its own)."""
    if judge is None:
        return None
    if pair is None and metric in judge.model_fields_set:
        return getattr(judge, metric)
    rates = judge.rates(pair)
    return getattr(rates, metric) if rates else None


def describe(rule: GateRule) -> str:
    """Gives a rule in one line, e.g. `accuracy_retention lower >= 0.92 on critical=true`."""
    parts = [rule.metric + (f" [{rule.pair}]" if rule.pair else "")]
    if rule.min is not None:
        parts.append(f">= {rule.min:g}")
    if rule.max is not None:
        parts.append(f"<= {rule.max:g}")
    if rule.lower is not None:
        parts.append(f"lower >= {rule.lower:g}")
    if rule.upper is not None:
        parts.append(f"upper <= {rule.upper:g}")
    if rule.non_inferiority is not None:
        parts.append(f"non-inferior to the teacher (margin {rule.non_inferiority.margin:g})")
    if rule.max_regression is not None:
        parts.append(f"regresses <= {rule.max_regression:g} vs baseline")
    if rule.slice:
        parts.append(f"on {rule.slice}")
    return " ".join(parts)


def _block(summary: Findings, rule: GateRule) -> Block | Findings | None:
    return summary.slice(rule.slice) if rule.slice else summary


def expand(rules: list[GateRule], summary: Findings) -> list[GateRule]:
    """Gives the rules with each `field=*` slice written out as one rule per slice of the field."""
    out = []
    for rule in rules:
        field, _, wanted = (rule.slice or "").partition("=")
        if wanted != "*":
            out.append(rule)
            continue
        values = sorted(summary.slices.get(field, {}))
        if not values:
            out.append(rule)  # fails below as a missing slice
        out += [rule.model_copy(update={"slice": f"{field}={v}"}) for v in values]
    return out


def _not_validated(summary: Findings, rule: GateRule) -> str | None:
    """Gives why a rule on a judge number cannot count (its judge is not validated), None when it can."""
    if rule.metric not in JUDGE_NUMBERS and not rule.metric.startswith("judge:"):
        return None
    judge = summary.judge
    if judge and judge.validated:
        return None
    cal = judge.calibration if judge else None
    kappa = value(cal.kappa) if cal else None
    if kappa is None:
        why = "no human-agreement check (no human_labels)"
    elif cal.kappa.lo is None:
        why = f"kappa {kappa:.3g} with humans has no interval (too few rated items) to check against min_kappa " \
              f"{cal.min_kappa}"
    else:
        why = f"kappa {kappa:.3g} with humans, but its interval's lower end {cal.kappa.lo:.3g} is under min_kappa " \
              f"{cal.min_kappa}"
    return f"judge not validated: {judge.name if judge else 'no judge'} — {why}"


def paired_request(rule: GateRule, metrics: dict) -> tuple[str, str, str, int]:
    """Gives (student pair, teacher pair, metric, sign) of a non-inferiority rule's paired number, or raises.

    `metrics` is the summary's pair → metric → number (only its keys are read); `sign` turns a
    lower-is-better number around, so student − teacher ≥ −margin always means "not worse".
    """
    metric = "label_correct" if rule.metric == "accuracy" else rule.metric
    pair = "student~reference" if rule.metric == "accuracy" else rule.pair or next(
        (p for p in ("student~reference", "student") if metric in metrics.get(p, {})), None)
    teacher = "teacher" + pair[len("student"):] if pair and pair.split("~")[0] == "student" else None
    if teacher is None or teacher.endswith("~teacher") or metric not in metrics.get(teacher, {}):
        raise GenvalError(f"gate rule '{describe(rule)}': non_inferiority needs a number both teacher and student "
                          "have (accuracy, a ~reference metric such as rougeL, a format check such as json_valid)")
    return pair, teacher, metric, (registry.spec(metric) or registry.SHARE).sign or 1


def _interval_tests(rule: GateRule, num, summary: Findings, paired) -> list[dict]:
    """Gives the rule's interval tests: kind, bound, the number tested, and its one-sided p-value."""
    confidence = summary.settings.confidence
    tests = [{"kind": kind, "bound": bound, "number": num.dump() if isinstance(num, Estimate) else None}
             for kind, bound in (("lower", rule.lower), ("upper", rule.upper)) if bound is not None]
    if rule.non_inferiority is not None:
        margin = rule.non_inferiority.margin
        if paired is None:
            tests.append({"kind": "non_inferiority", "bound": -margin, "number": None,
                          "missing": "non_inferiority needs the run's tables (run `genval gate RUN_FOLDER`)"})
        else:
            tests.append({"kind": "non_inferiority", "bound": -margin, "number": paired(rule)})
    for test in tests:
        n = test["number"] or {}
        test["p"] = one_sided_p(n.get("value"), n.get("ci") or [None, None], test["bound"], confidence,
                                _side(test)) if n else None
    return tests


def _side(test: dict) -> str:
    """Gives the end of the interval a test reads: the upper end for `upper`, else the lower end."""
    return "upper" if test["kind"] == "upper" else "lower"


def check(rule: GateRule, summary: Findings, baseline: Findings | None, paired=None) -> dict:
    """Gives one rule's outcome: the value, interval tests, the baseline value, passed, and why not.

    `passed` here covers the point and baseline bounds; `evaluate` decides the interval tests
    (they need the whole gate's family of slice tests for Holm's correction).
    """
    out = {"rule": describe(rule), "metric": rule.metric, "pair": rule.pair, "slice": rule.slice,
           "value": None, "ci": None, "baseline": None, "tests": [], "passed": False, "reason": None}
    block = _block(summary, rule)
    if block is None:
        out["reason"] = f"no slice {rule.slice} in this run"
        return out
    known, num = lookup(summary, block, rule.metric, rule.pair)
    if not known:
        raise GenvalError(f"gate rule '{describe(rule)}': no number named '{rule.metric}'"
                          f"{' for pair ' + rule.pair if rule.pair else ''} in this run's summary "
                          "(see docs/reports.md, 'Gate metric names')")
    current = value(num)
    out["value"], out["ci"] = current, list(num.ci) if isinstance(num, Estimate) else None
    reasons = [r for r in (_not_validated(summary, rule),) if r]
    out["tests"] = _interval_tests(rule, num, summary, paired)
    if current is None:
        if (rule.min, rule.max, rule.lower, rule.upper, rule.max_regression) != (None,) * 5:
            note = getattr(num, "note", None)
            reasons.append("the number is missing in this run" + (f" ({note})" if note else ""))
        out["passed"], out["reason"] = not reasons, "; ".join(reasons) or None
        return out
    if rule.min is not None and current < rule.min:
        reasons.append(f"{current:.4g} < min {rule.min:g}")
    if rule.max is not None and current > rule.max:
        reasons.append(f"{current:.4g} > max {rule.max:g}")
    if rule.max_regression is not None:
        reasons += _regression(rule, current, baseline, out)
    out["passed"] = not reasons
    out["reason"] = "; ".join(reasons) or None
    return out


def _regression(rule: GateRule, current: float, baseline: Findings | None, out: dict) -> list[str]:
    base_block = _block(baseline, rule) if baseline else None
    before = value(lookup(baseline, base_block, rule.metric, rule.pair)[1]) if base_block else None
    out["baseline"] = before
    if before is None:
        return ["no baseline value to compare with"]
    sign = (registry.spec(rule.metric) or registry.SHARE).sign or 1
    worse = sign * (before - current)
    if worse > rule.max_regression:
        return [f"regressed {worse:.4g} vs baseline {before:.4g} (allowed {rule.max_regression:g})"]
    return []


def _test_reason(test: dict, alpha: float, family: int) -> str | None:
    """Gives why an interval test fails, None when it passes (on its Holm-adjusted p-value on a slice)."""
    if test.get("missing") or test["p"] is None:
        return test.get("missing") or f"no interval for the {test['kind']} test in this run"
    side = _side(test)
    end = test["number"]["ci"][0 if side == "lower" else 1]
    what = "student − teacher, lower end" if test["kind"] == "non_inferiority" else f"{side} end"
    if test["p"] > alpha:
        sign = "<" if side == "lower" else ">"
        return f"{what} {end:.4g} {sign} {test['bound']:g}"
    adjusted = test.get("p_holm")
    if adjusted is not None and adjusted > alpha:
        return (f"{what} {end:.4g} passes alone but not after Holm's correction over {family} slice tests "
                f"(adjusted p {adjusted:.3g} > {alpha:g})")
    return None


def evaluate(gate: GateConfig, summary: Findings | dict, baseline: Findings | dict | None, paired=None) -> dict:
    """Gives the gate's outcome: passed, every rule's result, and the failing rules in one line each.

    `summary` and `baseline` are typed (a summary.json's dict is read into the model first).
    `paired` (a rule → {value, ci, n} of its paired student − teacher difference on its slice,
    from the run's tables: genval.analysis.stage.paired_numbers) is needed by non-inferiority
    rules, which test a paired interval the summary does not hold.
    """
    summary = parse(summary) if isinstance(summary, dict) else summary
    baseline = parse(baseline, "gate.baseline") if isinstance(baseline, dict) else baseline
    results = [check(rule, summary, baseline, paired) for rule in expand(gate.rules, summary)]
    confidence = summary.settings.confidence
    alpha = (1 - confidence) / 2  # one-sided: the interval's end at this confidence
    # Holm's family: the interval tests on slices that have a p-value. A test without one (no interval) fails on
    # its own and cannot take part; a rule without a slice is tested alone. Both are listed with the reason.
    family = [t for r in results if r["slice"] for t in r["tests"] if t["p"] is not None]
    for test, adjusted in zip(family, holm([t["p"] for t in family])):
        test["p_holm"] = adjusted
    left_out = [{"rule": r["rule"], "kind": t["kind"],
                 "reason": (t.get("missing") or f"no interval for the {t['kind']} test: it fails on its own")
                 if t["p"] is None else "not on a slice: tested alone, not corrected"}
                for r in results for t in r["tests"] if t["p"] is None or not r["slice"]]
    for r in results:
        reasons = [r["reason"]] if r["reason"] else []
        reasons += [why for why in (_test_reason(t, alpha, len(family)) for t in r["tests"]) if why]
        r["passed"] = not reasons
        r["reason"] = "; ".join(dict.fromkeys(reasons)) or None
    failing = [f"{r['rule']}: {r['reason']}" for r in results if not r["passed"]]
    return {"passed": not failing, "baseline": str(gate.baseline) if gate.baseline else None,
            "alpha": alpha, "holm_family": len(family), "holm_left_out": left_out, "rules": results,
            "failing": failing}


def pair_mistake(metric: str, pair: str | None, roles) -> str | None:
    """Gives why a rule's `[pair]` cannot be read as written, with the close match; None when it can.

    A pair is a role (`student`) or two sides joined by `~`, each a role or `reference`. A typo (`studnet`) would
    otherwise reach the gate as "the number is missing in this run", a failing rule that reads as a result. The
    teacher-vs-student numbers (`kl_teacher_student`, retentions, error shares) take no pair and the per-role
    classification figures only `teacher` or `student`: a further candidate's own are gated by the same rules
    (summary.candidates.<role>.gate), and `kl_teacher_student [student_v2]` read the student's KL without a word.
    """
    from genval.errors import did_you_mean

    if pair is None:
        return None
    known = [*roles, "reference"]
    sides = pair.split("~")
    if len(sides) > 2:
        return f"pair '{pair}': a pair is a role or two sides joined by one '~' ('student~teacher')"
    for side in sides:
        if side not in known:
            return (f"pair '{pair}': '{side}' is no role of this run (roles: {', '.join(roles)}; a pair is a role "
                    f"or 'role~teacher', 'role~reference')" + did_you_mean(side, known))
    own = "; every further candidate is gated on its own numbers by the same rules (summary.candidates.<role>.gate)"
    if metric in (*CLASSIFICATION, *ERROR_KINDS, "mcnemar_p") or metric.endswith(RETENTION):
        return f"'{metric}' compares the student with the teacher and takes no [pair] ('{pair}' given){own}"
    if metric in (*ROLE_FIGURES, "ece") and pair not in ("teacher", "student"):
        return f"'{metric}' takes [teacher] or [student] ('{pair}' given){own}"
    return None


def load_gate(path: str | Path) -> GateConfig:
    """Reads a gate file: `rules:` (and `baseline:`) at the top, or a run config's `gate:` key."""
    path = Path(path)
    data, text = read_yaml(path, "gate")
    if isinstance(data, dict) and "gate" in data:
        data, text = data["gate"], ""  # a run config: key lines would be looked up from the wrong root
    if not isinstance(data, dict):
        raise GenvalError(f"{path}: a gate file holds 'rules: [...]' (and optionally 'baseline: RUN')")
    gate = validated(GateConfig, data, str(path), text)
    if gate.baseline is not None and not gate.baseline.is_absolute():
        gate.baseline = (path.resolve().parent / gate.baseline).resolve()
    return gate


def read_baseline(path: Path | None) -> Summary | None:
    """Gives the baseline run's summary.json (a run folder or the file itself), None when not set."""
    if path is None:
        return None
    try:
        return read(path, "baseline summary")
    except GenvalError as exc:
        raise GenvalError(f"gate.baseline: {exc}") from None
