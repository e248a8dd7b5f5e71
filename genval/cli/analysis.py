"""This area's `genval` subcommands: compare, gate, leakage, report; `genval.cli` calls `add_commands`."""

from __future__ import annotations

import json
from pathlib import Path

from genval.errors import GenvalError

EXIT_INCOMPLETE = 3  # as `genval run`: the run's decision is INCOMPLETE, so no rule's outcome can be trusted


def _write_json(path: str | None, data) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _cmd_compare(args) -> int:
    from genval.analysis.compare import compare_runs, markdown
    from genval.analysis.numbers import Boot

    result = compare_runs(args.run_a, args.run_b, Boot(args.bootstrap, 0.95, args.seed))
    print(markdown(result), end="")
    _write_json(args.json, result)
    return 1 if args.fail_on_regression and result["regressed"] else 0


def _run_config(run):
    from genval.config import parse_config

    data = run.manifest.get("config")
    if not data:
        raise GenvalError(f"{run.root}/manifest.json: no config recorded; run `genval run` on this folder first")
    return parse_config(data, run.root, source=f"{run.root}/manifest.json")


def _ends_tested(rule: dict) -> str:
    """Gives "; lower end 0.81 >= 0.6" for each interval end a rule tested: the point value alone reads as the one held to the bound."""
    out = ""
    for test in rule.get("tests") or []:
        ci = (test.get("number") or {}).get("ci") or [None, None]
        end = ci[0] if test.get("kind") == "lower" else ci[1] if test.get("kind") == "upper" else None
        if end is not None:
            out += f"; {test['kind']} end {end:.4g} {'>=' if test['kind'] == 'lower' else '<='} {test['bound']:g}"
    return out


def _cmd_gate(args) -> int:
    from genval.analysis.gate import evaluate, load_gate, read_baseline
    from genval.analysis.stage import paired_numbers
    from genval.pipeline import current_summary
    from genval.progress import Progress
    from genval.runfolder import open_run

    run = open_run(args.run)
    if not run.has("summary.json"):
        raise GenvalError(f"{args.run}: no summary.json; run the aggregate stage first (`genval run`)")
    summary = current_summary(run, Progress())
    if args.config:
        gate = load_gate(args.config)
    else:
        gate = _run_config(run).gate
        if gate is None:
            raise GenvalError(f"{args.run}: its config has no 'gate:' key; give the rules with --config gate.yaml")
    if args.baseline:
        gate.baseline = Path(args.baseline)
    # The run's own tables: non-inferiority rules test paired intervals that summary.json does not hold.
    paired = paired_numbers(run, _run_config(run), gate.rules) \
        if run.has("examples") and any(rule.non_inferiority for rule in gate.rules) else None
    source = str(args.config or f"{args.run}/manifest.json")
    check_rule_slices(gate.rules, summary.slices, source)
    if run.manifest.get("config"):  # its roles; a folder written without a config (a test's) has none to check
        check_rule_pairs(gate.rules, list(_run_config(run).models), source)
    result = evaluate(gate, summary, read_baseline(gate.baseline), paired)
    incomplete = incomplete_reason(summary)
    result["incomplete"], result["allow_incomplete"] = incomplete, bool(args.allow_incomplete)
    outcome = "PASS" if result["passed"] else "FAIL"
    if incomplete and not args.allow_incomplete:
        outcome = "INCOMPLETE"
    print(f"gate: {outcome} ({len(result['rules'])} rules, {len(result['failing'])} failing)")
    for rule in result["rules"]:
        shown = "" if rule["value"] is None else f" (value {rule['value']:.4g}{_ends_tested(rule)})"
        print(f"  {'ok  ' if rule['passed'] else 'FAIL'} {rule['rule']}"
              + (f" — {rule['reason']}" if rule["reason"] else shown))
    if incomplete:
        print(f"  the run is INCOMPLETE: {incomplete}; "
              + ("gated anyway (--allow-incomplete)" if args.allow_incomplete else
                 f"its numbers count failures as wrong, so no rule's outcome can be trusted (exit "
                 f"{EXIT_INCOMPLETE}; a plain `genval run` retries the failed requests, --allow-incomplete "
                 "gates it anyway)"))
    _write_json(args.json, result)
    if incomplete and not args.allow_incomplete:
        return EXIT_INCOMPLETE
    return 0 if result["passed"] else 1


def check_rule_slices(rules, slices: dict, source: str) -> None:
    """Raises for a rule whose slice the run does not have (a typo such as `domain=heath`), naming the close match."""
    from genval.errors import did_you_mean

    for rule in rules:
        if not rule.slice:
            continue
        field, _, wanted = rule.slice.partition("=")
        if field not in slices:
            raise GenvalError(f"{source}: gate rule on slice '{rule.slice}': the run is not sliced by '{field}' "
                              f"(its slice fields: {', '.join(sorted(slices)) or 'none'})"
                              + did_you_mean(field, slices))
        if wanted != "*" and wanted not in slices[field]:
            values = sorted(slices[field])
            raise GenvalError(f"{source}: gate rule on slice '{rule.slice}': no example has {field}={wanted} "
                              f"(its values: {', '.join(values[:12])}{' …' if len(values) > 12 else ''})"
                              + did_you_mean(wanted, values))


