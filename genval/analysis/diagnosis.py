"""The overall status and the named patterns a reader should see, each with the numbers behind it.

Status bands (accuracy retention = student accuracy / teacher accuracy, KL = mean
KL(teacher ‖ student) over label distributions) follow the bands used in distillation
reports: DistilBERT keeps 97 % of its teacher's GLUE score (Sanh et al. 2019,
arXiv:1910.01108) and is the usual "excellent" reference; > 95 % with KL < 0.1 is
EXCELLENT, > 92 % with KL < 0.3 GOOD, > 90 % ACCEPTABLE, else WEAK. The diagnosis
thresholds below are genval's defaults, documented in docs/reports.md.
"""

from __future__ import annotations

from genval import registry
from genval.analysis.blocks import is_number
from genval.summary import Block, Estimate, Findings, Slice, Status

BANDS = (("EXCELLENT", 0.95, 0.1), ("GOOD", 0.92, 0.3), ("ACCEPTABLE", 0.90, None))
HIGH_AGREEMENT = 0.90        # "the student follows the teacher"
LOW_ACCURACY = 0.80          # "… but both are often wrong"
CRITICAL_GAP = 0.05          # a critical slice this far under the overall headline is weak
GOOD_ACCURACY = 0.80
POOR_ECE = 0.10              # ECE over 10 points: confidence is not to be trusted (Guo et al. 2017)
STUDENT_ONLY_ERRORS = 0.05   # more than 5 % of examples the teacher gets right and the student not
FORMAT_FAILURES = 0.02       # more than 2 % of student outputs unusable as a format
FASTER = 10.0                # a latency saving of 10 % or more counts as "better"


def value(num) -> float | None:
    """Gives the point value of a number (or a plain float), None when missing."""
    if isinstance(num, Estimate):
        num = num.value
    return float(num) if is_number(num) else None


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f} %"


NO_STATUS_HELP = ("to get a decision, give the eval records a `reference` and the config a reference metric "
                  "(`metrics: [rouge]`, chrf, bertscore…) so task retention can be measured, or gold labels for a "
                  "classification — or add a `gate:` with rules (a validated `judge:` gives rules such as "
                  "`equivalence_rate lower >= 0.8`)")


def status(block: Block | Findings) -> dict:
    """Gives the overall status, the numbers it rests on, in words what it is based on, and what held it back.

    `held_back` names each number that kept the level from the next band up (retention under its
    floor, KL over its ceiling), so a caveat says which number caused it.
    """
    cls = block.classification
    if cls and value(cls.accuracy_retention) is not None:
        retention, kl = value(cls.accuracy_retention), value(cls.kl_teacher_student)
        basis = "accuracy retention and KL(teacher‖student)" if kl is not None else \
            "accuracy retention alone (no label probabilities, so no KL)"
    else:
        task = block.fidelity.task_retention
        retention, kl = value(task), None
        if retention is None:
            why = "neither labels nor a reference to measure retention against"
            if task and task.note:
                why = f"task retention ({task.metric}) is undefined — {task.note}"
            elif block.metrics.get("student~reference"):
                why = "the student has reference scores but the teacher none to compare them with"
            return {"level": None, "retention": None, "kl": None, "basis": f"no status: {why}; {NO_STATUS_HELP}",
                    "held_back": []}
        basis = f"retention of task quality ({task.metric} vs the reference, student / teacher); " \
                "no labels, so no KL — the KL part of the bands is not applied"
    level, held_back = "WEAK", []
    for k, (name, min_retention, max_kl) in enumerate(BANDS):
        if retention > min_retention and (max_kl is None or kl is None or kl < max_kl):
            level = name
            held_back = _held_back(BANDS[k - 1], retention, kl) if k else []
            break
    else:
        held_back = [f"retention {pct(retention)} is not over the {pct(BANDS[-1][1])} of {BANDS[-1][0]}"]
    return {"level": level, "retention": retention, "kl": kl, "basis": basis, "held_back": held_back}


def _held_back(band: tuple, retention: float, kl: float | None) -> list[str]:
    """Gives which numbers keep a status out of the band above (`band`: its name, retention floor, KL ceiling)."""
    name, min_retention, max_kl = band
    out = []
    if retention <= min_retention:
        out.append(f"retention {pct(retention)} is not over the {pct(min_retention)} of {name}")
    if max_kl is not None and kl is not None and kl >= max_kl:
        out.append(f"KL(teacher‖student) {kl:.3g} is not under the {max_kl:g} of {name}")
    return out


