"""Random-pruning control (Blalock et al. 2020 recommend it): random 20% per layer,
as lth otherwise."""

from infcop.core.pruners import RandomPruner
from infcop.core.resets import ResetToInit
from infcop.criteria import FixedEpochs
from infcop.methods import (
    BuildContext,
    MethodSpec,
    NoParams,
    Role,
    excluded_layers,
    fraction_schedule,
    register_method,
)


@register_method("random", role=Role.CONTROL, schedule=fraction_schedule)
def random(ctx: BuildContext, p: NoParams) -> MethodSpec:
    """Random control: prune a random 20% of each layer's survivors, reset to θ₀, retrain T epochs."""
    pruner = RandomPruner(exclude=excluded_layers(ctx), fraction=ctx.cfg.pruning.fraction)
    reset = ResetToInit()
    return MethodSpec(pruner, reset, FixedEpochs(ctx.budget(reset)))
