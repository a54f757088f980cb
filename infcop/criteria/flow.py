"""What the information-flow and gradient-flow criteria share: a distance to the dense reference
that must fall below ε (or ε times the dense noise floor, in relative mode)."""
from __future__ import annotations

from infcop.core.flows import FlowReference
from infcop.core.train import timed
from infcop.criteria.base import Criterion, LevelContext


class FlowCriterion(Criterion):
    reason = "flow"
    needs_flow_reference = True

    def __init__(self, threshold: float | None = None):
        super().__init__(threshold)
        self.scale = 1.0

    def noise_floor(self, ref: FlowReference) -> float:
        raise NotImplementedError

    def distance(self, ctx: LevelContext) -> float:
        raise NotImplementedError

    def begin_level(self, ctx: LevelContext) -> None:
        if ctx.reference is None or ctx.probe is None:
            raise ValueError(f"{type(self).__name__} needs a probe set and a dense flow reference")
        self.scale = self.noise_floor(ctx.reference) if ctx.epsilon_mode == "relative" else 1.0

    def measure(self, ctx: LevelContext, val_acc: float) -> float:
        with timed(next(ctx.model.parameters()).device, ctx.costs, "monitor_seconds"):
            return self.distance(ctx)

    def fires_at(self, value: float | None, threshold: float) -> bool:
        return value is not None and value == value and value < threshold * self.scale  # NaN never stops

    def describe(self) -> dict:
        return {"key": self.key, "epsilon": self.threshold, "threshold": self.threshold * self.scale}
