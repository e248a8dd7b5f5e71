"""The run config: YAML validated once, at the edge, into typed objects the rest of genval trusts.

Unknown keys are errors (every model forbids extras), a key given twice is an error (YAML
would keep the last silently), types are strict (`max_tokens: true` is not a count, `"false"`
is not a boolean), and a relative path resolves against the folder of the config file that
names it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from genval.errors import GenvalError, where
from genval.files import check_text, read_json, read_text

TASKS = ("summarization", "extraction", "classification", "generation")
ROLES_FIXED = ("teacher", "student")


class Strict(BaseModel):
    """A config section: no unknown keys, no coercion (a boolean is no count, a string no boolean)."""

    model_config = ConfigDict(extra="forbid", frozen=False, strict=True)


def path_field(default=..., **kwargs):
    """A path key: YAML and the manifest give it as a string, so it alone is coerced."""
    return Field(default, strict=False, **kwargs)


class Price(Strict):
    """What a call costs: per GPU-hour of wall time, or per million input and output tokens."""

    per_gpu_hour: float | None = Field(None, ge=0)
    gpus: int = Field(1, ge=1)
    per_million_input_tokens: float | None = Field(None, ge=0)
    per_million_output_tokens: float | None = Field(None, ge=0)
    currency: str = "USD"  # what the prices are in; the report prints it next to every cost


class Generation(Strict):
    """Generation parameters: one set, shared by teacher and student so the comparison is clean."""

    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int = 0
    stop: list[str] = Field(default_factory=list)
    # Written between the prompt and a label when label probabilities are scored (hf, vllm), as
    # lm-evaluation-harness's target_delimiter; none after trailing whitespace or in a chat turn.
    label_delimiter: str = " "


class _Model(Strict):
    price: Price | None = None


class ReplayModel(_Model):
    """Outputs a user already has: one JSONL record per example (`id`, `text`, …)."""

    backend: Literal["replay"]
    path: Path = path_field()


class HFModel(_Model):
    """A transformers model, by Hugging Face id or local path."""

    backend: Literal["hf"]
    model: str
    revision: str | None = None
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device: str = "auto"
    batch_size: int | Literal["auto"] = "auto"
    chat_template: bool | Literal["auto"] = "auto"
    trust_remote_code: bool = False
    engine: Literal["batched", "continuous"] = "batched"  # continuous: transformers' generate_batch (paged cache)


class VLLMModel(_Model):
    """vLLM's offline engine (`vllm.LLM`), for GPU batch generation."""

    backend: Literal["vllm"]
    model: str
    revision: str | None = None
    dtype: str = "auto"
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = None
    enforce_eager: bool = False  # skip CUDA graph capture: slower decoding, faster start
    chat_template: bool | Literal["auto"] = "auto"
    trust_remote_code: bool = False


class OpenAIModel(_Model):
    """Any OpenAI-compatible chat-completions server (vLLM's own, a hosted API)."""

    backend: Literal["openai"]
    model: str
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str | None = None
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_s: float = Field(0.5, ge=0)
    max_retry_wait_s: float = Field(120.0, ge=0)  # the longest Retry-After honoured
    logprobs: bool = False
    top_logprobs: int = Field(20, ge=0, le=20)
    json_schema: bool = True  # send the extraction schema as response_format (off for servers without it)


ModelConfig = Annotated[
    Union[ReplayModel, HFModel, VLLMModel, OpenAIModel], Field(discriminator="backend")
]


