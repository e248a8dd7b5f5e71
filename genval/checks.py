"""Every input a run will read, loaded and checked before the first byte goes into the run folder.

`pipeline.prepare` calls `check_inputs` first, and `genval validate` runs exactly it, so a
mistake in any input — the eval set, the schema, a replay file, a judge file (its prompt
rendered once with a sample record), the human labels against the judges, the gate's
baseline, a metric's options, an unset API-key variable, a cache path that cannot be a
SQLite file, a run folder that cannot be one — stops the run with one line while the run
folder stays as it was. The stages read the same files again; they trust what was checked.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from genval.config import RunConfig
from genval.errors import GenvalError, did_you_mean
from genval.evalset import EvalSet, load_evalset
from genval.redact import watch_config

SQLITE_HEADER = b"SQLite format 3\x00"
ROUGE_NAMES = ("rouge1", "rouge2", "rougeL", "rougeLsum")  # the `rouge` metric's usual columns, for a close match


@dataclass
class Checked:
    """What the checks loaded: the eval set (prepare writes it), and counts for `genval validate` to print."""

    evalset: EvalSet
    judges: int = 0
    ratings: int | None = None


def check_inputs(config: RunConfig, out_dir: Path | None = None) -> Checked:
    """Loads and checks every input of `config`; raises the first mistake as a one-line GenvalError.

    With `out_dir`, also checks that the run folder and the request cache can be what they
    must be there (a folder, a SQLite file).
    """
    watch_config(config)  # before anything can fail: an error line may quote a server's answer
    evalset = load_evalset(config.eval_set, config.prompt, config.slices, config.system_prompt)
    _check_schema(config)
    _check_metrics(config, evalset)
    _check_slice_refs(config, evalset)
    _check_gold_labels(config, evalset)
    if config.gate is not None and config.gate.preset is not None:
        _check_preset(config)  # before the rules' numbers: it names what the whole preset needs
    _check_gate_metrics(config)
    _check_gate_references(config, evalset)
    for role, model in config.models.items():
        _check_model(model, config, ("models", role), config.labels)
    scopes = _check_judges(config, evalset)
    for i, ref in enumerate(config.judge):
        _check_model(ref.model, config, ("judge", i, "model"), None)
    ratings = _check_labels(config, scopes, Path(out_dir) / config.name if out_dir is not None else None, evalset)
    _check_gate(config)
    if out_dir is not None:
        _check_run_folder(config, Path(out_dir))
        _check_cache(config, Path(out_dir))
    return Checked(evalset=evalset, judges=len(scopes), ratings=ratings)


def replay_gaps(config: RunConfig, evalset: EvalSet) -> list[str]:
    """Gives, per role played by a replay file, the note a run gives on the eval set's ids the file lacks.

    Not a mistake (a run counts each as a failed output and exits 3), so `genval validate` says it
    in a note: a "valid" line alone let a run exit 3 on what validate had read.
    """
    from genval.judging.labels import eval_set_ids
    from genval.models.replay import ReplayBackend, replay_index

    notes = []
    for model in config.models.values():
        if model.backend != "replay":
            continue
        index = replay_index(Path(model.path), tuple(config.labels) if config.labels else None)
        missing, first = 0, []
        for ids in eval_set_ids(evalset.path):
            lacking = [i for i, at in zip(ids, index.positions(ids)) if at is None]
            missing += len(lacking)
            first += lacking[:5 - len(first)]
        notes += ReplayBackend(model.path, labels=config.labels).missing_note(missing, first)
    return notes


def _check_schema(config: RunConfig) -> None:
    schema = config.load_schema()
    if schema is None:
        return
    from jsonschema import SchemaError, validators

    if not isinstance(schema, (dict, bool)):
        raise GenvalError(f"{config.schema_path}: a JSON Schema is an object, found {type(schema).__name__}")
    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        at = "/".join(str(p) for p in exc.path) or "(top level)"
        raise GenvalError(f"{config.schema_path}: not a valid JSON Schema at {at} ({exc.message})") from None


def _check_metrics(config: RunConfig, evalset: EvalSet) -> None:
    """Checks each metric's name, its options against the metric's typed options model, and that a metric
    that takes one reference is not given several."""
    from genval.metrics import get_metric

    for i, spec in enumerate(config.metric_specs):
        place = config.where("metrics", i)
        try:
            metric = get_metric(spec.name)
        except GenvalError as exc:
            raise GenvalError(f"{place}: {exc}") from None
        options = metric.parse_options(spec.options, place)
        if metric.check is not None:
            metric.check(config, options, place)
        if evalset.max_references > 1 and metric.kind == "pair" and not metric.references:
            raise GenvalError(f"{place}: metric '{spec.name}' takes one reference, and {evalset.path} gives up to "
                              f"{evalset.max_references} per example; use a metric that takes several "
                              "(bleu, chrf, rouge, bertscore, embedding, fields) or give one reference")


def _check_gold_labels(config: RunConfig, evalset: EvalSet) -> None:
    """Checks that every gold label is one of `labels:` (ignoring case and spacing, as predictions are matched).

    An example whose gold is outside the set cannot be scored as a classification: it would be left out of
    accuracy, retention and calibration, so a label missing from `labels:` (`fraud`) would silently shrink n.
    """
    from genval.metrics import classification as cls

    if not config.labels or not cls.applies(config):
        return
    outside: dict[str, list[str]] = {}
    for batch in evalset.batches():
        raw, matched = cls.gold_labels(batch, config, list(config.labels))
        for id_, gold, label in zip(batch["id"], raw, matched):
            if gold is not None and label is None:
                outside.setdefault(str(gold), []).append(str(id_))
    if outside:
        count = sum(len(ids) for ids in outside.values())
        gold, ids = next(iter(outside.items()))
        where = f"'{config.label_field}' of the reference" if config.task == "extraction" else "'label'"
        raise GenvalError(f"{evalset.path}: example '{ids[0]}': gold label '{gold}' ({where}) is not in the config's "
                          f"'labels' ({', '.join(config.labels)}); {count} example(s) have a label outside it "
                          f"({', '.join(sorted(outside)[:6])}){did_you_mean(gold, config.labels)} — add it to "
                          "'labels' or correct the examples")


def _slice_refs(config: RunConfig) -> list[tuple[str, str]]:
    """Gives (where in the config, `field=value`) of every slice the config names: critical ones, then gate rules'."""
    refs = [(config.where("critical", i), ref) for i, ref in enumerate(config.critical)]
    if config.gate is not None:
        refs += [(config.where("gate", "rules", i), rule.slice) for i, rule in enumerate(config.gate.rules) if rule.slice]
    return refs


