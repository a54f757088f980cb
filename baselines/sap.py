"""SAP (Diao et al. 2023): PQ-index adaptive prune fraction, reset to the rewind point, retrain the
schedule that remains (T − t epochs, as wr).

p, q, η, γ, β come from the method's params where a variant sets them, else from `pruning.pq_*`
(defaults 0.5, 1, 0, 1, 0.9).
"""

from dataclasses import dataclass
from typing import ClassVar

from infcop.core.resets import RewindTo
from infcop.criteria import FixedEpochs
from infcop.methods import BuildContext, MethodSpec, Role, pq_index, pq_schedule, register_method
from infcop.methods.infcop import PQSettings


@dataclass(frozen=True)
class Params(PQSettings):
    hash_name: ClassVar[str] = (
        "NoParams"  # the run ids from before p, q became parameters stay valid
    )


@register_method("sap", params=Params, role=Role.COMPETITOR, schedule=pq_schedule)
def sap(ctx: BuildContext, p: Params) -> MethodSpec:
    """SAP: PQ-index adaptive pruning, reset to the rewind point, retrain the remaining T − t epochs."""
    reset = RewindTo()
    return MethodSpec(pq_index(ctx, p), reset, FixedEpochs(ctx.budget(reset)))
