"""Budgeted IMP (Zimmer, Spiegel & Pokutta, ICLR 2023, "How I Learned to Stop Worrying and Love
Retraining"): a short retraining budget per level, with the LR annealed to zero within it.

After the rewind (as wr), each level retrains exactly `epochs` (k) epochs, the LR falling from the
level's starting LR to 0 over those k epochs, linearly (their schedule) or along a half cosine.
Unlike a truncated schedule (fixed_same_reset with fewer epochs), the last step of a short budget
trains at a small LR, which is what lets short retraining recover.
"""

from dataclasses import dataclass, field

from infcop.core.resets import AnnealedWithin, RewindTo
from infcop.core.schedule import ANNEAL_FORMS
from infcop.criteria import FixedEpochs
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
    epochs: int | None = field(
        default=None,
        metadata={
            "min": 1,
            "doc": "k, the epochs each level retrains; unset: the schedule left after the rewind "
            "(T − t)",
        },
    )
    form: str = field(
        default="linear",
        metadata={"choices": ANNEAL_FORMS, "doc": "how the LR falls to 0 within the k epochs"},
    )


@register_method("budgeted", params=Params, role=Role.COMPETITOR, schedule=fraction_schedule)
def budgeted(ctx: BuildContext, p: Params) -> MethodSpec:
    """Budgeted IMP: magnitude pruning, rewind, k epochs per level, LR annealed to 0 within them."""
    rewind = RewindTo()
    k = p.epochs or ctx.budget(rewind)
    reset = AnnealedWithin(rewind, epochs=k, steps_per_epoch=ctx.steps_per_epoch, form=p.form)
    return MethodSpec(magnitude(ctx), reset, FixedEpochs(k))
