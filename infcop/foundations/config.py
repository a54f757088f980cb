"""Experiment configuration: YAML -> small frozen dataclasses, validated at load time.

Every field carries its constraints in `field(metadata=...)`:
  doc        one line for the generated JSON schema and `infcop config-keys`
  choices    allowed values
  min/max    inclusive bounds; gt/lt exclusive bounds (an upper bound wherever a value can exhaust
             time or memory)
  pattern    a regular expression a string must match in full; max_len: its longest length
  path       a filesystem path: no control character (newline, NUL, ...) and no '{' or '}' (a
             Snakemake wildcard); spaces and shell characters are fine, the workflow quotes them
  min_items / max_items  shortest / longest allowed list; unique: no repeated items
  identity   False for fields that do not change results (paths, logging), so they stay out of
             hashes.

This is the bottom layer: it imports nothing of the harness. Names that live in registries
(datasets, models, methods) are checked one layer up, in `infcop.engine.spec`, and the JSON schema
the Snakefile validates against is generated from these dataclasses (`infcop schema`).

The canonical string of a dataclass lists its identity fields that differ from the default, sorted,
as OpenLTH does; its hash names a run. A new field with a default therefore never changes an
existing run id (tests/test_config.py pins a few hashes to keep that promise).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"  # one safe path component: never '..', never a '/'
PATH_PATTERN = r"[^\x00-\x1f\x7f{}]*"  # see `path` above
MAX_SEED = 2**32 - 1  # numpy's legacy seeding (MNIST-1D) takes no more
MAX_EPOCHS = (
    100_000  # any count of epochs, levels or probe samples beyond these exhausts time or memory
)


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range; the message names the
    key."""


def _opt(default: Any, *, doc: str = "", **meta: Any) -> Any:
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata={"doc": doc, **meta})


@dataclass(frozen=True)
class DataConfig:
    """Dataset, validation split and input preprocessing."""

    dataset: str = _opt("digits", doc="dataset name (a registered dataset; see README, Datasets)")
    data_dir: str = _opt(
        "data", identity=False, path=True, doc="where torchvision datasets live / download to"
    )
    download: bool = _opt(False, identity=False, doc="allow downloading torchvision datasets")
    verify_checksums: bool = _opt(
        True, identity=False, doc="check torchvision's MD5s of CIFAR files"
    )
    val_fraction: float = _opt(
        0.1, gt=0.0, lt=1.0, doc="share of the training split held out for validation"
    )
    split_seed: int = _opt(
        0, min=0, max=MAX_SEED, doc="seed of the train/validation (and digits test) split"
    )
    train_subset: int = _opt(
        0,
        min=0,
        max=100_000_000,
        doc="keep a seeded random N of the official training examples (the "
        "validation share is carved from them; the test split stays whole); "
        "0: all. For runs cut to fit a CPU",
    )
    resize: int = _opt(
        0, min=0, max=1024, doc="resize images to resize x resize on the device (0: native size)"
    )
    augment: bool = _opt(
        False, doc="random crop (pad 4) + horizontal flip per batch, on the device"
    )
    channels: int = _opt(
        0,
        choices=(0, 3),
        doc="0: the dataset's own channels; 3: grey images repeated to 3 "
        "channels, so a pretrained RGB first conv is kept",
    )
    standardize: bool = _opt(
        True,
        doc="standardise each channel with the training part's mean and std "
        "(false: pixels scaled to [0, 1] only)",
    )
    mnist1d_samples: int = _opt(
        5000, min=100, max=10_000_000, doc="MNIST-1D: total samples generated (80% train)"
    )
    mnist1d_seed: int = _opt(42, min=0, max=MAX_SEED, doc="MNIST-1D: generator seed")


@dataclass(frozen=True)
class ModelConfig:
    """Network architecture."""

    name: str = _opt(
        "lenet_300_100", doc="model name (a registered model; see README, Datasets and models)"
    )
    pretrained: bool = _opt(False, doc="torchvision models: start from ImageNet weights")


