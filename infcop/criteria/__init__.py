"""Stopping criteria, one module each. Importing this package registers every module in it.

Adding a criterion: one module here with a `@register_criterion` class (see base.py for what it
declares), then use it in a method. Nothing else changes: epochs.csv, the records, W&B, the
diagnostic sweeps and the stop-reason tables all iterate over the registry.
"""
import importlib
import pkgutil

from infcop.criteria.base import CAP, CRITERIA, Criterion, LevelContext, measurement_columns, register_criterion, stop_reasons
from infcop.criteria.stopper import FixedEpochs, Stopper

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["CAP", "CRITERIA", "Criterion", "FixedEpochs", "LevelContext", "Stopper", "measurement_columns",
           "register_criterion", "stop_reasons"]
