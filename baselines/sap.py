"""SAP (Diao et al. 2023): PQ-index adaptive prune fraction, reset to the rewind point, fixed T.

p, q, η, γ, β come from `pruning.pq_*` in the config (defaults 0.5, 1, 0, 1, 0.9).
"""
from infcop.methods import BuildContext, MethodSpec, NoParams, pq_index, register_method
from infcop.resets import RewindTo
from infcop.stoppers import FixedEpochs


@register_method("sap")
def sap(ctx: BuildContext, p: NoParams) -> MethodSpec:
    """SAP: PQ-index adaptive pruning, reset to the rewind point, retrain T epochs."""
    return MethodSpec(pq_index(ctx), RewindTo(), FixedEpochs(ctx.cfg.training.epochs))