@dataclass(frozen=True)
class TrainingConfig:
    """The one optimizer recipe every method trains with (dense level 0 and every level)."""

    epochs: int = _opt(
        20,
        min=1,
        max=MAX_EPOCHS,
        doc="dense epochs T; also the fixed budget of fixed-epoch methods",
    )
    batch_size: int = _opt(64, min=1, max=1_000_000, doc="training mini-batch size")
    lr: float = _opt(0.05, gt=0.0, doc="peak SGD learning rate (the schedule scales it)")
    momentum: float = _opt(0.9, min=0.0, lt=1.0, doc="SGD momentum (0: plain SGD)")
    nesterov: bool = _opt(False, doc="Nesterov momentum")
    weight_decay: float = _opt(5e-4, min=0.0, doc="L2 weight decay of SGD")
    schedule: str = _opt(
        "cosine",
        choices=("constant", "step", "cosine"),
        doc="learning-rate schedule over the T dense epochs",
    )
    milestones: tuple[float, ...] = _opt(
        (0.5, 0.75), gt=0.0, lt=1.0, doc="step schedule: fractions of training"
    )
    gamma: float = _opt(0.1, gt=0.0, max=1.0, doc="step schedule: LR factor at each milestone")
    rewind_point: str = _opt(
        "1ep", doc="dense snapshot used by rewinding resets: '<n>ep' or '<n>it'"
    )
    bf16: bool = _opt(
        False, doc="bfloat16 autocast for training and evaluation (flows stay float32/64)"
    )
    channels_last: bool = _opt(
        False, doc="channels-last memory format for 2-D conv nets (GPU tensor cores)"
    )
    compile: bool = _opt(
        False,
        doc="torch.compile the training forward pass (GPU; the first epoch pays the compilation)",
    )


@dataclass(frozen=True)
class PruningConfig:
    """How many levels, and the pruners' shared settings."""

    levels: int = _opt(
        5,
        min=1,
        max=1000,
        identity=False,
        doc="pruning levels after level 0 (not hashed: raising it extends a run)",
    )
    fraction: float = _opt(0.2, gt=0.0, lt=1.0, doc="share of remaining weights pruned per level")
    scope: str = _opt("global", choices=("global", "layer"), doc="magnitude pruning scope")
    exclude_output: bool = _opt(False, doc="never prune the output layer")
    exclude_layers: tuple[str, ...] = _opt((), doc="names of prunable layers never pruned")
    pq_p: float = _opt(
        0.5, gt=0.0, doc="PQ-index pruners (SAP, *_pq): the p of the PQ index; must be < pq_q"
    )
    pq_q: float = _opt(1.0, gt=0.0, doc="PQ-index pruners: the q of the PQ index")
    pq_eta: float = _opt(
        0.0, min=0.0, doc="PQ-index pruners: η, the slack in the retained-size bound"
    )
    pq_gamma: float = _opt(
        1.0, gt=0.0, doc="PQ-index pruners: γ, factor on the share the bound says to prune"
    )
    pq_beta: float = _opt(
        0.9, gt=0.0, lt=1.0, doc="PQ-index pruners: β, the largest share pruned in one level"
    )


@dataclass(frozen=True)
class StoppingConfig:
    """Epoch cap and the flow criteria's measurement settings."""

    cap: int = _opt(
        0,
        min=0,
        max=MAX_EPOCHS,
        doc="epoch cap per level of adaptive stopping rules (InfCoP, acc_target, early_bird) "
        "and the budget of fixed_same_reset; 0: the LR schedule left after the method's "
        "reset (T, or T − t after a rewind); a cap past the end of a cosine schedule is an "
        "error",
    )
    check_every: int = _opt(
        1,
        min=1,
        max=MAX_EPOCHS,
        doc="criteria measure and may stop a level only after every k-th epoch "
        "(and at the cap); the InfCoP authors checked every 2 passes",
    )
    level_epochs: int = _opt(
        0,
        min=0,
        max=MAX_EPOCHS,
        doc="epochs a fixed-epoch method retrains per level, and the cap when "
        "stopping.cap is 0; 0: the LR schedule left after the method's reset",
    )
    probe_size: int = _opt(
        128, min=2, max=MAX_EPOCHS, doc="samples in the seeded flow probe set (docs/performance.md)"
    )
    probe_batch: int = _opt(
        256, min=1, max=MAX_EPOCHS, doc="batch size of the flow measurements on the probe set"
    )
    aggregation: str = _opt(
        "signed", choices=("signed", "absolute"), doc="information-flow aggregation"
    )
    epsilon_mode: str = _opt(
        "absolute", choices=("absolute", "relative"), doc="relative: eps x noise floor"
    )
    reference: str = _opt(
        "dense", choices=("dense", "rewind"), doc="flow reference: end of level 0 or rewind point"
    )
    diagnose: bool = _opt(
        False, doc="train every level to the cap and record when each criterion would fire"
    )
    diagnose_if_epsilons: tuple[float, ...] = _opt(
        (0.02, 0.05, 0.11, 0.2),
        min=0.0,
        max_items=100,
        doc="IF thresholds evaluated in diagnose mode",
    )
    diagnose_gf_epsilons: tuple[float, ...] = _opt(
        (0.1, 0.5, 1.0), min=0.0, max_items=100, doc="GF thresholds evaluated in diagnose mode"
    )