def _check_slice_refs(config: RunConfig, evalset: EvalSet) -> None:
    """Checks that each slice the config names is a configured slice field that some example has.

    A typo (`domain=heath`) would otherwise drop the critical-slice analysis, or a gate rule, without a word.
    """
    for place, ref in _slice_refs(config):
        field, _, wanted = ref.partition("=")
        if field not in config.slices:
            raise GenvalError(f"{place}: slice '{ref}': '{field}' is not among the config's 'slices' "
                              f"({', '.join(config.slices) or 'none'}); add it there" + did_you_mean(field, config.slices))
        if wanted == "*" or field in evalset.slice_values_cut:
            continue
        values = evalset.slice_values.get(field) or {}
        if wanted not in values:
            shown = sorted(values)
            raise GenvalError(f"{place}: slice '{ref}': no example of {evalset.path.name} has {field}={wanted} "
                              f"(its values: {', '.join(shown[:12])}{' …' if len(shown) > 12 else ''})"
                              + did_you_mean(wanted, shown))


def _check_gate_metrics(config: RunConfig) -> None:
    """Checks that each gate rule names a number this config can produce (`rogueL` is a typo, not a missing number)."""
    if config.gate is None or not config.gate.rules:
        return
    from fnmatch import fnmatchcase

    from genval.analysis.gate import pair_mistake
    from genval.metrics import METRICS, get_metric
    from genval.numbers import BUILTIN

    get_metric("bleu")  # fills the registry
    produced, patterns = {k for k in BUILTIN if "*" not in k}, [k for k in BUILTIN if "*" in k]
    configured = set()
    for i, spec in enumerate(config.metric_specs):
        metric = get_metric(spec.name)
        configured.add(spec.name)
        if not metric.numbers:
            return  # a plug-in (hf_evaluate) names its columns only when it runs: any name may be one of them
        types = getattr(metric.parse_options(spec.options, config.where("metrics", i)), "types", None)
        if types:  # a metric whose columns are the types asked for (rouge): only those
            produced.update(types)
            continue
        produced.update(k for k in metric.numbers if "*" not in k)
        patterns += [k for k in metric.numbers if "*" in k]
    patterns.remove("*_retention")  # a reference metric's retention: only where that metric is produced

    def producible(name: str) -> bool:
        base = name[:-len("_retention")] if name.endswith("_retention") and name not in produced else None
        if base is not None:
            return producible(base)
        return name in produced or any(fnmatchcase(name, p) for p in patterns)

    for i, rule in enumerate(config.gate.rules):
        mistake = pair_mistake(rule.metric, rule.pair, list(config.models))
        if mistake:
            raise GenvalError(f"{config.where('gate', 'rules', i)}: gate rule on '{rule.metric}': {mistake}")
        name = rule.metric
        if producible(name):
            continue
        retention = name.endswith("_retention") and name not in BUILTIN
        base = name[:-len("_retention")] if retention else name
        elsewhere = sorted(m for m, metric in METRICS.items() if m not in configured
                           and any(fnmatchcase(base, k) for k in metric.numbers))
        if elsewhere:
            fix = f"; add metric '{elsewhere[0]}' to 'metrics'"
        else:  # the close match may be a number of a metric the config does not name yet (`rogueL` for rougeL)
            known = produced | {k for m in METRICS.values() for k in m.numbers if "*" not in k} | set(ROUGE_NAMES)
            if retention:
                known = {f"{k}_retention" for k in known} | {k for k in BUILTIN if k.endswith("_retention")}
            fix = did_you_mean(name, sorted(known)) or " (see docs/reports.md, 'Gate metric names')"
        raise GenvalError(f"{config.where('gate', 'rules', i)}: gate rule on '{name}': this config produces no number "
                          f"named '{name}'{fix}")


