"""InfCoP-GF: stop when ‖g(w) − g*‖₂ < ε, g the per-layer mean |∂L/∂W| over alive weights
(docs/method.md)."""

from __future__ import annotations

import numpy as np
import torch.nn as nn

from infcop.foundations.config import Config
from infcop.core.costs import Costs
from infcop.core.flows import FlowReference, gradient_flow
from infcop.core.models import flow_layers
from infcop.criteria.base import LevelContext, register_criterion
from infcop.criteria.flow import FlowCriterion


@register_criterion
class GradientFlow(FlowCriterion):
    name = "gradient_flow"
    key = "gf_distance"
    label = "GF"
    default_threshold = 0.5
    flow_name = "gradient"

    def noise_floor(self, ref: FlowReference) -> float:
        return ref.gradient_noise

    def flow(self, ctx: LevelContext) -> np.ndarray:
        return gradient_flow(ctx.model, ctx.probe, ctx.mask)

    def entries(self, model: nn.Module) -> list[str]:
        return list(flow_layers(model))

    def charge(self, costs: Costs, samples: int, flops_per_sample: float) -> None:
        costs.monitor_backward_samples += samples
        costs.monitor_flops += 3 * flops_per_sample * samples  # forward + backward

    def sweep(self, cfg: Config) -> tuple[float, ...]:
        return cfg.stopping.diagnose_gf_epsilons
