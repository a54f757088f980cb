"""Learning-rate rewinding (Renda et al. 2020): keep trained weights, replay the LR schedule."""

from infcop.core.resets import KeepWeightsReplayLR
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


@register_method("lrr", role=Role.COMPETITOR, schedule=fraction_schedule)
def lrr(ctx: BuildContext, p: NoParams) -> MethodSpec:
    """LR rewinding: keep the trained weights, replay the LR schedule from step 0 for T epochs."""
    reset = KeepWeightsReplayLR()
    return MethodSpec(magnitude(ctx), reset, FixedEpochs(ctx.budget(reset)))
