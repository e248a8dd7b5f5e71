"""This area's `genval` subcommands: sample, calibrate, labels, import summeval, metaeval."""

from __future__ import annotations

from pathlib import Path

from genval.errors import GenvalError


def _open(target: str, out: str, stages: list[str], quiet: bool):
    """Gives (run, config) for a run folder or a config; for a config, runs `stages` first (skipped when current)."""
    from genval.config import load_config, parse_config
    from genval.pipeline import prepare, run_stages
    from genval.progress import Progress
    from genval.runfolder import open_run

    path = Path(target)
    if path.is_dir():
        run = open_run(path)
        if "config" not in run.manifest:
            raise GenvalError(f"{path}/manifest.json: no config recorded; run `genval run CONFIG` first")
        config = parse_config(run.manifest["config"], run.root, source=f"{path}/manifest.json")
        return run, config
    config = load_config(path)
    run = prepare(config, Path(out))
    run_stages(run, config, Progress(quiet=quiet), only=stages)
    return run, config


def _cmd_sample(args) -> int:
    from genval.judging.asking import resolve_pairs
    from genval.judging.labels import label_sources, read_sources, write_labels
    from genval.judging.sampling import draw_sample
    from genval.judging.stage import judge_scopes

    run, config = _open(args.target, args.out, ["generate"], args.quiet)
    specs = resolve_pairs([args.pair], config.roles, "--pair")
    if len(specs) != 1:
        raise GenvalError(f"--pair: '{args.pair}' names {len(specs)} pairs; give one, e.g. student~teacher")
    scopes = judge_scopes(config) if config.judge else []
    judged = [s for s in scopes if specs[0].name in s.pairs]
    exclude = set()
    if args.exclude_labelled:
        sources = label_sources(config.human_labels, run.root)
        rated = read_sources(sources, scopes or None)
        exclude = set(rated.loc[rated["pair"] == specs[0].name, "id"])
    sheet = draw_sample(run.read_table("examples"), run.read_table("outputs"), specs[0], args.n, config.slices,
                        config.critical, seed=config.analysis.seed, min_critical=args.min_critical, exclude=exclude,
                        scale=judged[0].definition.scale if judged else None)
    dest = Path(args.to or run.root / f"sample_{specs[0].name.replace('~', '-')}.csv")
    write_labels(sheet, dest)
    counts = ", ".join(f"{ref}: {int((sheet.get('slice_' + ref.split('=')[0]) == ref.split('=')[1]).sum())}"
                       for ref in config.critical if "slice_" + ref.split("=")[0] in sheet)
    print(f"{dest}: {len(sheet)} items of {specs[0].name} to rate" + (f" ({counts})" if counts else "")
          + (f"; {len(exclude)} already rated left out" if args.exclude_labelled else ""))
    return 0


def _cmd_calibrate(args) -> int:
    """Adds a labels file to the run's `labels` folder (checked first) and re-runs calibrate, aggregate and report."""
    from genval.config import load_config, parse_config
    from genval.judging.labels import (
        FOLDER,
        check_ids,
        copy_name,
        eval_set_ids,
        label_sources,
        merged_copy,
        read_labels,
        read_sources,
        update_table,
        write_labels,
    )
    from genval.judging.stage import judge_scopes
    from genval.pipeline import STAGE_NAMES, outcome, prepare, report_path, run_stages
    from genval.progress import Progress
    from genval.runfolder import open_run

    target = Path(args.target)
    if target.is_dir():
        run = open_run(target)
        if "config" not in run.manifest:
            raise GenvalError(f"{target}/manifest.json: no config recorded; run `genval run CONFIG` first")
        config = parse_config(run.manifest["config"], run.root, source=f"{target}/manifest.json")
        root, stages = run.root, ["calibrate", "aggregate", "report"]
    else:
        config = load_config(target)
        root, stages = Path(args.out) / config.name, STAGE_NAMES
    if not config.judge:
        raise GenvalError(f"{args.target}: no judge in the config (add a 'judge:' entry)")
    scopes = judge_scopes(config)
    copy = None
    if args.labels:  # every check before anything is written
        incoming = read_labels(args.labels, judges=scopes)
        ids = ((frame["id"] for frame in run.iter_table("examples", columns=["id"])) if target.is_dir()
               else eval_set_ids(config.eval_set))
        check_ids([(args.labels, incoming)], ids, Path(config.eval_set).name)
        copy = root / FOLDER / f"{copy_name(incoming, Path(args.labels))}.jsonl"
        sources = [s for s in label_sources(config.human_labels, root) if s != copy]
        read_sources(sources + [Path(args.labels)], judges=scopes)
        existed = copy.exists()
        merged, changed, kept = merged_copy(copy, incoming, judges=scopes)
    elif not label_sources(config.human_labels, root):
        raise GenvalError(f"{args.target}: no human labels (add 'human_labels:' to the config or pass --labels)")
    if not target.is_dir():
        run = prepare(config, Path(args.out))
    if copy is not None:
        write_labels(merged, copy)
        if existed:  # the annotator's file was there (an earlier sheet, the rating page): say what became of it
            print(f"{copy}: {len(incoming)} ratings from {Path(args.labels).name} ({changed} replace a different "
                  f"earlier rating); {kept} earlier ratings of other items kept")
    if copy is not None or target.is_dir():  # a run folder's labels/ may have new ratings (genval view --rate)
        update_table(run, config.human_labels, scopes)
        run.save_manifest()
    run_stages(run, config, Progress(quiet=args.quiet), only=stages)
    result = run.read_json("calibration.json")
    print(f"{'judge':<28} {'n':>4} {'agreement':>9} {'kappa':>7} {'kappa 95% CI':>17} {'alpha':>7} validated")
    for name in result["ranking"]:
        b = result["judges"][name]
        ci = b["kappa"]["ci"]
        print(f"{name:<28} {b['n']:>4} {_f(b['agreement']['value']):>9} {_f(b['kappa']['value']):>7} "
              f"{'[' + _f(ci[0]) + ', ' + _f(ci[1]) + ']':>17} {_f(b['alpha']['value']):>7} "
              f"{'yes' if b['validated'] else 'NO'} (min {b['min_kappa']})")
    print(run.path("calibration.json"))
    print(report_path(run))
    return 3 if outcome(run, stages)["failed_requests"] else 0  # requests to retry; the decision is the report's


