"""Weight rewinding / late resetting (Frankle et al. 2020).

Weights, BN state and LR schedule go back to the dense snapshot at `training.rewind_point`
(epoch or step t); retraining covers the rest of the schedule, T − t epochs.
"""

from infcop.core.resets import RewindTo
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


@register_method("wr", role=Role.COMPETITOR, schedule=fraction_schedule)
def wr(ctx: BuildContext, p: NoParams) -> MethodSpec:
    """Weight rewinding to step t of dense training; retrain the remaining T − t epochs."""
    reset = RewindTo()
    return MethodSpec(magnitude(ctx), reset, FixedEpochs(ctx.budget(reset)))
