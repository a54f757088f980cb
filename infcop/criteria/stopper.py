"""A stopper: stop a level when any of its criteria fires, or at its epoch cap."""

from __future__ import annotations

from dataclasses import dataclass, field

from infcop.criteria.base import CAP, Criterion, LevelContext


@dataclass
class Stopper:
    """Stop when any criterion fires (the first listed wins a tie), or at `cap` epochs."""

    criteria: list[Criterion] = field(default_factory=list)
    cap: int = 1

    def begin_level(self, ctx: LevelContext) -> None:
        for c in self.criteria:
            c.begin_level(ctx)

    def measure(self, ctx: LevelContext, val_acc: float) -> dict[str, float | None]:
        return {c.key: c.measure(ctx, val_acc) for c in self.criteria}

    def decide(self, measurements: dict[str, float | None], epoch: int) -> str | None:
        for c in self.criteria:
            if c.fires(measurements.get(c.key)):
                return c.reason
        return CAP if epoch >= self.cap else None

    @property
    def needs_flow_reference(self) -> bool:
        return any(c.needs_flow_reference for c in self.criteria)

    @property
    def reads_training_gradient(self) -> bool:
        return any(c.reads_training_gradient for c in self.criteria)

    @property
    def reads_validation(self) -> bool:
        return any(c.reads_validation for c in self.criteria)

    def charge_setup(self, ctx: LevelContext) -> None:
        for c in self.criteria:
            c.charge_setup(ctx)

    def describe(self) -> dict:
        return {"cap": self.cap, "criteria": [c.describe() for c in self.criteria]}


class FixedEpochs(Stopper):
    """Retrain exactly `epochs` epochs (the cap is the budget)."""

    def __init__(self, epochs: int):
        super().__init__([], epochs)
