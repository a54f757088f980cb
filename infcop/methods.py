"""Methods: named compositions pruner x reset x stopper, with validated hyperparameters.

A method module registers a build function and (optionally) a hyperparameter dataclass:

    @dataclass(frozen=True)
    class Params:
        epsilon: float = field(default=0.11, metadata={"gt": 0})

    @register_method("my_method", params=Params)
    def my_method(ctx: BuildContext, p: Params) -> MethodSpec:
        return MethodSpec(magnitude(ctx), RewindTo(), FixedEpochs(ctx.cfg.training.epochs))

Config overrides under `methods: {my_method: {epsilon: 0.2}}` are validated against `Params`
and enter the run's config hash. The engine never changes when a method is added.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable

from infcop.config import Config, ConfigError, canonical, dense_hash, from_dict, short_hash
from infcop.pruners import MagnitudeGlobal, MagnitudeLayer, PQIndexPruner, Pruner
from infcop.resets import Reset
from infcop.stoppers import AnyOf

BUILTIN_MODULES = ("infcop.infcop_methods", "baselines")


@dataclass(frozen=True)
class NoParams:
    pass


@dataclass(frozen=True)
class BuildContext:
    cfg: Config
    steps_per_epoch: int
    rewind_step: int
    output_layer: str


@dataclass(frozen=True)
class MethodSpec:
    pruner: Pruner
    reset: Reset
    stopper: AnyOf


@dataclass(frozen=True)
class Method:
    name: str
    params: type
    build: Callable[[BuildContext, Any], MethodSpec]
    description: str


METHODS: dict[str, Method] = {}


def register_method(name: str, params: type = NoParams) -> Callable:
    def wrap(build: Callable[[BuildContext, Any], MethodSpec]) -> Callable:
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered (by {METHODS[name].build.__module__})")
        if not dataclasses.is_dataclass(params):
            raise TypeError(f"method {name!r}: params must be a dataclass")
        METHODS[name] = Method(name, params, build, (build.__doc__ or "").strip().split("\n")[0])
        return build

    return wrap


def load_builtin_methods() -> dict[str, Method]:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    return METHODS


def get_method(name: str) -> Method:
    methods = load_builtin_methods()
    if name not in methods:
        raise ConfigError(f"unknown method {name!r}; known methods: {', '.join(sorted(methods))}")
    return methods[name]


def method_params(cfg: Config, name: str) -> Any:
    return from_dict(get_method(name).params, cfg.methods.get(name), f"methods.{name}")


def validate_method_overrides(cfg: Config) -> None:
    for name in cfg.methods:
        get_method(name)
        method_params(cfg, name)


def run_hash(cfg: Config, method: str) -> str:
    """Identity of one IMP run: dense identity + pruning + stopping + method and its hyperparameters."""
    params = method_params(cfg, method)
    return short_hash(dense_hash(cfg), canonical(cfg.pruning), canonical(cfg.stopping), f"method={method}", canonical(params))


# ---------------------------------------------------------------- shared building blocks
def excluded_layers(ctx: BuildContext) -> tuple[str, ...]:
    extra = (ctx.output_layer,) if ctx.cfg.pruning.exclude_output else ()
    return tuple(ctx.cfg.pruning.exclude_layers) + extra


def magnitude(ctx: BuildContext) -> Pruner:
    """Magnitude pruning of `pruning.fraction` per level, in `pruning.scope` (global or per layer)."""
    cls = MagnitudeGlobal if ctx.cfg.pruning.scope == "global" else MagnitudeLayer
    return cls(exclude=excluded_layers(ctx), fraction=ctx.cfg.pruning.fraction)


def pq_index(ctx: BuildContext) -> Pruner:
    pr = ctx.cfg.pruning
    return PQIndexPruner(exclude=excluded_layers(ctx), p=pr.pq_p, q=pr.pq_q, eta=pr.pq_eta, gamma=pr.pq_gamma, beta=pr.pq_beta)
