"""Gradual magnitude pruning (Zhu & Gupta 2017) as an IMP schedule.

Instead of a constant 20% per level, the density after level k of n follows the cubic ramp
d_k = d_f + (1 - d_f)(1 - k/n)^3: large cuts early, gentle ones near the target d_f.
Weights are kept and the LR schedule replayed each level, as in lrr.
"""

from dataclasses import dataclass, field

import torch

from infcop.core.masks import Mask, density
from infcop.core.pruners import MagnitudeGlobal, Pruner, Weights
from infcop.core.resets import KeepWeightsReplayLR
from infcop.criteria import FixedEpochs
from infcop.methods import BuildContext, MethodSpec, Role, excluded_layers, register_method


@dataclass(frozen=True)
class Params:
    final_density: float = field(
        default=0.1, metadata={"gt": 0.0, "lt": 1.0, "doc": "density at the end of the ramp"}
    )
    ramp_levels: int = field(
        default=5, metadata={"min": 1, "doc": "levels the ramp takes to reach final_density"}
    )


@dataclass(frozen=True)
class CubicMagnitude(Pruner):
    final_density: float = 0.1
    levels: int = 5

    def target(self, k: int) -> float:
        return self.final_density + (1 - self.final_density) * (1 - k / self.levels) ** 3

    def next_mask(
        self, weights: Weights, mask: Mask, generator: torch.Generator | None = None
    ) -> Mask:
        now = density(mask)
        done = min(
            range(self.levels + 1), key=lambda k: abs(self.target(k) - now)
        )  # levels already pruned
        fraction = 1 - self.target(min(done + 1, self.levels)) / now
        return MagnitudeGlobal(exclude=self.exclude, fraction=max(fraction, 0.0)).next_mask(
            weights, mask
        )


def cubic_schedule(cfg, p: Params) -> str:
    return f"cubic ramp to density {p.final_density:g} over {p.ramp_levels} levels"


@register_method("gradual_magnitude", params=Params, role=Role.COMPETITOR, schedule=cubic_schedule)
def gradual_magnitude(ctx: BuildContext, p: Params) -> MethodSpec:
    """Gradual magnitude: cubic density ramp to final_density, keep weights + replay LR, T epochs."""
    pruner = CubicMagnitude(
        exclude=excluded_layers(ctx), final_density=p.final_density, levels=p.ramp_levels
    )
    reset = KeepWeightsReplayLR()
    return MethodSpec(pruner, reset, FixedEpochs(ctx.budget(reset)))