def _cmd_labels(args) -> int:
    """Converts ratings, each checked against --judge's scale, the --run's judges, or else the scale its row states."""
    from genval.judging.labels import read_labels, write_labels

    judges, against = None, "the scale each row states"
    if args.judge and args.run:
        raise GenvalError("--judge and --run: give one (a judge file, or a run folder whose judges to check against)")
    if args.judge:  # every verdict checked against the judge's scale, a wrong one named by its line
        from genval.judging.definition import load_definition
        from genval.judging.stage import JudgeScope

        definition = load_definition(args.judge)
        pairs = {str(r.get("pair")) for r in _raw_records(args.source)}
        judges = [JudgeScope(definition.name, frozenset(pairs), definition, definition.aspect)]
        against = f"judge {definition.name}'s scale"
    elif args.run:
        from genval.judging.stage import judge_scopes

        if not Path(args.run).is_dir():
            raise GenvalError(f"--run {args.run}: not a run folder (give the folder `genval run` wrote)")
        _, config = _open(args.run, "runs", [], True)
        if not config.judge:
            raise GenvalError(f"--run {args.run}: the run has no judge, so no scale to check against")
        judges = judge_scopes(config)
        against = "the scales of the run's judges (" + ", ".join(j.name for j in judges) + ")"
    elif not any(r.get("scale") for r in _raw_records(args.source)):
        against = "no scale: the file states none (give --judge or --run to check one)"
    frame = read_labels(args.source, judges=judges, stated=judges is None)
    write_labels(frame, args.dest)
    print(f"{args.dest}: {len(frame)} ratings, checked against {against}")
    return 0


def _raw_records(path):
    from genval.evalset import read_csv, read_jsonl

    return [r.data for r in (read_csv(Path(path)) if str(path).lower().endswith(".csv") else read_jsonl(Path(path)))]


def _cmd_import(args) -> int:
    from genval.judging.summeval import import_summeval

    result = import_summeval(args.file, args.out)
    low, high = result["references"]
    refs = f"{low}" if low == high else f"{low}–{high}"
    print(f"{args.out}: {result['documents']} documents × {result['systems']} systems, {result['ratings']} ratings "
          f"of {', '.join(result['aspects'])}, {refs} references per document ({result['layout']} layout)"
          + (f"; {result['without_source']} documents lack the source text "
             "(use the .paired.jsonl file for source-based judges)" if result["without_source"] else ""))
    for note in result["notes"]:
        print(f"note: {note}")
    print(result["config"])
    return 0


def _cmd_metaeval(args) -> int:
    from genval.judging.labels import read_labels
    from genval.judging.summeval import compare_published, geval_table, metaeval, read_published

    run, config = _open(args.run, "runs", [], True)
    labels_path = args.labels or config.human_labels
    if labels_path is None:
        raise GenvalError(f"{args.run}: no human labels (the config has no 'human_labels'; pass --labels)")
    published = read_published(args.published) if args.published else None  # checked before anything is written
    scores = run.read_table("scores") if run.has("scores") else None
    judgments = run.read_table("judgments") if run.has("judgments") else None
    result = metaeval(scores, judgments, read_labels(labels_path))
    result["table"] = table = geval_table(result)
    if published is not None:
        result["published"] = compare_published(table, published)
    run.write_json("metaeval.json", result)
    print(_geval_lines(result, table, published))
    print(run.path("metaeval.json"))
    return 0


