"""What a stopping criterion is, and the registry every criterion declares itself in.

After every epoch of a level each criterion *measures* its quantity (a flow distance, a mask
distance, validation accuracy); the stopper then *decides*. Keeping the two apart lets
diagnostic mode measure everything and evaluate every rule on the record without acting on it.

A criterion class declares, as class attributes, everything the rest of the harness needs:
`name` (registry name, the key of its diagnosis), `key` (its column in epochs.csv, the record and
W&B), `reason` (the stop reason it writes), `label` (tables), `default_threshold` and
`needs_flow_reference` (the engine then prepares a probe set and the dense flow reference) and
`reads_validation` (the validation pass after each epoch is then charged to the rule).
The epoch columns, stop reasons, diagnostic sweeps and tables are all derived from this registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch.nn as nn

from infcop.foundations.config import Config
from infcop.core.costs import Costs
from infcop.core.flows import FlowReference, Probe
from infcop.core.masks import Mask
from infcop.core.pruners import Pruner

CAP = "cap"  # the stop reason of a level that ran to its epoch cap


@dataclass
class LevelContext:
    """What criteria may look at during one level."""

    model: nn.Module
    mask: Mask
    probe: Probe | None
    reference: FlowReference | None
    target_val_acc: float
    costs: Costs
    flops_per_sample: float
    aggregation: str = "signed"
    epsilon_mode: str = "absolute"
    dense_flops_per_sample: float = 0.0
    notes: list[str] = field(
        default_factory=list
    )  # what a criterion could not measure, for the record


class Criterion:
    name: ClassVar[str] = ""
    key: ClassVar[str] = ""
    reason: ClassVar[str] = ""
    label: ClassVar[str] = ""
    default_threshold: ClassVar[float | None] = None
    needs_flow_reference: ClassVar[bool] = False
    reads_validation: ClassVar[bool] = False
    reads_training_gradient: ClassVar[bool] = False  # the .grad the last training step left

    def __init__(self, threshold: float | None = None):
        self.threshold = self.default_threshold if threshold is None else threshold

    def begin_level(self, ctx: LevelContext) -> None:
        """Called once before a level's first epoch."""

    def charge_setup(self, ctx: LevelContext) -> None:
        """Charge to `ctx.costs` the one-off work this criterion needed before the
        run's first level."""

    def measure(self, ctx: LevelContext, val_acc: float) -> float | None:
        raise NotImplementedError

    def fires_at(self, value: float | None, threshold: float) -> bool:
        """Whether a measured value meets `threshold` (None or NaN never does)."""
        raise NotImplementedError

    def fires(self, value: float | None) -> bool:
        return self.fires_at(value, self.threshold)

    def describe(self) -> dict:
        return {"key": self.key, "threshold": self.threshold}

    @classmethod
    def for_diagnosis(cls, cfg: Config, pruner: Pruner) -> "Criterion | None":
        """This criterion at its defaults, as a diagnostic run monitors it beside the method's own
        (None: it means nothing for this method's pruner)."""
        return cls()

    def sweep(self, cfg: Config) -> tuple[float, ...]:
        """Thresholds a diagnostic run evaluates on the recorded values (empty: none)."""
        return ()

    def training_split_samples(self, n_train: int) -> tuple[int, int]:
        """(per check, once per run) forward samples this criterion runs through the network on
        top of the probe: what `infcop plan` prices for it. Probe measurements count as (0, 0)."""
        return 0, 0


CRITERIA: dict[str, type[Criterion]] = {}


def register_criterion(cls: type[Criterion]) -> type[Criterion]:
    """Class decorator: make a criterion known to the engine, the records and the tables."""
    for attr in ("name", "key", "reason", "label"):
        if not getattr(cls, attr):
            raise TypeError(f"criterion {cls.__name__} must declare `{attr}`")
    clash = next((c for c in CRITERIA.values() if c.name != cls.name and c.key == cls.key), None)
    if clash is not None:
        raise ValueError(f"criterion {cls.name!r}: key {cls.key!r} is already {clash.name!r}'s")
    if cls.name in CRITERIA and CRITERIA[cls.name].__qualname__ != cls.__qualname__:
        raise ValueError(
            f"criterion {cls.name!r} is already registered (by {CRITERIA[cls.name].__module__})"
        )
    CRITERIA[cls.name] = cls
    return cls


def measurement_columns() -> list[str]:
    """Per-epoch measurement columns, one per registered criterion (validation accuracy is
    always recorded)."""
    return [c.key for c in CRITERIA.values() if c.key != "val_acc"]


def stop_reasons() -> tuple[str, ...]:
    """Every stop reason a level can record: each criterion's, then the cap."""
    return tuple(dict.fromkeys(c.reason for c in CRITERIA.values())) + (CAP,)
