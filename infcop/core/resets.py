"""Resets: what the surviving weights and the LR schedule restart from at each level.

A reset loads weights (or keeps them), applies the new mask, and returns where the level's LR
comes from: a position in the dense schedule (`start_step`) or a fixed LR. The dense snapshots
it may load arrive as a small value, so a reset never needs the dense run that made them. A reset
that draws (a fresh initialisation) draws from the level's generator, as a random pruner does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from infcop.core.masks import Mask, apply_mask
from infcop.core.schedule import Annealed, LRSchedule


@dataclass(frozen=True)
class Snapshots:
    """Dense-run states a reset may restore: θ₀ and θ_t (weights + BN buffers), and the step t; and
    `draw_init(s)`, the state θ₀ would be had the run's seed been s (a fresh initialisation)."""

    init: dict[str, torch.Tensor]
    rewind: dict[str, torch.Tensor]
    rewind_step: int
    draw_init: Callable[[int], dict[str, torch.Tensor]] | None = None


@dataclass(frozen=True)
class LevelLR:
    """The LR of the level's optimizer steps: `lr_at(start_step + i)` for its i-th step."""

    start_step: int
    lr_at: Callable[[int], float]


@dataclass(frozen=True)
class Reset:
    def apply(
        self,
        model: nn.Module,
        mask: Mask,
        snapshots: Snapshots,
        schedule: LRSchedule,
        generator: torch.Generator | None = None,
    ) -> LevelLR:
        raise NotImplementedError

    def schedule_start(self, rewind_step: int) -> int | None:
        """The dense-schedule step a level restarts from after this reset (None: a fixed
        LR, no schedule)."""
        return 0


@dataclass(frozen=True)
class ResetToInit(Reset):
    """Lottery ticket: surviving weights back to θ₀, LR schedule from step 0."""

    def apply(
        self,
        model: nn.Module,
        mask: Mask,
        snapshots: Snapshots,
        schedule: LRSchedule,
        generator: torch.Generator | None = None,
    ) -> LevelLR:
        model.load_state_dict(snapshots.init)
        apply_mask(model, mask)
        return LevelLR(0, schedule.lr_at)


@dataclass(frozen=True)
class RewindTo(Reset):
    """Weight rewinding: weights, BN state and LR position back to the dense snapshot at step t."""

    def apply(
        self,
        model: nn.Module,
        mask: Mask,
        snapshots: Snapshots,
        schedule: LRSchedule,
        generator: torch.Generator | None = None,
    ) -> LevelLR:
        model.load_state_dict(snapshots.rewind)
        apply_mask(model, mask)
        return LevelLR(snapshots.rewind_step, schedule.lr_at)

    def schedule_start(self, rewind_step: int) -> int | None:
        return rewind_step


@dataclass(frozen=True)
class KeepWeightsReplayLR(Reset):
    """Learning-rate rewinding: keep the trained weights, replay the LR schedule from step 0."""

    def apply(
        self,
        model: nn.Module,
        mask: Mask,
        snapshots: Snapshots,
        schedule: LRSchedule,
        generator: torch.Generator | None = None,
    ) -> LevelLR:
        apply_mask(model, mask)
        return LevelLR(0, schedule.lr_at)


@dataclass(frozen=True)
class KeepWeightsFixedLR(Reset):
    """Fine-tuning: keep the trained weights, train at a small constant LR."""

    lr: float = 1e-3

    def apply(
        self,
        model: nn.Module,
        mask: Mask,
        snapshots: Snapshots,
        schedule: LRSchedule,
        generator: torch.Generator | None = None,
    ) -> LevelLR:
        apply_mask(model, mask)
        lr = self.lr
        return LevelLR(0, lambda step: lr)

    def schedule_start(self, rewind_step: int) -> int | None:
        return None


@dataclass(frozen=True)
class AnnealedWithin(Reset):
    """Another reset, with the level's LR compressed into a budget of `epochs`: from the LR `inner`
    would start the level at, down to 0 at the end of the budget (`form`: linear or cosine)."""

    inner: Reset
    epochs: int
    steps_per_epoch: int
    form: str = "linear"

    def apply(
        self,
        model: nn.Module,
        mask: Mask,
        snapshots: Snapshots,
        schedule: LRSchedule,
        generator: torch.Generator | None = None,
    ) -> LevelLR:
        lr = self.inner.apply(model, mask, snapshots, schedule, generator)
        annealed = Annealed(lr.lr_at(lr.start_step), self.epochs * self.steps_per_epoch, self.form)
        return LevelLR(0, annealed.lr_at)

    def schedule_start(self, rewind_step: int) -> int | None:
        return None  # the level follows its own annealed LR, not the dense schedule
