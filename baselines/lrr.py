"""Learning-rate rewinding (Renda et al. 2020): keep trained weights, replay the LR schedule."""
from infcop.methods import BuildContext, MethodSpec, NoParams, magnitude, register_method
from infcop.resets import KeepWeightsReplayLR
from infcop.stoppers import FixedEpochs


@register_method("lrr")
def lrr(ctx: BuildContext, p: NoParams) -> MethodSpec:
    """LR rewinding: keep the trained weights, replay the LR schedule from step 0 for T epochs."""
    return MethodSpec(magnitude(ctx), KeepWeightsReplayLR(), FixedEpochs(ctx.cfg.training.epochs))