@dataclass(frozen=True)
class TrackingConfig:
    """Weights & Biases mirror of the results (never part of a run's identity)."""

    mode: str = _opt(
        "offline",
        identity=False,
        choices=("disabled", "offline", "online"),
        doc="W&B mode (the WANDB_MODE environment variable wins); offline runs sync later",
    )
    project: str = _opt("infcop", identity=False, max_len=128, doc="W&B project")
    entity: str = _opt(
        "", identity=False, max_len=128, doc="W&B entity (user or team; empty: your default)"
    )
    dir: str = _opt(
        "", identity=False, path=True, doc="where W&B writes its runs (empty: results/<name>/wandb)"
    )
    tags: tuple[str, ...] = _opt(
        (),
        identity=False,
        max_len=64,
        max_items=100,
        doc="extra W&B tags on every run of the study",
    )


@dataclass(frozen=True)
class ExperimentConfig:
    """Where results go, on which device, for which seeds."""

    name: str = _opt(
        "default",
        identity=False,
        pattern=NAME_PATTERN,
        max_len=100,
        doc="results/<name>/ holds this experiment",
    )
    results_dir: str = _opt(
        "results", identity=False, path=True, doc="root of every study's results directory"
    )
    device: str = _opt(
        "cpu",
        identity=False,
        choices=("cpu", "cuda", "auto"),
        doc="where training runs (auto: cuda when available)",
    )
    threads: int = _opt(
        0,
        min=0,
        max=4096,
        identity=False,
        doc="torch CPU threads (0: the CPUs this process may use)",
    )
    deterministic: bool = _opt(
        False,
        identity=False,
        doc="GPU: only bitwise-reproducible cuDNN/cuBLAS kernels, "
        "so a resumed run repeats an uninterrupted one "
        "(docs/performance.md: its cost)",
    )
    cudnn_benchmark: bool = _opt(
        False,
        identity=False,
        doc="GPU: cuDNN picks the fastest algorithm per shape by timing (not reproducible)",
    )
    epoch_cache_mb: int = _opt(
        1024,
        min=0,
        max=10_000_000,
        identity=False,
        doc="disk budget (MB) per dataset x model x seed for trained epochs that other "
        "runs starting from the same state reuse (identical records; 0: no reuse)",
    )
    seeds: tuple[int, ...] = _opt(
        (0,),
        identity=False,
        min=0,
        max=MAX_SEED,
        min_items=1,
        max_items=1000,
        unique=True,
        doc="one run per seed; a seed fixes init, data order and probe set",
    )


@dataclass(frozen=True)
class MethodEntry:
    """One method of a study: a registered method under its own name, or a variant of one.

    In YAML either a plain name (`lth`) or `{name: sap_p1q2, method: sap, params: {p: 1, q: 2}}`.
    A variant runs in its own directory under its own hash, and inherits its method's role.
    """

    name: str
    method: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def is_variant(self) -> bool:
        return self.name != self.method or bool(self.params)

    def to_config(self) -> Any:
        if not self.is_variant:
            return self.name
        return {"name": self.name, "method": self.method, "params": dict(self.params)}

    @classmethod
    def parse(cls, value: Any, key: str) -> "MethodEntry":
        if isinstance(value, str):
            _check_pattern(key, value, NAME_PATTERN)
            return cls(value, value)
        if not isinstance(value, dict):
            raise ConfigError(
                f"{key}: expected a method name or {{name, method, params}}, got {value!r}"
            )
        unknown = sorted(set(value) - {"name", "method", "params"})
        if unknown:
            raise ConfigError(
                f"{key}.{unknown[0]}: unknown key; allowed keys: method, name, params"
            )
        for k in ("name", "method"):
            if not isinstance(value.get(k), str):
                raise ConfigError(f"{key}.{k}: expected a string, got {value.get(k)!r}")
            _check_pattern(f"{key}.{k}", value[k], NAME_PATTERN)
        params = value.get("params", {})
        if not isinstance(params, dict):
            raise ConfigError(
                f"{key}.params: expected a mapping of hyperparameters, got {params!r}"
            )
        return cls(value["name"], value["method"], tuple(sorted(params.items())))


