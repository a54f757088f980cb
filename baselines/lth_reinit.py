"""The lottery-ticket control (Frankle & Carbin 2019, Sec. 2): IMP's masks, but the survivors are
re-drawn from a fresh random initialisation at every level instead of reset to θ₀.

The fresh draw is θ₀'s distribution under another seed, taken from the level's reset stream
(seed, level, 13): reproducible from the run seed and the level, new at every level, never θ₀.
If winning tickets exist, lth should beat this at the same density.

The masks are this run's own IMP masks: at level 1 they are lth's (both prune the shared dense
network), later they come from this run's retrained weights. Frankle & Carbin re-drew lth's own
masks; using those would make this run wait for lth's, a dependency between runs
the DAG does not have.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn

from infcop.core.masks import Mask, apply_mask
from infcop.core.resets import LevelLR, Reset, Snapshots
from infcop.core.schedule import LRSchedule
from infcop.criteria import FixedEpochs
from infcop.methods import (
    BuildContext,
    MethodSpec,
    NoParams,
    Role,
    fraction_schedule,
    magnitude,
    register_method,
)


@dataclass(frozen=True)
class ResetToFreshInit(Reset):
    """Survivors from a fresh random initialisation drawn from `generator`; LR
    schedule from step 0."""

    def apply(
        self,
        model: nn.Module,
        mask: Mask,
        snapshots: Snapshots,
        schedule: LRSchedule,
        generator: torch.Generator | None = None,
    ) -> LevelLR:
        if generator is None or snapshots.draw_init is None:
            raise ValueError(
                "a fresh initialisation needs the level's generator and snapshots.draw_init"
            )
        init_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        model.load_state_dict(snapshots.draw_init(init_seed))
        apply_mask(model, mask)
        return LevelLR(0, schedule.lr_at)


@register_method("lth_reinit", role=Role.CONTROL, schedule=fraction_schedule)
def lth_reinit(ctx: BuildContext, p: NoParams) -> MethodSpec:
    """Lottery-ticket control: magnitude pruning, survivors re-drawn at random each level, retrain T epochs."""
    reset = ResetToFreshInit()
    return MethodSpec(magnitude(ctx), reset, FixedEpochs(ctx.budget(reset)))