def _check_gate_references(config: RunConfig, evalset: EvalSet) -> None:
    """Checks that a rule on a number made against the reference has references to be made from.

    A reference column under another name (`summary`, `target`) reads as none: every such rule
    would fail only after the run, "the number is missing in this run".
    """
    if config.gate is None or evalset.max_references:
        return
    from genval.numbers import BUILTIN

    for i, rule in enumerate(config.gate.rules):
        retention = rule.metric == "task_retention" or \
            (rule.metric.endswith("_retention") and rule.metric not in BUILTIN)  # accuracy_retention reads labels
        if retention or (rule.pair or "").endswith("~reference"):
            name = f"{rule.metric} [{rule.pair}]" if rule.pair else rule.metric
            raise GenvalError(f"{config.where('gate', 'rules', i)}: gate rule on '{name}': it is measured against "
                              f"the reference, and no example of {evalset.path.name} has a 'reference' (name the "
                              "field or column of the expected outputs 'reference', or drop the rule)")


def _check_model(model, config: RunConfig, loc: tuple, labels) -> None:
    """Checks what a model needs before it is called; a replay file is read and checked whole."""
    place, key = config.where(*loc), ".".join(str(p) for p in loc)
    if model.backend == "replay":
        from genval.models.replay import ReplayBackend

        if not Path(model.path).is_file():
            raise GenvalError(f"{place}: {key}.path: no such replay file {model.path}")
        ReplayBackend(model.path, labels=labels)
        return
    if model.backend == "openai":
        if model.api_key_env and not os.environ.get(model.api_key_env):
            raise GenvalError(f"{config.where(*loc, 'api_key_env')}: {key}.api_key_env: the environment variable "
                              f"{model.api_key_env} is not set (export it, or remove 'api_key_env' for a server "
                              "without a key)")
        if not model.base_url.startswith(("http://", "https://")):
            raise GenvalError(f"{config.where(*loc, 'base_url')}: {key}.base_url: '{model.base_url}' is not an "
                              "http:// or https:// URL (e.g. http://127.0.0.1:8000/v1)")
        return
    if model.backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise GenvalError(f"{place}: {key}: backend 'vllm' needs the vllm package: pip install genval[vllm] "
                          "(or use 'backend: hf' where vLLM is not available)")
    local = model.model.startswith(("/", "./", "../", "~"))
    if local and not Path(model.model).expanduser().exists():
        raise GenvalError(f"{config.where(*loc, 'model')}: {key}.model: no such model folder {model.model}")


