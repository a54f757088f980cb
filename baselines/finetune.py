"""Fine-tuning (Renda et al. 2020's baseline): keep trained weights, small constant LR."""

from dataclasses import dataclass, field

from infcop.core.resets import KeepWeightsFixedLR
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
    lr: float = field(default=1e-3, metadata={"gt": 0.0, "doc": "constant fine-tuning LR"})


@register_method("finetune", params=Params, role=Role.COMPETITOR, schedule=fraction_schedule)
def finetune(ctx: BuildContext, p: Params) -> MethodSpec:
    """Fine-tuning: keep the trained weights, retrain T epochs at a constant small LR."""
    reset = KeepWeightsFixedLR(p.lr)
    return MethodSpec(magnitude(ctx), reset, FixedEpochs(ctx.budget(reset)))