@dataclass(frozen=True)
class StudyConfig:
    """What the Snakemake DAG runs and how the statistics compare it (never part of a run's identity)."""

    pairs: tuple[str, ...] = _opt(
        ("digits/lenet_300_100",),
        identity=False,
        pattern=r"[a-z0-9_]+/[a-z0-9_]+",
        min_items=1,
        unique=True,
        doc="dataset/model pairs",
    )
    methods: tuple[MethodEntry, ...] = _opt(
        (MethodEntry("infcop_if", "infcop_if"), MethodEntry("lth", "lth")),
        identity=False,
        min_items=1,
        doc="methods run on every pair and seed: a name, or {name, method, params}",
    )
    diagnose: tuple[str, ...] = _opt(
        (),
        identity=False,
        pattern=NAME_PATTERN,
        unique=True,
        doc="methods of the study also run once per pair and seed in diagnostic mode",
    )
    margin: float = _opt(
        0.01, min=0.0, lt=1.0, identity=False, doc="non-inferiority margin δ (accuracy fraction)"
    )
    alpha: float = _opt(
        0.05, gt=0.0, lt=1.0, identity=False, doc="significance level of every test"
    )
    bootstrap: int = _opt(
        10000, min=100, max=10_000_000, identity=False, doc="bootstrap resamples for speedup CIs"
    )
    frontier: bool = _opt(
        False,
        identity=False,
        doc="also write the accuracy-cost frontier of the study's stopping "
        "rules: frontier.{md,csv} and figures/frontier/",
    )
    grouping: str = _opt(
        "run",
        identity=False,
        choices=("run", "seed"),
        doc="Snakemake jobs: `run` = one job per run (many cores, a cluster, a GPU); `seed` = one "
        "job per dataset x model x seed trains its level 0 and runs all its methods and "
        "diagnostics in one process, saving the ~3 s start-up of each (CPU-sized studies); the "
        "pairs with the costliest epochs start first. Records are the same either way",
    )
    claims: tuple[str, ...] = _opt(
        (),
        identity=False,
        unique=True,
        doc="claim files whose claims this study tests, relative to the harness's root "
        "(e.g. claims/lottery_ticket.yaml): results/<study>/claims.{md,csv}",
    )
    plugins: tuple[str, ...] = _opt(
        (),
        identity=False,
        unique=True,
        doc="extra method/criterion files or folders (every *.py not "
        "starting with _), relative to the working directory (the "
        "study directory); see docs/extending.md",
    )

    def entry(self, name: str) -> MethodEntry | None:
        return next((e for e in self.methods if e.name == name), None)


@dataclass(frozen=True)
class Config:
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    stopping: StoppingConfig = field(default_factory=StoppingConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    study: StudyConfig = field(default_factory=StudyConfig)
    methods: dict = field(
        default_factory=dict, metadata={"doc": "per-method hyperparameter overrides"}
    )


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config) if f.name != "methods"}