class MetricSpec(Strict):
    """One metric from the registry, with the options that define it (checked by the metric)."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class JudgeRef(Strict):
    """A judge definition (judges/*.yaml) and the model that plays it."""

    config: Path = path_field()
    model: ModelConfig
    name: str | None = None
    pairs: list[str] = Field(default_factory=lambda: ["student~teacher"])
    samples: int = Field(1, ge=1)  # repeated draws per item: majority verdict, mean score, spread
    swap: bool = True  # pairwise mode: ask in both orders; a verdict that flips is a tie
    min_kappa: float = Field(0.6, ge=-1, le=1)  # validated when kappa's CI lower end reaches this
    aspect: str | None = None  # the human-rated aspect to judge (overrides the judge file's)


class NonInferiority(Strict):
    """Student − teacher on a number, tested against −margin (the margin is in the number's own units)."""

    margin: float = Field(ge=0)


class GateRule(Strict):
    """One release rule: bounds on a headline number, overall or on one slice (or every slice of a field).

    `min`/`max` test the point value; `lower`/`upper` the ends of its interval (the lower end
    must reach `lower`); `non_inferiority` the lower end of the paired interval of
    student − teacher against −margin; `max_regression` the change from a baseline run.
    """

    metric: str
    pair: str | None = None
    slice: str | None = None  # "field=value", or "field=*" for every slice of the field
    min: float | None = None
    max: float | None = None
    lower: float | None = None
    upper: float | None = None
    max_regression: float | None = Field(None, ge=0)
    non_inferiority: NonInferiority | None = None

    @model_validator(mode="after")
    def _has_bound(self):
        bounds = (self.min, self.max, self.lower, self.upper, self.max_regression, self.non_inferiority)
        if all(b is None for b in bounds):
            raise ValueError("a gate rule needs at least one of min, max, lower, upper, max_regression, "
                             "non_inferiority")
        if self.slice is not None and "=" not in self.slice:
            raise ValueError(f"slice '{self.slice}' should read 'field=value', e.g. 'critical=true'")
        return self


_ROLE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_RULE_TEXT = re.compile(r"^\s*(?P<metric>[\w.:@-]+)(?:\s*\[(?P<pair>[^\]]+)\])?(?:\s+(?P<end>lower|upper))?\s*"
                        r"(?P<op>>=|<=)\s*(?P<bound>-?[\d.]+(?:e-?\d+)?)(?:\s+on\s+(?P<slice>\S+=\S+))?\s*$")
_RULE_FORM = "metric [pair] [lower|upper] >= number on field=value"


def _rule_from_text(item: str) -> dict:
    """Reads `metric [pair] [lower|upper] >=|<= number [on field=value]` into a rule's fields."""
    match = _RULE_TEXT.match(item)
    if not match:
        raise ValueError(f"rule '{item}' should read '{_RULE_FORM}'")
    end, op = match["end"], match["op"]
    if (end, op) in (("lower", "<="), ("upper", ">=")):
        raise ValueError(f"rule '{item}': the interval's lower end takes '>=' and its upper end '<='")
    bound = end or ("min" if op == ">=" else "max")
    return {"metric": match["metric"], "pair": match["pair"], "slice": match["slice"], bound: float(match["bound"])}


class GateConfig(Strict):
    """The release gate: rules on summary numbers, and the baseline run that max_regression compares with.

    `preset` (genval.presets) puts a named set of rules first; a rule of `rules` on the same number,
    pair and slice as a preset's replaces it.
    """

    baseline: Path | None = path_field(None)
    preset: Literal["parity"] | None = None
    rules: list[GateRule] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _preset_rules(cls, data):
        from genval.presets import GATE_PRESETS

        if not isinstance(data, dict) or data.get("preset") not in GATE_PRESETS or not isinstance(
                data.get("rules", []), (list, type(None))):
            return data  # an unknown preset or odd rules: the field checks say what is wrong
        rules: dict[tuple, object] = {}
        for item in [*GATE_PRESETS[data["preset"]], *(data.get("rules") or [])]:
            found = _rule_from_text(item) if isinstance(item, str) else item
            key = (found.get("metric"), found.get("pair"), found.get("slice")) if isinstance(found, dict) else id(item)
            rules.pop(key, None)
            rules[key] = found
        return {**data, "rules": list(rules.values())}

    @field_validator("rules", mode="before")
    @classmethod
    def _rule_text(cls, value):
        """Reads the short form `metric [pair] [lower] >= 0.95 on field=value` as well as a mapping."""
        return [_rule_from_text(item) if isinstance(item, str) else item for item in value or []]


class Analysis(Strict):
    """How headline numbers are aggregated: intervals, slice sizes, rare classes."""

    bootstrap: int = Field(1000, ge=100)
    confidence: float = Field(0.95, gt=0, lt=1)
    seed: int = 0
    min_slice_n: int = Field(30, ge=1)
    rare_class_share: float = Field(0.05, gt=0, lt=1)
    ece_bins: int = Field(10, ge=2)
    max_failure_rate: float = Field(0.01, ge=0, le=1)  # above it, for any role or judge: decision INCOMPLETE
    # Eval sets with more examples get the streaming Poisson bootstrap (genval.analysis.resampling);
    # up to it, every interval resamples example indices exactly as genval.stats does.
    bootstrap_exact_max: int = Field(10000, ge=0)


class ExecutorSettings(Strict):
    """What drives the stages' maps over batches: this machine (`local`) or a Ray cluster (`ray`).

    The executor never changes a number, so it is in no stage's input hash: a run made on Ray
    and one made locally skip each other's finished stages.
    """

    kind: Literal["local", "ray"] = "local"
    address: str | None = None  # ray: None starts Ray on this machine; "auto" (or ray://host:port) joins a cluster
    num_cpus: int | None = Field(None, ge=1)  # ray, started here: the CPUs it may use (default: all)
    workers: int | None = Field(None, ge=1)  # processes (local) or actors (ray) per map; default: the CPUs, 1 per model
    gpus_per_worker: float = Field(0.0, ge=0)  # ray: GPUs each model-holding actor takes
    batch_rows: int = Field(8192, ge=1)  # rows per batch: what bounds a stage's memory


DEFAULT_METRICS = {
    "summarization": ["bleu", "chrf", "rouge", "bertscore", "embedding"],
    "generation": ["bleu", "chrf", "rouge", "embedding"],
    "extraction": ["json_valid", "schema_valid", "fields", "bleu", "rouge"],
    "classification": [],
}


class RunConfig(Strict):
    """A whole run: what to evaluate, with which models, measured how, gated how."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    task: Literal["summarization", "extraction", "classification", "generation"]
    eval_set: Path = path_field()
    prompt: str
    system_prompt: str | None = None
    schema_: Path | None = path_field(None, alias="schema")
    labels: list[str] | None = None
    label_field: str | None = None
    models: dict[str, ModelConfig]
    generation: Generation = Field(default_factory=Generation)
    metrics: list[MetricSpec] | None = None
    judge: list[JudgeRef] = Field(default_factory=list)
    human_labels: Path | None = path_field(None)
    slices: list[str] = Field(default_factory=list)
    critical: list[str] = Field(default_factory=list)
    analysis: Analysis = Field(default_factory=Analysis)
    gate: GateConfig | None = None
    cache: Path | None = path_field(None)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)
    _source: str = PrivateAttr("<config>")  # the file it was read from, and its text, for `where`
    _text: str = PrivateAttr("")

    # --- shapes a user may write more briefly -------------------------------------------
    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_names(cls, value):
        if value is None:
            return None
        out = []
        for item in value:
            if isinstance(item, str):
                out.append({"name": item})
            elif isinstance(item, dict) and "name" in item and "options" not in item:
                item = dict(item)
                out.append({"name": item.pop("name"), "options": item})
            else:
                out.append(item)
        return out

    @field_validator("judge", mode="before")
    @classmethod
    def _judge_list(cls, value):
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    @field_validator("critical")
    @classmethod
    def _slice_refs(cls, value):
        for ref in value:
            if "=" not in ref:
                raise ValueError(f"'{ref}' should read 'field=value', e.g. 'critical=true'")
        return value

    @field_validator("models")
    @classmethod
    def _role_names(cls, value):
        """Checks each role's name: it is a side of the pairs (`student_v2~teacher`), so a '~' in it or the name
        `reference` (the gold side) made pairs no one can read — a candidate `student~b` was silently never decided."""
        for role in value:
            if role == "reference":
                raise ValueError("'reference' is the gold side of every pair (student~reference); give the model "
                                 "another name")
            if not _ROLE_NAME.match(role):
                raise ValueError(f"role '{role}': a role's name is letters, digits, '_', '-' or '.' ('~' joins the "
                                 "two sides of a pair, as in student~teacher); e.g. student_b")
        return value

    @model_validator(mode="after")
    def _task_needs(self):
        for role in ROLES_FIXED:
            if role not in self.models:
                raise ValueError(f"models needs a '{role}' entry")
        if self.task == "classification" and not self.labels:
            raise ValueError("task 'classification' needs 'labels: [...]', the label set")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("labels has duplicates")
        if self.label_field and self.task != "extraction":
            raise ValueError("label_field names a field of an extraction output; task is not extraction")
        return self

    # --- derived views ----------------------------------------------------------------------
    def where(self, *loc) -> str:
        """Gives `file:line` of the config key at `loc` (e.g. "models", "student", "path"), for an error message."""
        return where(self._source, yaml_line(self._text, loc) if self._text else None)

    @property
    def schema_path(self) -> Path | None:
        return self.schema_

    @property
    def roles(self) -> list[str]:
        """Teacher first, student second, then any further candidates in config order."""
        rest = [r for r in self.models if r not in ROLES_FIXED]
        return ["teacher", "student", *rest]

    @property
    def metric_specs(self) -> list[MetricSpec]:
        if self.metrics is not None:
            return self.metrics
        return [MetricSpec(name=n) for n in DEFAULT_METRICS[self.task]]

    def load_schema(self) -> dict | None:
        """Gives the task's JSON Schema as a dict, or None when the config names none."""
        if self.schema_ is None:
            return None
        return read_json(self.schema_, "schema")

    def resolved(self) -> dict:
        """Gives the config as plain JSON data, paths resolved, for the manifest."""
        return json.loads(self.model_dump_json(by_alias=True))


# ------------------------------------------------------------------------------------------
def resolve_paths(obj: BaseModel, base: Path) -> None:
    """Makes every relative Path in the config absolute against the config file's folder, and so an hf or vllm
    `model` written as a relative folder (`./…`, `../…`; anything else may be a Hugging Face id)."""
    if isinstance(obj, (HFModel, VLLMModel)) and obj.model.startswith(("./", "../")):
        obj.model = str((base / obj.model).resolve())
    for name in type(obj).model_fields:
        value = getattr(obj, name)
        if isinstance(value, Path) and not value.is_absolute():
            setattr(obj, name, (base / value).resolve())
        elif isinstance(value, BaseModel):
            resolve_paths(value, base)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    resolve_paths(item, base)
        elif isinstance(value, dict):
            for item in value.values():
                if isinstance(item, BaseModel):
                    resolve_paths(item, base)


def yaml_line(text: str, loc: tuple) -> int | None:
    """Finds the line of the config key at `loc`, so an error can point at it."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for key in loc:
        if node is None:
            break
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    line, node = k.start_mark.line + 1, v
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


BACKEND_TAGS = {"replay", "hf", "vllm", "openai"}  # pydantic's discriminator tags, not keys the user wrote


def _step(annotation, part):
    """Gives the type found one step down `annotation` at `part` of a pydantic error's loc, or None."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _step(args[0], part)
    if origin in (list, tuple):
        return args[0] if isinstance(part, int) and args else None
    if origin is dict:
        return args[1] if isinstance(part, str) and len(args) == 2 else None
    if origin is Union or str(origin) == "types.UnionType":
        members = [a for a in args if a is not type(None)]
        for member in members:  # a discriminated union's loc names the member by its tag (`replay`)
            tag = getattr(member, "model_fields", {}).get("backend")
            if tag is not None and part in typing.get_args(tag.annotation):
                return member
        found = [f for f in (_step(m, part) for m in members) if f is not None]
        return found[0] if found else None
    return None


def allowed_keys(model, loc: tuple) -> list[str]:
    """Gives the keys the mapping at `loc[:-1]` of `model` may hold (its fields, by the names YAML uses)."""
    node = model
    for part in loc[:-1]:
        node = _step(node, part)
        if node is None:
            return []
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [info.alias or name for name, info in node.model_fields.items()]
    return []


def _describe(loc: tuple, err: dict, allowed: list[str] = ()) -> str:
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        from genval.errors import did_you_mean

        hint = did_you_mean(loc[-1], allowed) if loc else ""
        return f"unknown key '{dotted}'" + (hint or " (remove it or check its spelling)")
    if kind == "missing":
        return f"missing key '{dotted}'"
    msg = err["msg"].removeprefix("Value error, ")
    if kind.endswith("_type") or kind in ("literal_error", "enum"):
        found = repr(err.get("input"))
        msg += f", found {found if len(found) <= 40 else found[:37] + '...'}"
    return f"'{dotted}': {msg}"


def validation_error(exc: ValidationError, source: str, text: str = "", model=None) -> GenvalError:
    """Gives the one-line error for a pydantic failure: the file, the key's line, what is wrong.

    An unknown key is named first, with the known key it is closest to: `pth` given for `path`
    is one mistake, reported as pydantic's "missing path" and "unknown pth" would hide it.
    """
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # stable: pydantic's order otherwise
    err = errors[0]
    allowed = allowed_keys(model, err["loc"]) if model is not None and err["type"] == "extra_forbidden" else []
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in BACKEND_TAGS))
    line = yaml_line(text, loc) if text else None
    prefix = f"{source}:{line}" if line else source
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return GenvalError(f"{prefix}: {_describe(loc, err, allowed)}{more}")


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key, line: int, first: int):
        super().__init__(f"key '{key}' given twice (first at line {first}); keep one")
        self.line = line


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error, not 'last wins'."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _DuplicateKey(key, line, seen[key])
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path, what: str = "config") -> tuple[Any, str]:
    """Gives (data, text) of the YAML file at `path`; a missing file, bad YAML or a repeated key is a one-line error."""
    path = Path(path)
    text = read_text(path, what)
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as exc:
        raise GenvalError(f"{path}:{exc.line}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        raise GenvalError(f"{path}{line}: not valid YAML" + (f" ({problem})" if problem else "")) from None
    except RecursionError:
        raise GenvalError(f"{path}: YAML nested too deeply to be a {what}") from None
    check_text(data, str(path))
    return data, text


def validated(model: type, data: Any, source: str, text: str = ""):
    """Gives `model.model_validate(data)`; a pydantic failure is the one-line error naming the key's line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source, text, model) from None


def parse_model(model: type, data: Any, base: Path, source: str, text: str, what: str, keys: str):
    """Validates a config file's data (a mapping of keys such as `keys`) into `model`, with its paths
    resolved against `base` and its source kept for later `file:line` errors."""
    if not isinstance(data, dict):
        raise GenvalError(f"{source}: the {what} should be a mapping of keys ({keys}, …)")
    config = validated(model, data, source, text)
    resolve_paths(config, base)
    config._source, config._text = source, text
    return config


def parse_config(data: Any, base: Path, source: str = "<config>", text: str = "") -> RunConfig:
    """Validates raw config data into a RunConfig, paths resolved against `base`."""
    return parse_model(RunConfig, data, base, source, text, "config", "name, task, models")


def load_config(path: str | Path) -> RunConfig:
    """Reads and validates the YAML run config at `path`."""
    data, text = read_yaml(path, "config")
    return parse_config(data, Path(path).resolve().parent, source=str(path), text=text)
