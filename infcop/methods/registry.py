"""The method registry: a method is a named composition pruner x reset x stopper that declares
what the statistics need to compare it.

    @register_method("my_method", params=Params, role=Role.COMPETITOR, schedule=magnitude_schedule)
    def my_method(ctx: BuildContext, p: Params) -> MethodSpec:
        return MethodSpec(magnitude(ctx), RewindTo(), FixedEpochs(ctx.cfg.training.epochs))

* `params`: a frozen dataclass of hyperparameters; `methods: {my_method: {...}}` in a config, or a
  study variant's `params`, are validated against it and enter the run's hash.
* `role`: InfCoP variant, competitor, ablation or control. Every InfCoP variant in a study is
  compared with every other method of the study that prunes on the same density schedule.
* `schedule(cfg, params) -> str`: what makes two methods reach the same densities, e.g.
  "magnitude-style 0.2 of survivors per level". Equal strings mean paired densities.
* `ablates`: for an ablation of one InfCoP method (e.g. its θ₀-reset twin), the methods it is an
  ablation of; empty means "every InfCoP variant on its schedule".

`load_methods()` imports every module of this package other than the infrastructure (InfCoP and
its ablations) and every module of `infcop.baselines` (the repository's top-level `baselines/`,
one file per competing method), so a new method is one file and nothing else.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from infcop.foundations.config import Config, ConfigError
from infcop.core.pruners import Pruner
from infcop.core.resets import Reset
from infcop.criteria import Stopper

INFRASTRUCTURE = ("registry", "blocks")


class Role(str, Enum):
    INFCOP = "infcop"          # a variant of the method under test
    COMPETITOR = "competitor"  # a published IMP method it is compared with
    ABLATION = "ablation"      # InfCoP with one part changed, to locate a speedup
    CONTROL = "control"        # a sanity control (random pruning)


@dataclass(frozen=True)
class NoParams:
    pass


@dataclass(frozen=True)
class BuildContext:
    cfg: Config
    steps_per_epoch: int
    rewind_step: int
    output_layer: str
    seed: int | None = None  # the run's seed (None where a method is built to be priced, not run)

    def schedule_left(self, reset: Reset) -> int:
        """Whole epochs of the dense LR schedule left after `reset`: T after a reset to θ₀ or an LR
        replay, T − t after a rewind to step t, T for a fixed-LR reset. A method that follows the
        schedule and trains longer would train at its final LR (0 for cosine)."""
        start = reset.schedule_start(self.rewind_step)
        epochs = self.cfg.training.epochs
        if start is None:
            return epochs
        return max(1, -(-(epochs * self.steps_per_epoch - start) // self.steps_per_epoch))

    def budget(self, reset: Reset) -> int:
        """Epochs a fixed-epoch method retrains after `reset`: `stopping.level_epochs`, by default the
        LR schedule left (`schedule_left`)."""
        return self._checked(reset, "stopping.level_epochs", self.cfg.stopping.level_epochs) or self.schedule_left(reset)

    def cap(self, reset: Reset) -> int:
        """Epoch cap of an adaptive stopping rule after `reset`: `stopping.cap`, by default the budget."""
        return self._checked(reset, "stopping.cap", self.cfg.stopping.cap) or self.budget(reset)

    def _checked(self, reset: Reset, key: str, epochs: int) -> int:
        """`epochs`, unless it runs past the end of a cosine schedule (those epochs would train at LR 0)."""
        left, tc = self.schedule_left(reset), self.cfg.training
        if epochs > left and tc.schedule == "cosine" and reset.schedule_start(self.rewind_step) is not None:
            raise ConfigError(
                f"{key}: {epochs} epochs run past the end of the cosine LR schedule, which has {left} "
                f"epoch(s) left after a reset to step {reset.schedule_start(self.rewind_step)} "
                f"(training.epochs {tc.epochs}, training.rewind_point {tc.rewind_point}); the extra epochs would "
                f"train at LR 0. Set {key} <= {left}, or 0 for the schedule that remains.")
        return epochs


@dataclass(frozen=True)
class MethodSpec:
    pruner: Pruner
    reset: Reset
    stopper: Stopper

    def for_level(self, level: int) -> "MethodSpec":
        """The parts that prune, reset and train `level` (1-based): these, unless a method varies
        them by level."""
        return self


@dataclass(frozen=True)
class Method:
    name: str
    params: type
    build: Callable[[BuildContext, Any], MethodSpec]
    description: str
    role: Role
    schedule: Callable[[Config, Any], str]
    ablates: tuple[str, ...] = ()


METHODS: dict[str, Method] = {}


def register_method(name: str, params: type = NoParams, *, role: Role, schedule: Callable[[Config, Any], str],
                    ablates: tuple[str, ...] = ()) -> Callable:
    def wrap(build: Callable[[BuildContext, Any], MethodSpec]) -> Callable:
        if name in METHODS and METHODS[name].build.__qualname__ != build.__qualname__:
            raise ValueError(f"method {name!r} is already registered (by {METHODS[name].build.__module__})")
        if not dataclasses.is_dataclass(params):
            raise TypeError(f"method {name!r}: params must be a dataclass")
        METHODS[name] = Method(name, params, build, (build.__doc__ or "").strip().split("\n")[0], Role(role),
                               schedule, tuple(ablates))
        return build

    return wrap


def load_methods() -> dict[str, Method]:
    """Import every built-in method module (once) and return the registry."""
    for name in ("infcop.methods", "infcop.baselines"):
        package = importlib.import_module(name)
        for module in pkgutil.iter_modules(package.__path__):
            if module.name not in INFRASTRUCTURE:
                importlib.import_module(f"{name}.{module.name}")
    return METHODS


def get_method(name: str) -> Method:
    methods = load_methods()
    if name not in methods:
        raise ConfigError(f"unknown method {name!r}; known methods: {', '.join(sorted(methods))}")
    return methods[name]