# ---------------------------------------------------------------- parsing and validation
def _check_value(key: str, value: Any, tp: Any, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(value) < meta.get("min_items", 0):
            raise ConfigError(
                f"{key}: needs at least {meta['min_items']} item(s), got {list(value)!r}"
            )
        if len(value) > meta.get("max_items", len(value)):
            raise ConfigError(f"{key}: {len(value)} items; at most {meta['max_items']} are allowed")
        (item_tp, _) = typing.get_args(tp)
        items = tuple(_check_value(f"{key}[{i}]", v, item_tp, meta) for i, v in enumerate(value))
        names = [getattr(v, "name", v) for v in items]
        if meta.get("unique") or item_tp is MethodEntry:
            repeated = sorted({n for n in names if names.count(n) > 1}, key=str)
            if repeated:
                raise ConfigError(f"{key}: {repeated[0]!r} appears more than once")
        return items
    if dataclasses.is_dataclass(tp):
        return tp.parse(value, key)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(
        tp
    ):
        if value is None:
            return None
        (tp,) = [t for t in typing.get_args(tp) if t is not type(None)]
        return _check_value(key, value, tp, meta)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, str):  # PyYAML reads exponents without a dot (1e-4) as strings
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        if len(value) > meta.get("max_len", len(value)):
            raise ConfigError(
                f"{key}: {len(value)} characters; at most {meta['max_len']} are allowed"
            )
    if meta.get("path") and not re.fullmatch(PATH_PATTERN, value):
        bad = next(c for c in value if not re.fullmatch(PATH_PATTERN, c))
        raise ConfigError(
            f"{key}: {value!r} holds {bad!r}, which no path of the harness may hold (control "
            "characters such as a newline or NUL, and '{' or '}', which Snakemake reads as "
            "a wildcard)"
        )
    if "pattern" in meta:
        _check_pattern(key, value, meta["pattern"])
    choices = meta.get("choices")
    if choices is not None:
        allowed = choices
        if value not in allowed:
            raise ConfigError(
                f"{key}: unknown value {value!r}; allowed: {', '.join(map(str, allowed))}"
            )
    bounds = (
        ("min", lambda v, b: v >= b, ">="),
        ("max", lambda v, b: v <= b, "<="),
        ("gt", lambda v, b: v > b, ">"),
        ("lt", lambda v, b: v < b, "<"),
    )
    for name, ok, sym in bounds:
        if name in meta and not ok(value, meta[name]):
            lo = [f"{s} {meta[n]}" for n, _, s in bounds if n in meta]
            raise ConfigError(f"{key}: {value!r} is out of range; must be {' and '.join(lo)}")
    return value


def _check_pattern(key: str, value: str, pattern: str) -> None:
    if not re.fullmatch(pattern, value):
        hint = (
            " (one path component: letters, digits, '_', '.', '-')"
            if pattern == NAME_PATTERN
            else ""
        )
        raise ConfigError(f"{key}: {value!r} is not allowed here; it must match {pattern}{hint}")


# A key written with nothing after it reads as null: refused, never taken as "all defaults" unasked.
_EMPTY = " (an empty section or a null value; write {} to keep every default, or remove the key)"