def _geval_lines(result: dict, table: dict, published: dict | None) -> str:
    """Gives G-Eval's Table 1 layout: a row per metric and judge, ρ and τ per aspect and on average; published
    figures on the row below, `*` beside each one more than the tolerance away."""
    aspects = [*result["aspects"], "average"]
    head = f"{'metric / judge':<30}" + "".join(f" {a[:15]:>15}" for a in aspects)
    lines = [f"summary level ({result['summaries']} summaries; ρ Spearman, τ Kendall, averaged over documents)",
             head, f"{'':<30}" + "".join(f"  {'ρ':>7} {'τ':>6}" for _ in aspects)]
    flagged = {(f["metric"], f["aspect"], f["stat"]) for f in (result.get("published") or {}).get("figures", [])
               if f["flagged"]}
    for column, row in sorted(table.items(), key=lambda kv: -(kv[1]["average"]["rho"] or -9)):
        lines.append(f"{column:<30}" + "".join(f"  {_f(row.get(a, {}).get('rho')):>7} {_f(row.get(a, {}).get('tau')):>6}"
                                               for a in aspects))
        if published and column in published:
            pub = published[column]
            marks = {(a, st): "*" if (column, a, st) in flagged else "" for a in aspects for st in ("rho", "tau")}
            lines.append(f"{'  published':<30}" + "".join(
                f"  {_f(pub.get(a, {}).get('rho')) + marks[a, 'rho']:>7} {_f(pub.get(a, {}).get('tau')) + marks[a, 'tau']:>6}"
                for a in aspects))
    if published is not None:
        found = result["published"]
        lines.append(f"{found['flagged']} of {len(found['figures'])} published figures differ by more than "
                     f"{found['tolerance']} (marked *)" + (f"; not in this run: {', '.join(found['missing'])}"
                                                          if found["missing"] else ""))
    return "\n".join(lines)


def _f(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def add_commands(subparsers) -> None:
    """Adds `sample`, `calibrate`, `labels`, `import` and `metaeval`."""
    from genval.cli.args import count, count0

    p = subparsers.add_parser("sample", help="draw a slice-stratified sample of pairs for people to rate (CSV/JSONL)")
    p.add_argument("target", metavar="RUN_OR_CONFIG", help="a run folder, or a config (its generate stage runs first)")
    p.add_argument("--n", type=count, default=200, help="items to draw (default 200)")
    p.add_argument("--pair", default="student~teacher", help="the pair to rate (default student~teacher)")
    p.add_argument("--min-critical", type=count0, default=30,
                   help="items each critical slice gets at least (default 30)")
    p.add_argument("--to", help="the sheet to write, .csv or .jsonl (default: in the run folder)")
    p.add_argument("--exclude-labelled", action="store_true",
                   help="leave out items of the pair anyone already rated (the run's human labels and labels/)")
    p.add_argument("--out", default="runs", help="folder that holds run folders (default: runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_sample)

    p = subparsers.add_parser("calibrate", help="measure each judge's agreement with the human labels; re-runs "
                                                "calibrate, aggregate and report")
    p.add_argument("target", metavar="RUN_OR_CONFIG", help="a run folder, or a config (its stages run first)")
    p.add_argument("--labels", help="more human labels (JSONL or CSV), copied into the run's labels/ folder")
    p.add_argument("--out", default="runs", help="folder that holds run folders (default: runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_calibrate)

    p = subparsers.add_parser("labels", help="convert human labels between JSONL and CSV (checked on the way)")
    p.add_argument("source", help="ratings, .jsonl or .csv")
    p.add_argument("dest", help="where to write them, .jsonl or .csv")
    p.add_argument("--judge", help="a judge file (judges/*.yaml): refuse a verdict or score off its scale, by line "
                                   "(default: off the scale a sample sheet's row states in its 'scale' column)")
    p.add_argument("--run", help="a run folder: refuse a verdict or score off the scale of the judges of its pair")
    p.set_defaults(func=_cmd_labels)

    p = subparsers.add_parser("import", help="import a public human-rated set (SummEval, or any in the "
                                             "rated-summary layout: docs/judging.md)")
    p.add_argument("dataset", choices=["summeval", "ratings"], help="summeval, or ratings (the rated-summary layout)")
    p.add_argument("file", help="model_annotations.aligned[.paired].jsonl, G-Eval's summeval.json, or a JSON/JSONL "
                                "file of doc_id, system_id, source, references, system_output, scores")
    p.add_argument("--out", required=True, help="folder to write the eval set, replays, labels and config to")
    p.set_defaults(func=_cmd_import)

    p = subparsers.add_parser("metaeval", help="each metric's and judge's summary-level correlation with human scores")
    p.add_argument("run", help="a run folder")
    p.add_argument("--labels", help="human labels instead of the config's human_labels")
    p.add_argument("--published", help="a published table (JSON: metric → aspect → [rho, tau]) to print beside the "
                                       "run's figures, each more than 0.01 away flagged")
    p.set_defaults(func=_cmd_metaeval)
