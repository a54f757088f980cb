"""Lottery-ticket IMP (Frankle & Carbin 2019): magnitude 20%, reset to θ₀, fixed T epochs."""

from infcop.core.resets import ResetToInit
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


@register_method("lth", role=Role.COMPETITOR, schedule=fraction_schedule)
def lth(ctx: BuildContext, p: NoParams) -> MethodSpec:
    """Lottery ticket: magnitude pruning, reset to θ₀ and LR step 0, retrain T epochs."""
    reset = ResetToInit()
    return MethodSpec(magnitude(ctx), reset, FixedEpochs(ctx.budget(reset)))