def from_dict(cls: type, data: dict | None, prefix: str) -> Any:
    """Build dataclass `cls` from a plain dict, rejecting unknown keys and bad values by name."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{prefix}: expected a mapping, got {data!r}" + (_EMPTY if data is None else "")
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{prefix}.{unknown[0]}: unknown key; allowed keys: {', '.join(sorted(fields))}"
        )
    kwargs = {
        k: _check_value(f"{prefix}.{k}", v, hints[k], dict(fields[k].metadata))
        for k, v in data.items()
    }
    return cls(**kwargs)


def parse_config(raw: dict) -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping at top level, got {type(raw).__name__}")
    allowed = set(SECTIONS) | {"methods", *PER_SECTIONS}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section; allowed: {', '.join(sorted(allowed))}")
    empty = [name for name, value in raw.items() if value is None]
    if empty:
        raise ConfigError(f"{empty[0]}: expected a mapping, got None{_EMPTY}")
    sections = {
        name: from_dict(tp, raw.get(name, {}), name)
        for name, tp in typing.get_type_hints(Config).items()
        if name != "methods"
    }
    methods = raw.get("methods", {})
    if not isinstance(methods, dict):
        raise ConfigError(
            f"methods: expected a mapping of method name -> hyperparameters, got {methods!r}"
            + (_EMPTY if methods is None else "")
        )
    for name, params in methods.items():
        if not isinstance(params, dict):
            raise ConfigError(
                f"methods.{name}: expected a mapping of hyperparameters, got {params!r}"
                + (_EMPTY if params is None else "")
            )
    cfg = Config(**sections, methods=methods)
    pr = cfg.pruning
    if pr.pq_p >= pr.pq_q:
        raise ConfigError(
            f"pruning.pq_p: must be smaller than pruning.pq_q ({pr.pq_p} >= {pr.pq_q})"
        )
    parse_point(cfg.training.rewind_point, key="training.rewind_point")
    return cfg


def parse_point(text: str, key: str = "rewind_point") -> tuple[int, str]:
    """A training point: '3ep' -> (3, 'ep'); '120it' -> (120, 'it')."""
    match = re.fullmatch(r"\s*(\d+)\s*(ep|it)\s*", str(text))
    if not match:
        raise ConfigError(
            f"{key}: {text!r} is not a training point; write '<n>ep' (epochs) or '<n>it' (steps)"
        )
    return int(match.group(1)), match.group(2)


PER_SECTIONS = {"per_dataset": "data", "per_model": "model"}


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = (
            deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def resolve(
    raw: dict, pair: str | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> dict:
    """Raw config of one dataset x model: base, then `per_dataset[dataset]`, then `per_model[model]`
    (the recipes), then `--set` overrides, which always win. `pair` ('dataset/model') picks the
    dataset and model; otherwise they come from the data/model sections (or their overrides)."""
    selected = apply_overrides(dict(raw), list(overrides))
    if pair is not None:
        if pair.count("/") != 1:
            raise ConfigError(f"--pair {pair!r}: expected dataset/model, e.g. digits/lenet_300_100")
        dataset, model = pair.split("/")
    else:
        dataset = (selected.get("data") or {}).get("dataset", DataConfig.dataset)
        model = (selected.get("model") or {}).get("name", ModelConfig.name)
    out = raw
    for section, name in (("per_dataset", dataset), ("per_model", model)):
        extra = (raw.get(section) or {}).get(name) or {}
        if not isinstance(extra, dict):
            raise ConfigError(f"{section}.{name}: expected a mapping of config sections")
        out = deep_merge(out, extra)
    out = deep_merge(out, {"data": {"dataset": dataset}, "model": {"name": model}})
    return apply_overrides(out, list(overrides))


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `--set section.key=value` overrides (values parsed as YAML) to a raw config dict."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. training.epochs=5")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(
                f"--set {item!r}: the key before '=' must be section.key, e.g. training.epochs=5"
            )
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(
                f"--set {key}: {text!r} is not a valid YAML value ({_yaml_problem(err)}); quote it "
                "or close its brackets, e.g. --set 'experiment.seeds=[0, 1]'"
            ) from None
    return raw


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key repeated in one mapping is an error: by default the
    later value silently wins, so a config with two `training:` sections runs half of
    what was written."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{self.name}, line {line}: {key!r} appears twice in the same mapping (first "
                    f"on line {seen[key]}); merge the two into one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def _yaml_problem(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(err).splitlines()[0]


def read_yamls(paths: list[str | Path]) -> dict:
    """Several config files as one, later ones deep-merged over earlier ones (lists replaced whole):
    what Snakemake makes of `--configfile a.yaml b.yaml`, so an overlay like configs/paper_cpu.yaml
    is priced exactly as it runs."""
    raw: dict = {}
    for path in paths:
        raw = deep_merge(raw, read_yaml(path))
    return raw


def read_yaml(path: str | Path) -> dict:
    """A config file's raw mapping. An empty file is refused rather than run on
    every default unasked."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        loader = _UniqueKeyLoader(text)
        loader.name = str(path)
        try:
            raw = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(err)}") from None
    if raw is None:
        raise ConfigError(
            f"{path}: the file is empty; write the sections to change (e.g. "
            f"`training: {{epochs: 5}}`), or start from configs/default.yaml"
        )
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections (experiment:, data:, training:, "
            f"...), got a {type(raw).__name__}"
        )
    return raw


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, pair: str | None = None
) -> Config:
    raw = read_yaml(path) if path is not None else {}
    return parse_config(resolve(raw, pair, overrides or []))


# ---------------------------------------------------------------- canonical form and hashing
def canonical(obj: Any) -> str:
    """Sorted `name=value` pairs of identity fields that differ from their defaults."""
    parts = []
    for f in sorted(dataclasses.fields(obj), key=lambda f: f.name):
        if not f.metadata.get("identity", True):
            continue
        value = getattr(obj, f.name)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        if value != default:
            parts.append(f"{f.name}={value!r}")
    name = getattr(
        type(obj), "hash_name", type(obj).__name__
    )  # a renamed class may keep its old hashes
    return f"{name}({','.join(parts)})"


def short_hash(*parts: str) -> str:
    return hashlib.sha256(";".join(parts).encode()).hexdigest()[:12]


def dense_hash(cfg: Config) -> str:
    """Identity of level 0: everything that changes dense training."""
    return short_hash(canonical(cfg.data), canonical(cfg.model), canonical(cfg.training))


def to_dict(obj: Any) -> Any:
    if hasattr(obj, "to_config"):
        return obj.to_config()
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
