"""Stopping criteria, one module each. Importing this package registers every module in it.

Adding a criterion: one module here with a `@register_criterion` class (see base.py for what it
declares), then use it in a method. Nothing else changes: epochs.csv, the records, W&B, the
diagnostic sweeps and the stop-reason tables all iterate over the registry.

From outside the package, a criterion comes in a plugin file (`study.plugins`, a study's
`baselines/`) or an installed package's `infcop.criteria` entry point; infcop/methods/registry.py
loads both with the methods.
"""

import importlib
import pkgutil

from infcop.criteria.base import (
    CAP,
    CRITERIA,
    Criterion,
    LevelContext,
    measurement_columns,
    register_criterion,
    stop_reasons,
)
from infcop.criteria.stopper import FixedEpochs, Stopper

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

# where each criterion from outside the package came from (infcop/methods/registry.py loads them)
SOURCES: dict[str, str] = {}


def criterion_source(name: str) -> str:
    """Where criterion `name` came from: a plugin file, an entry point, or a built-in module."""
    return SOURCES.get(name) or f"built-in {CRITERIA[name].__module__.replace('.', '/')}.py"


__all__ = [
    "CAP",
    "CRITERIA",
    "SOURCES",
    "Criterion",
    "FixedEpochs",
    "LevelContext",
    "Stopper",
    "criterion_source",
    "measurement_columns",
    "register_criterion",
    "stop_reasons",
]
