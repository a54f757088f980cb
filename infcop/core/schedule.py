"""Learning-rate schedules as pure functions of the optimizer step.

A schedule that is a function of the step (not an object mutated per epoch) makes every reset
exact: rewinding to step t means "continue from lr_at(t)", and a resumed run recomputes the LR
instead of restoring scheduler state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infcop.foundations.config import TrainingConfig, parse_point


@dataclass(frozen=True)
class LRSchedule:
    base_lr: float
    total_steps: int
    kind: str = "constant"
    milestones: tuple[float, ...] = ()
    gamma: float = 0.1

    @classmethod
    def from_config(cls, tc: TrainingConfig, steps_per_epoch: int) -> "LRSchedule":
        return cls(tc.lr, tc.epochs * steps_per_epoch, tc.schedule, tuple(tc.milestones), tc.gamma)

    def lr_at(self, step: int) -> float:
        """LR used by optimizer step `step` (0-based); past the end the final value holds."""
        step = min(max(step, 0), self.total_steps)
        if self.kind == "constant":
            return self.base_lr
        if self.kind == "step":
            drops = sum(step >= round(m * self.total_steps) for m in self.milestones)
            return self.base_lr * self.gamma**drops
        if self.kind == "cosine":
            return 0.5 * self.base_lr * (1 + math.cos(math.pi * step / self.total_steps))
        raise ValueError(f"unknown schedule {self.kind!r}")


ANNEAL_FORMS = ("linear", "cosine")


@dataclass(frozen=True)
class Annealed:
    """An LR that falls from `start_lr` to 0 over `total_steps` optimizer steps: linearly (budgeted
    retraining, Zimmer, Spiegel & Pokutta 2023) or along a half cosine. Past the end it stays 0."""

    start_lr: float
    total_steps: int
    form: str = "linear"

    def lr_at(self, step: int) -> float:
        done = min(max(step, 0), self.total_steps) / self.total_steps
        if self.form == "linear":
            return self.start_lr * (1 - done)
        if self.form == "cosine":
            return 0.5 * self.start_lr * (1 + math.cos(math.pi * done))
        raise ValueError(f"unknown annealing form {self.form!r}; known: {', '.join(ANNEAL_FORMS)}")


def point_to_step(text: str, steps_per_epoch: int) -> int:
    n, unit = parse_point(text)
    return n * steps_per_epoch if unit == "ep" else n
