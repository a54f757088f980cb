"""Early-bird stopping (You et al. 2020), adapted to unstructured IMP.

Each epoch, draw the mask the pruner would produce next; stop once the newest of the last
`window` masks is within `epsilon` of every other, the distance normalised by the kept count.
"""

from dataclasses import dataclass, field

from infcop.core.resets import ResetToInit, RewindTo
from infcop.criteria import Stopper
from infcop.criteria.mask_stability import MaskStability
from infcop.methods import (
    BuildContext,
    MethodSpec,
    Role,
    fraction_schedule,
    magnitude,
    register_method,
)


@dataclass(frozen=True)
class Params:
    window: int = field(default=5, metadata={"min": 2, "doc": "masks kept in the FIFO"})
    epsilon: float = field(
        default=MaskStability.default_threshold,
        metadata={"gt": 0.0, "lt": 1.0, "doc": "max mask distance to stop"},
    )
    reset: str = field(
        default="init",
        metadata={"choices": ("init", "rewind"), "doc": "as lth (init) or wr (rewind)"},
    )


@register_method("early_bird", params=Params, role=Role.COMPETITOR, schedule=fraction_schedule)
def early_bird(ctx: BuildContext, p: Params) -> MethodSpec:
    """Early-bird: magnitude pruning, reset as lth, stop when the next mask is stable (or at the cap)."""
    pruner = magnitude(ctx)
    reset = ResetToInit() if p.reset == "init" else RewindTo()
    return MethodSpec(
        pruner, reset, Stopper([MaskStability(pruner, p.window, p.epsilon)], ctx.cap(reset))
    )
