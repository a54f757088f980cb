"""Lottery-ticket IMP (Frankle & Carbin 2019): magnitude 20%, reset to θ₀, fixed T epochs."""
from infcop.methods import BuildContext, MethodSpec, NoParams, magnitude, register_method
from infcop.resets import ResetToInit
from infcop.stoppers import FixedEpochs


@register_method("lth")
def lth(ctx: BuildContext, p: NoParams) -> MethodSpec:
    """Lottery ticket: magnitude pruning, reset to θ₀ and LR step 0, retrain T epochs."""
    return MethodSpec(magnitude(ctx), ResetToInit(), FixedEpochs(ctx.cfg.training.epochs))