def _check_judges(config: RunConfig, evalset: EvalSet) -> list:
    """Loads each judge file, resolves its pairs, and renders its prompt once with the first example."""
    from genval.judging.prompts import render_prompt
    from genval.judging.stage import judge_scopes

    scopes = judge_scopes(config)
    first = evalset.first
    for i, (ref, scope) in enumerate(zip(config.judge, scopes)):
        definition = scope.definition
        if ref.aspect and definition.aspects and ref.aspect not in definition.aspects:
            raise GenvalError(f"{config.where('judge', i, 'aspect')}: judge '{scope.name}': aspect '{ref.aspect}' "
                              f"is not among {ref.config.name}'s aspects ({', '.join(definition.aspects)})")
        fields = {"task": config.task, "input": first["input"] or first["prompt"], "reference": first["reference"],
                  "candidate": "candidate", "other": "other", "output_a": "a", "output_b": "b"}
        try:
            render_prompt(definition, fields, ref.aspect, key=os.urandom(32))  # a throwaway key: nothing is written
        except (KeyError, ValueError) as exc:
            raise GenvalError(f"{ref.config}: the prompt cannot be rendered ({type(exc).__name__}: {exc})") from None
    return scopes


def _check_labels(config: RunConfig, scopes: list, root: Path | None, evalset: EvalSet) -> int | None:
    """Checks the human labels a run will copy into its `labels` table: the config's file and RUN/labels/*.jsonl,
    each rating against the judges' scales and its id against the eval set."""
    from genval.judging.labels import check_ids, eval_set_ids, label_sources, read_labels, read_sources

    sources = label_sources(config.human_labels, root) if root is not None else \
        ([config.human_labels] if config.human_labels else [])
    if not sources:
        return None
    table = read_sources(sources, judges=scopes)
    check_ids([(path, read_labels(path)) for path in sources], eval_set_ids(evalset.path), evalset.path.name)
    return len(table)


def _check_gate(config: RunConfig) -> None:
    if config.gate is None or config.gate.baseline is None:
        return
    from genval.analysis.gate import read_baseline

    read_baseline(config.gate.baseline)


def _check_preset(config: RunConfig) -> None:
    """Checks that the run will have the numbers its gate preset's rules read (genval.presets.NEEDS)."""
    from genval.presets import NEEDS

    preset = config.gate.preset
    has = {"labels": config.task == "classification" and bool(config.labels),
           "token_fidelity": any(spec.name == "token_fidelity" for spec in config.metric_specs)}
    for need, said in NEEDS[preset].items():
        if not has[need]:
            raise GenvalError(f"{config.where('gate', 'preset')}: gate preset '{preset}' reads numbers this run "
                              f"will not have: it needs {said}")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable_place(path: Path, what: str, place: str) -> None:
    """Checks that `path` (to be created) can be: its nearest existing ancestor is a folder we may write in."""
    ancestor = _nearest_existing(path.parent)
    if not ancestor.is_dir():
        raise GenvalError(f"{place}: {ancestor} is a file, so the {what} {path} cannot be made; move the file "
                          "or choose another path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise GenvalError(f"{place}: no permission to write in {ancestor} (for the {what} {path})")


def _check_run_folder(config: RunConfig, out_dir: Path) -> None:
    from genval.runfolder import Run

    root = out_dir / config.name
    if root.exists():
        Run(root)  # a file in its place, or a damaged manifest, is a one-line error
        if not os.access(root, os.W_OK | os.X_OK):
            raise GenvalError(f"{root}: no permission to write in the run folder")
    else:
        _writable_place(root, "run folder", "--out")


def _check_cache(config: RunConfig, out_dir: Path) -> None:
    """Checks that the request cache is, or can become, a SQLite file (not a folder, not another file)."""
    path = config.cache or out_dir / "cache.sqlite"
    place = config.where("cache") if config.cache else "--out (the request cache's folder)"
    if path.is_dir():
        raise GenvalError(f"{place}: cache: {path} is a folder; give the path of a file (e.g. {path / 'cache.sqlite'})")
    if path.exists():
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise GenvalError(f"{place}: cache: cannot read {path} ({exc.strerror})") from None
        if head and head != SQLITE_HEADER:
            raise GenvalError(f"{place}: cache: {path} is not a SQLite file (genval's request cache); "
                              "move it or point 'cache' at another path")
        if not os.access(path, os.W_OK):
            raise GenvalError(f"{place}: cache: no permission to write {path}")
    else:
        _writable_place(path, "request cache", place)
