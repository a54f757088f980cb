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
one file per competing method), so a new method is one file and nothing else. From outside the
package (docs/extending.md) it also imports, in this order:

* installed packages' entry points, groups `infcop.criteria` and `infcop.methods` (the value
  names a module, which registers when imported);
* the working directory's `baselines/` folder (a study directory's own, as `infcop init` writes
  it), unless it is a package (a checkout's own `baselines/`, with its `__init__.py`);
* `study.plugins` of the config (`load_methods(plugins=...)`, which `engine/spec.py` calls with
  every config it checks): files or folders, relative to the working directory.

A plugin file may register methods and criteria; it must register at least one (a folder's files
whose names start with `_` are skipped). Each method records where it came from (`source`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from infcop.core.pruners import Pruner
from infcop.core.schedule import point_to_step
from infcop.core.resets import Reset
from infcop.criteria import CRITERIA, SOURCES, Stopper
from infcop.foundations.config import Config, ConfigError
from infcop.foundations.plugins import (
    PluginError,
    display,
    entry_point_label,
    group,
    import_file,
    load_entry_point,
    plugin_files,
)

INFRASTRUCTURE = ("registry", "blocks")
# the built-in method packages, and the folder `infcop methods` names as their source
BUILT_IN = {"infcop.methods": "infcop/methods", "infcop.baselines": "baselines"}


class Role(str, Enum):
    INFCOP = "infcop"  # a variant of the method under test
    COMPETITOR = "competitor"  # a published IMP method it is compared with
    ABLATION = "ablation"  # InfCoP with one part changed, to locate a speedup
    CONTROL = "control"  # a sanity control (random pruning)


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

    @classmethod
    def priced(cls, cfg: Config, n_train: int, output_layer: str) -> "BuildContext":
        """The context of a method built to be priced or inspected, not run: the steps of
        `n_train` training samples per epoch and the config's rewind point, no seed."""
        steps = -(-n_train // cfg.training.batch_size)
        return cls(
            cfg=cfg,
            steps_per_epoch=steps,
            output_layer=output_layer,
            rewind_step=point_to_step(cfg.training.rewind_point, steps),
        )

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
        """Epochs a fixed-epoch method retrains after `reset`: `stopping.level_epochs`, by default
        the LR schedule left (`schedule_left`)."""
        return self._checked(
            reset, "stopping.level_epochs", self.cfg.stopping.level_epochs
        ) or self.schedule_left(reset)

    def cap(self, reset: Reset) -> int:
        """Epoch cap of an adaptive stopping rule after `reset`: `stopping.cap`, by
        default the budget."""
        return self._checked(reset, "stopping.cap", self.cfg.stopping.cap) or self.budget(reset)

    def _checked(self, reset: Reset, key: str, epochs: int) -> int:
        """`epochs`, unless it runs past the end of a cosine schedule (those epochs
        would train at LR 0)."""
        left, tc = self.schedule_left(reset), self.cfg.training
        if (
            epochs > left
            and tc.schedule == "cosine"
            and reset.schedule_start(self.rewind_step) is not None
        ):
            raise ConfigError(
                f"{key}: {epochs} epochs run past the end of the cosine LR schedule, which has "
                f"{left} epoch(s) left after a reset to step "
                f"{reset.schedule_start(self.rewind_step)} (training.epochs {tc.epochs}, "
                f"training.rewind_point {tc.rewind_point}); the extra epochs would train at LR 0. "
                f"Set {key} <= {left}, or 0 for the schedule that remains."
            )
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
    source: str = ""  # where it was registered: a built-in file, a plugin file, an entry point


METHODS: dict[str, Method] = {}
_LOADING: list[str] = []  # the source being imported, for the methods it registers
_LOADED: set[str] = set()  # built-in packages, plugin files and entry points imported so far


def register_method(
    name: str,
    params: type = NoParams,
    *,
    role: Role,
    schedule: Callable[[Config, Any], str],
    ablates: tuple[str, ...] = (),
) -> Callable:
    def wrap(build: Callable[[BuildContext, Any], MethodSpec]) -> Callable:
        old = METHODS.get(name)
        where = (build.__module__, build.__qualname__)
        if old and (old.build.__module__, old.build.__qualname__) != where:
            raise ValueError(f"method {name!r} is already registered (by {old.source})")
        if not dataclasses.is_dataclass(params):
            raise TypeError(f"method {name!r}: params must be a dataclass")
        METHODS[name] = Method(
            name,
            params,
            build,
            (build.__doc__ or "").strip().split("\n")[0],
            Role(role),
            schedule,
            tuple(ablates),
            _source_of(build),
        )
        return build

    return wrap


def _source_of(build: Callable) -> str:
    package, _, module = build.__module__.rpartition(".")
    if package in BUILT_IN:
        return f"built-in {BUILT_IN[package]}/{module}.py"
    return _LOADING[-1] if _LOADING else build.__module__


def load_methods(plugins: Sequence[str] = ()) -> dict[str, Method]:
    """Import every method module (each once) and return the registry: the built-in ones, installed
    entry points, the working directory's `baselines/` and the files and folders of `plugins`."""
    for package in BUILT_IN:
        _load_package(package)
    for ep in (*group("infcop.criteria"), *group("infcop.methods")):
        _load_once(ep.value, source=entry_point_label(ep), load=lambda: load_entry_point(ep))
    # a checkout's own baselines/ is a package (its __init__.py): built in, whether or not the
    # installed harness is this checkout
    study_baselines = Path("baselines")
    if study_baselines.is_dir() and not (study_baselines / "__init__.py").exists():
        _load_files(study_baselines, key="baselines/")
    for i, path in enumerate(plugins):
        _load_files(Path(path), key=f"study.plugins[{i}]")
    return METHODS


def _load_package(package: str) -> None:
    if package in _LOADED:
        return
    root = importlib.import_module(package)
    for module in pkgutil.iter_modules(root.__path__):
        if module.name not in INFRASTRUCTURE:
            importlib.import_module(f"{package}.{module.name}")
    _LOADED.add(package)


def _load_files(path: Path, key: str) -> None:
    for file in plugin_files(path, key):
        _load_once(str(file), source=display(file), load=lambda: import_file(file))


def _load_once(ident: str, source: str, load: Callable[[], object]) -> None:
    """Import a plugin (`load`) unless `ident` was imported already; the methods and criteria it
    registers record `source`. It must register at least one, and a failed one registers nothing."""
    if ident in _LOADED:
        return
    methods, criteria = dict(METHODS), dict(CRITERIA)
    try:
        with _source(source):
            load()
        replaced = [name for name, c in criteria.items() if CRITERIA[name] is not c]
        if replaced:
            first = SOURCES.get(replaced[0], criteria[replaced[0]].__module__)
            raise PluginError(
                source, f"criterion {replaced[0]!r} is already registered (by {first})"
            )
        if METHODS.keys() == methods.keys() and CRITERIA.keys() == criteria.keys():
            raise PluginError(
                source,
                "registers no method (@register_method) and no criterion (@register_criterion)",
            )
    except ConfigError:
        for registry, saved in ((METHODS, methods), (CRITERIA, criteria)):
            registry.clear()
            registry.update(saved)
        raise
    SOURCES.update(dict.fromkeys(CRITERIA.keys() - criteria.keys(), source))
    _LOADED.add(ident)


@contextlib.contextmanager
def _source(label: str) -> Iterator[None]:
    _LOADING.append(label)
    try:
        yield
    finally:
        _LOADING.pop()


def get_method(name: str) -> Method:
    methods = load_methods()
    if name not in methods:
        raise ConfigError(f"unknown method {name!r}; known methods: {', '.join(sorted(methods))}")
    return methods[name]