def _say(kind: str, message: str, **numbers) -> dict:
    return {"kind": kind, "message": message, "numbers": numbers}


def _accuracy(summary: Findings, role: str) -> float | None:
    cls = summary.classification
    return value(getattr(cls, role).accuracy) if cls else None


def teacher_ceiling(summary: Findings, config, grade: Status) -> list[dict]:
    agreement = value(summary.classification.agreement_rate) if summary.classification else None
    student, teacher = _accuracy(summary, "student"), _accuracy(summary, "teacher")
    if agreement is None or student is None or agreement < HIGH_AGREEMENT or student >= LOW_ACCURACY:
        return []
    return [_say("teacher_ceiling",
                 f"The student agrees with the teacher on {pct(agreement)} of examples but is right on only "
                 f"{pct(student)} (teacher {pct(teacher)}): the teacher is the ceiling — a better teacher or "
                 "better labels, not more distillation, would raise it.",
                 agreement_rate=agreement, student_accuracy=student, teacher_accuracy=teacher)]


def _shortfall(summary: Findings, block: Slice) -> float | None:
    """Gives how much worse a slice's headline is than the overall one (direction from genval.registry), or None.

    Like is compared with like: a slice whose headline fell back to another number gives None.
    """
    overall, here = value(summary.headline), value(block.headline)
    if overall is None or here is None or block.headline.metric != summary.headline.metric:
        return None
    found = registry.spec(summary.headline.metric.split(" ")[0])
    return (found.sign if found and found.sign else 1) * (overall - here)


def weak_critical_slice(summary: Findings, config, grade: Status) -> list[dict]:
    out = []
    for ref in getattr(config, "critical", []) or []:
        block = summary.slice(ref)
        gap = _shortfall(summary, block) if block else None
        if gap is None or gap < CRITICAL_GAP:
            continue
        overall, here = value(summary.headline), value(block.headline)
        small = " (too small to rank: read it with its interval)" if block.too_small_to_rank else ""
        high = grade.level not in (None, "WEAK")   # "high" only when the run grades
        out.append(_say("weak_critical_slice",
                        f"{'High aggregate, weak' if high else 'Weak'} critical slice: {summary.headline.metric} is "
                        f"{pct(overall)} overall but "
                        f"{pct(here)} on {ref} (n={block.n}){small} — the student's training inputs likely "
                        "under-cover this slice; add such inputs to the distillation data.",
                        slice=ref, overall=overall, slice_value=here, n=block.n))
    return out


def small_slice(summary: Findings, config, grade: Status) -> list[dict]:
    """Names each slice too small to rank whose headline is well under the overall one, with a caution about n."""
    out = []
    critical = set(getattr(config, "critical", []) or [])
    for field, wanted, block in summary.each_slice():
        ref = f"{field}={wanted}"
        if not block.too_small_to_rank or ref in critical:
            continue
        gap = _shortfall(summary, block)
        if gap is None or gap < CRITICAL_GAP or not block.n:
            continue
        head = block.headline
        interval = f", interval {head.lo:.2f}–{head.hi:.2f}" if head.lo is not None and head.hi is not None else ""
        out.append(_say("small_slice",
                        f"Small slice, weak number: {head.metric} is {pct(head.value)} on {ref} "
                        f"(n={block.n}{interval}) against {pct(value(summary.headline))} overall. "
                        f"With fewer than {summary.settings.min_slice_n} examples it is not ranked and its interval "
                        "is wide: read it as a warning to confirm, not a finding — add examples of this slice to the "
                        "eval set.",
                        slice=ref, n=block.n, slice_value=head.value, overall=value(summary.headline),
                        ci=list(head.ci)))
    return out


def poor_calibration(summary: Findings, config, grade: Status) -> list[dict]:
    cls = summary.classification
    student = _accuracy(summary, "student")
    ece = value(cls.ece.get("student")) if cls else None
    if student is None or ece is None or student < GOOD_ACCURACY or ece <= POOR_ECE:
        return []
    temp = cls.temperature
    t, after = (temp.value, temp.ece_after) if temp else (None, None)
    fix = f"recalibrate with temperature scaling at T = {t:.2f} (ECE {pct(ece)} → {pct(after)})" \
        if is_number(t) and is_number(after) else "recalibrate (temperature scaling, Guo et al. 2017)"
    return [_say("poor_calibration",
                 f"Good accuracy, poor calibration: the student is right on {pct(student)} but its confidence is "
                 f"off by {pct(ece)} (ECE); {fix}.",
                 student_accuracy=student, student_ece=ece, temperature=t, ece_after=after)]


