"""Random-pruning control (Blalock et al. 2020 recommend it): random 20% per layer, as lth otherwise."""
from infcop.methods import BuildContext, MethodSpec, NoParams, excluded_layers, register_method
from infcop.pruners import RandomPruner
from infcop.resets import ResetToInit
from infcop.stoppers import FixedEpochs


@register_method("random")
def random(ctx: BuildContext, p: NoParams) -> MethodSpec:
    """Random control: prune a random 20% of each layer's survivors, reset to θ₀, retrain T epochs."""
    pruner = RandomPruner(exclude=excluded_layers(ctx), fraction=ctx.cfg.pruning.fraction)
    return MethodSpec(pruner, ResetToInit(), FixedEpochs(ctx.cfg.training.epochs))
