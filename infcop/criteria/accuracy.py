"""Stop once validation accuracy has recovered to the dense run's best validation accuracy,
less a tolerance τ."""

from __future__ import annotations

from infcop.criteria.base import Criterion, LevelContext, register_criterion


@register_criterion
class AccuracyTarget(Criterion):
    name = "accuracy_target"
    key = "val_acc"
    reason = "accuracy"
    label = "val acc ≥ dense best"
    reads_validation = True

    def __init__(self, tolerance: float = 0.0):
        super().__init__()
        self.tolerance = tolerance

    def begin_level(self, ctx: LevelContext) -> None:
        self.threshold = ctx.target_val_acc - self.tolerance

    def measure(self, ctx: LevelContext, val_acc: float) -> float:
        return val_acc

    def fires_at(self, value: float | None, threshold: float | None) -> bool:
        return value is not None and threshold is not None and value >= threshold

    def describe(self) -> dict:
        return {"key": self.key, "target": self.threshold, "tolerance": self.tolerance}