def latency_not_cost(summary: Findings, config, grade: Status) -> list[dict]:
    savings = summary.ops.savings
    latency, cost = savings.get("latency_p50_s_pct"), savings.get("cost_per_1k_calls_pct")
    if not is_number(latency) or not is_number(cost) or latency < FASTER or cost > 0:
        return []
    return [_say("latency_not_cost",
                 f"Latency better, cost not: the student answers {latency:.0f} % faster (p50) but costs "
                 f"{-cost:.0f} % more per 1000 calls — look at batching and GPU utilisation before pricing it.",
                 latency_p50_saving_pct=latency, cost_saving_pct=cost)]


def student_only_errors(summary: Findings, config, grade: Status) -> list[dict]:
    errors = summary.classification.errors if summary.classification else None
    if errors is None or errors.only_student_wrong <= STUDENT_ONLY_ERRORS:
        return []
    share = errors.only_student_wrong
    return [_say("student_only_errors",
                 f"Many student-only errors: on {pct(share)} of examples the teacher is right and the student "
                 "wrong — the distillation did not transfer what the teacher knows (more or harder transfer data, "
                 "longer training, or soft targets).",
                 only_student_wrong=share, only_teacher_wrong=errors.only_teacher_wrong)]


def format_failures(summary: Findings, config, grade: Status) -> list[dict]:
    out = []
    teacher = summary.format.get("teacher", {})
    for metric, block in summary.format.get("student", {}).items():
        failure = value(block.failure_rate)
        if failure is None or failure <= FORMAT_FAILURES:
            continue
        theirs = value(teacher[metric].failure_rate) if metric in teacher else None
        content = block.content_on_valid
        said = f"; on the outputs that pass, student~reference {content.metric} is {content.value:.3f} " \
               f"(all outputs: {content.all:.3f})" if content and is_number(content.value) and \
            is_number(content.all) else ""
        out.append(_say("format_failures",
                        f"Format failures, separate from content: {pct(failure)} of student outputs fail {metric} "
                        f"(teacher {pct(theirs)}){said} — fix the format (constrained decoding, a format-focused "
                        "fine-tune) before judging the content.",
                        metric=metric, student_failure_rate=failure, teacher_failure_rate=theirs,
                        content_on_valid=content.value if content else None))
    return out


def not_validated_why(judge) -> str:
    """Gives why a judge is not validated, in words: no human labels, no interval, or its lower end under min κ."""
    cal = judge.calibration
    kappa = value(cal.kappa) if cal else None
    if kappa is None:
        return "no human labels were compared with it (calibration.json absent)"
    if cal.kappa.lo is None:
        return f"its kappa with human labels is {kappa:.2f}, with no interval to check against the required " \
               f"{cal.min_kappa} (too few items rated by both)"
    return f"its kappa with human labels is {kappa:.2f}, but the interval's lower end {cal.kappa.lo:.3f} is under " \
           f"the required {cal.min_kappa}"


def judge_not_validated(summary: Findings, config, grade: Status) -> list[dict]:
    judge = summary.judge
    if not judge or judge.validated is True:
        return []
    cal = judge.calibration
    kappa = value(cal.kappa) if cal else None
    return [_say("judge_not_validated",
                 f"Judge not validated: {judge.name}'s equivalence rate is not evidence yet — "
                 f"{not_validated_why(judge)}.",
                 judge=judge.name, kappa=kappa, kappa_lower=cal.kappa.lo if kappa is not None else None,
                 min_kappa=cal.min_kappa if cal else None)]


CHECKS = (teacher_ceiling, weak_critical_slice, small_slice, poor_calibration, latency_not_cost, student_only_errors,
          format_failures, judge_not_validated)


def diagnose(summary: Findings, config, grade: Status) -> list[dict]:
    """Gives every pattern that fires on this summary (`grade`: its status), in words with its triggering numbers."""
    return [found for check in CHECKS for found in check(summary, config, grade)]