def check_rule_pairs(rules, roles: list[str], source: str) -> None:
    """Raises for a rule whose `[pair]` names no role of the run (`[studnet]`), naming the close match."""
    from genval.analysis.gate import pair_mistake

    for rule in rules:
        mistake = pair_mistake(rule.metric, rule.pair, roles)
        if mistake:
            raise GenvalError(f"{source}: gate rule on '{rule.metric}': {mistake}")


def incomplete_reason(summary) -> str | None:
    """Gives why a run's numbers are not complete enough to gate (its decision is INCOMPLETE), or None."""
    if summary.decision.verdict == "INCOMPLETE":
        return "; ".join(summary.decision.reasons)
    return None


def _cmd_leakage(args) -> int:
    from genval.analysis.leakage import find_leaks, read_texts
    from genval.progress import Progress

    eval_texts = read_texts(Path(args.eval_set), args.field)
    train_texts = read_texts(Path(args.train_file), args.train_field or args.field)
    result = find_leaks(eval_texts, train_texts, threshold=args.threshold, ngram=args.ngram,
                        num_perm=args.num_perm, bands=args.bands, progress=Progress(quiet=args.quiet))
    result.update({"eval_set": args.eval_set, "train_file": args.train_file})
    print(f"leakage: {len(result['leaked_eval_ids'])} of {result['n_eval']} eval examples "
          f"({result['leaked_share'] * 100:.1f} %) appear in {result['n_train']} training examples — "
          f"{len(result['exact'])} exact, {len(result['near'])} near (Jaccard ≥ {args.threshold} on word "
          f"{args.ngram}-grams)")
    for hit in result["exact"][:args.show]:
        print(f"  exact  {hit['eval_id']}  ←  {hit['train_id']}")
    for hit in result["near"][:args.show]:
        print(f"  near   {hit['eval_id']}  ←  {hit['train_id']}  (Jaccard {hit['jaccard']:.2f})")
    _write_json(args.json, result)
    return 1 if result["leaked_eval_ids"] else 0


def _cmd_report(args) -> int:
    from genval.pipeline import current_summary
    from genval.progress import Progress
    from genval.report.stage import report
    from genval.runfolder import open_run

    run = open_run(args.run)
    if not run.has("summary.json"):
        raise GenvalError(f"{args.run}: no summary.json; run the aggregate stage first (`genval run`)")
    current_summary(run, Progress())   # an older genval's summary.json is re-aggregated first, never half-read
    record = report(run, _run_config(run), Progress(quiet=True))
    print(record["html"])
    return 0


def add_commands(subparsers) -> None:
    """Adds compare, gate, leakage and report."""
    p = subparsers.add_parser("compare", help="run B against run A on the same eval set: paired changes, regressions")
    p.add_argument("run_a", help="the earlier run folder (the baseline)")
    p.add_argument("run_b", help="the later run folder")
    p.add_argument("--json", metavar="PATH", help="also write the comparison as JSON here")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--fail-on-regression", action="store_true", help="exit 1 when any number regressed")
    p.set_defaults(func=_cmd_compare)

    p = subparsers.add_parser("gate", help="check a run against release rules; exit 0 pass, 1 fail, "
                                           "3 the run is INCOMPLETE")
    p.add_argument("run", help="the run folder")
    p.add_argument("--config", metavar="GATE_YAML", help="gate rules (default: the run config's 'gate:' key)")
    p.add_argument("--baseline", metavar="RUN", help="baseline run folder for max_regression rules")
    p.add_argument("--json", metavar="PATH", help="also write the outcome as JSON here")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="gate a run whose decision is INCOMPLETE (or that has none) on its rules alone; "
                        "without it such a run exits 3")
    p.set_defaults(func=_cmd_gate)

    p = subparsers.add_parser("leakage", help="find training examples that duplicate eval examples; exit 1 if any")
    p.add_argument("eval_set", help="the eval set (JSONL, CSV, Parquet, datasets folder)")
    p.add_argument("train_file", help="the training data (same formats, or .txt with one example per line)")
    p.add_argument("--field", help="text field of the eval records (default: input, text, prompt, …)")
    p.add_argument("--train-field", help="text field of the training records (default: as --field)")
    p.add_argument("--threshold", type=float, default=0.8, help="Jaccard similarity for a near duplicate (0.8)")
    p.add_argument("--ngram", type=int, default=5, help="word n-gram size of the shingles (5)")
    p.add_argument("--num-perm", type=int, default=128, help="MinHash permutations (128)")
    p.add_argument("--bands", type=int, default=32, help="LSH bands (32; num-perm must be a multiple)")
    p.add_argument("--show", type=int, default=20, help="how many matches to print of each kind (20)")
    p.add_argument("--json", metavar="PATH", help="also write every match as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_leakage)

    p = subparsers.add_parser("report", help="re-render report.md and report.html of a run from its summary.json")
    p.add_argument("run", help="the run folder")
    p.set_defaults(func=_cmd_report)
