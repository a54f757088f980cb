"""What a run is: a config checked against the registries, a method (or a study's variant of one)
with validated hyperparameters, and the hash and directory that follow.

`infcop.foundations.config` knows no registry; this layer does (as OpenLTH's `Desc` sits above its
hyperparameter dataclasses). Everything that starts a run or reads a study loads its config here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infcop.foundations.config import (
    Config,
    ConfigError,
    canonical,
    dense_hash,
    from_dict,
    parse_config,
    read_yaml,
    resolve,
    short_hash,
)
from infcop.core.data import DATASETS
from infcop.core.models import MODELS
from infcop.methods import Method, get_method, load_methods
from infcop.foundations.paths import (
    DIAGNOSE_SUFFIX,
    RESERVED_NAMES,
    RunDir,
    located,
    run_name,
    study_dir,
)


@dataclass(frozen=True)
class Variant:
    """A method under the name a study gives it, with its hyperparameters resolved."""

    name: str
    method: Method
    params: Any

    def schedule_for(self, cfg: Config) -> str:
        return self.method.schedule(cfg, self.params)

    def run_config(self, cfg: Config) -> Config:
        """The config this variant runs under: a parameter declared with metadata `stopping: <key>`
        (e.g. infcop_if's `aggregation`) replaces `stopping.<key>` when set, so the engine, the
        flow reference and the record all see one setting. Unset parameters leave the config (and
        so the hash) as it is."""
        changes = {
            f.metadata["stopping"]: getattr(self.params, f.name)
            for f in dataclasses.fields(self.params)
            if "stopping" in f.metadata and getattr(self.params, f.name) is not None
        }
        return (
            dataclasses.replace(cfg, stopping=dataclasses.replace(cfg.stopping, **changes))
            if changes
            else cfg
        )


def resolve_variant(cfg: Config, name: str) -> Variant:
    """`name` is a study entry (plain or variant) or a registered method. Its params are the
    method's defaults, then `methods.<method>` of the config, then the variant's own `params`."""
    entry = cfg.study.entry(name)
    method = get_method(entry.method if entry else name)
    raw = dict(cfg.methods.get(method.name) or {})
    key = f"methods.{method.name}"
    if entry is not None and entry.params:
        raw.update(dict(entry.params))
        key = f"study.methods[{name}].params"
    return Variant(name, method, from_dict(method.params, raw, key))


def mirrored_run(cfg: Config, name: str) -> str | None:
    """The run of the study whose record this one reads (the budget-matched control's `mirror`):
    the parameter declared with metadata `run`, by default the first method it ablates; None for
    other methods."""
    v = resolve_variant(cfg, name)
    for f in dataclasses.fields(v.params):
        if f.metadata.get("run"):
            return getattr(v.params, f.name) or v.method.ablates[0]
    return None


def in_run_order(cfg: Config, names: list[str]) -> list[str]:
    """`names` in the order one process runs them: every run that mirrors another after all others
    (a mirrored run mirrors none, check_names), the rest as given."""
    return sorted(names, key=lambda name: mirrored_run(cfg, name) is not None)


def run_hash(cfg: Config, name: str) -> str:
    """Identity of one IMP run: dense identity + pruning + stopping + method and its
    hyperparameters. A variant whose params equal its method's defaults computes the same
    thing and gets the same hash. A run that reads another run's record (mirrored_run)
    includes that run's identity."""
    v = resolve_variant(cfg, name)
    mirror = mirrored_run(cfg, name)
    upstream = (f"mirror={run_hash(cfg, mirror)}",) if mirror is not None else ()
    cfg = v.run_config(cfg)
    return short_hash(
        dense_hash(cfg),
        canonical(cfg.pruning),
        canonical(cfg.stopping),
        f"method={v.method.name}",
        canonical(v.params),
        *upstream,
    )


def check_names(cfg: Config) -> Config:
    """Every registry name in the config exists and every method's hyperparameters are valid."""
    for key, value, registry in (
        ("data.dataset", cfg.data.dataset, DATASETS),
        ("model.name", cfg.model.name, MODELS),
    ):
        if value not in registry:
            raise ConfigError(
                f"{key}: unknown value {value!r}; allowed: {', '.join(sorted(registry))}"
            )
    for i, pair in enumerate(cfg.study.pairs):
        dataset, model = pair.split("/")
        if dataset not in DATASETS or model not in MODELS:
            raise ConfigError(
                f"study.pairs[{i}]: unknown pair {pair!r}; datasets: "
                f"{', '.join(sorted(DATASETS))}; models: {', '.join(sorted(MODELS))}"
            )
    methods = load_methods(plugins=cfg.study.plugins)
    for name in cfg.methods:
        if name not in methods:
            raise ConfigError(
                f"methods.{name}: unknown method; known methods: {', '.join(sorted(methods))}"
            )
    for i, entry in enumerate(cfg.study.methods):
        if entry.method not in methods:
            raise ConfigError(
                f"study.methods[{i}]: unknown method {entry.method!r}; known methods: "
                f"{', '.join(sorted(methods))}"
            )
        if entry.is_variant and entry.name in methods and entry.name != entry.method:
            raise ConfigError(
                f"study.methods[{i}].name: {entry.name!r} is a registered method; give the variant "
                "its own name"
            )
    names = [e.name for e in cfg.study.methods]
    for i, name in enumerate(cfg.study.diagnose):
        if name not in names and name not in methods:
            raise ConfigError(
                f"study.diagnose[{i}]: {name!r} is neither a method of the study nor a registered "
                f"method; study methods: {', '.join(names)}"
            )
    for name in {*names, *cfg.study.diagnose, *cfg.methods}:
        v = resolve_variant(cfg, name)
        v.schedule_for(cfg)  # e.g. a PQ variant with p >= q fails here, before any job starts
    for i, name in enumerate(names):
        mirror = mirrored_run(cfg, name)
        if mirror is not None and (mirror not in names or mirrored_run(cfg, mirror) is not None):
            raise ConfigError(
                f"study.methods[{i}]: {name!r} mirrors {mirror!r}, which must be a "
                f"method of the study that mirrors no other; study methods: "
                f"{', '.join(names)}"
            )
        _check_not_reserved(f"study.methods[{i}]", name)
    _check_layers(cfg)
    return cfg


def _check_not_reserved(key: str, name: str) -> None:
    if name in RESERVED_NAMES or name.endswith(DIAGNOSE_SUFFIX):
        raise ConfigError(
            f"{key}: {name!r} is a name the harness uses itself (for its dense runs, its files or "
            f"diagnostic runs: {', '.join(sorted(RESERVED_NAMES))}, any name ending in "
            f"{DIAGNOSE_SUFFIX}); give the method another name"
        )


def _check_layers(cfg: Config) -> None:
    """`pruning.exclude_layers` names prunable layers of the model (built on the meta
    device: no memory)."""
    if not cfg.pruning.exclude_layers:
        return
    import torch

    from infcop.core.data import split_sizes
    from infcop.core.models import build_model, prunable_layers

    shape, classes, *_ = split_sizes(cfg.data)
    with torch.device("meta"):
        layers = list(prunable_layers(build_model(cfg.model.name, shape, classes)))
    for i, name in enumerate(cfg.pruning.exclude_layers):
        if name not in layers:
            raise ConfigError(
                f"pruning.exclude_layers[{i}]: {name!r} is no prunable layer of {cfg.model.name}; "
                f"its prunable layers: {', '.join(layers)}"
            )


def check_recipes(raw: dict) -> dict:
    """`per_dataset` / `per_model` name registered datasets and models: a misspelled name (say
    `lenet_300_10`) would otherwise never match, and the study would silently run
    without its recipe."""
    for section, kind, registry in (
        ("per_dataset", "dataset", DATASETS),
        ("per_model", "model", MODELS),
    ):
        recipes = raw.get(section) or {}
        if not isinstance(recipes, dict):
            raise ConfigError(
                f"{section}: expected a mapping of {kind} name -> config sections, got {recipes!r}"
            )
        for name, recipe in recipes.items():
            if name not in registry:
                raise ConfigError(
                    f"{section}.{name}: unknown {kind}, so this recipe would never apply; allowed: "
                    f"{', '.join(sorted(registry))}"
                )
            if not isinstance(recipe, dict):
                raise ConfigError(
                    f"{section}.{name}: expected a mapping of config sections, got {recipe!r}"
                )
    return raw


def load_run_config(
    path: str | Path | None = None, overrides: list[str] | None = None, pair: str | None = None
) -> Config:
    """The config of one dataset x model, checked against the registries."""
    raw = located(check_recipes(read_yaml(path)), path) if path is not None else {}
    return check_names(parse_config(resolve(raw, pair, overrides or [])))


def study_configs(raw: dict, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Config]:
    """The checked config of every pair in the study (a bad per_model entry fails
    before any job runs)."""
    check_recipes(raw)
    base = check_names(parse_config(resolve(raw, None, overrides)))
    return {
        pair: check_names(parse_config(resolve(raw, pair, overrides))) for pair in base.study.pairs
    }


@dataclass(frozen=True)
class RunSpec:
    """One IMP run: a method (variant) x seed on the config's dataset x model; diagnostic or not."""

    cfg: Config
    variant: Variant
    seed: int
    diagnose: bool = False

    @classmethod
    def of(cls, cfg: Config, method: str, seed: int) -> "RunSpec":
        variant = resolve_variant(cfg, method)
        return cls(variant.run_config(cfg), variant, seed, cfg.stopping.diagnose)

    @property
    def name(self) -> str:
        return run_name(self.variant.name, self.diagnose)

    @property
    def hash(self) -> str:
        return run_hash(self.cfg, self.variant.name)

    @property
    def dir(self) -> RunDir:
        ex = self.cfg.experiment
        return study_dir(ex.results_dir, ex.name).run(
            self.cfg.data.dataset, self.cfg.model.name, self.name, self.seed
        )
