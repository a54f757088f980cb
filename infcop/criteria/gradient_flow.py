"""InfCoP-GF: stop when ‖g(w) − g*‖₂ < ε, g the per-layer mean |∂L/∂W| over alive weights (docs/method.md)."""
from __future__ import annotations

from infcop.config import Config
from infcop.core.flows import FlowReference, distance, gradient_flow
from infcop.criteria.base import LevelContext, register_criterion
from infcop.criteria.flow import FlowCriterion


@register_criterion
class GradientFlow(FlowCriterion):
    name = "gradient_flow"
    key = "gf_distance"
    label = "GF"
    default_threshold = 0.5

    def noise_floor(self, ref: FlowReference) -> float:
        return ref.gradient_noise

    def distance(self, ctx: LevelContext) -> float:
        d = distance(gradient_flow(ctx.model, ctx.probe, ctx.mask), ctx.reference.gradient)
        n = len(ctx.probe.y)
        ctx.costs.monitor_backward_samples += n
        ctx.costs.monitor_flops += 3 * ctx.flops_per_sample * n
        return d

    def sweep(self, cfg: Config) -> tuple[float, ...]:
        return cfg.stopping.diagnose_gf_epsilons
