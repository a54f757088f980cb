"""InfCoP-IF: stop when ‖Δ(w) − Δ*‖₂ < ε, Δ the layer-to-layer correlation vector (docs/method.md)."""
from __future__ import annotations

from infcop.config import Config
from infcop.core.flows import FlowReference, distance, information_flow
from infcop.criteria.base import LevelContext, register_criterion
from infcop.criteria.flow import FlowCriterion


@register_criterion
class InformationFlow(FlowCriterion):
    name = "information_flow"
    key = "if_distance"
    label = "IF"
    default_threshold = 0.11

    def noise_floor(self, ref: FlowReference) -> float:
        return ref.information_noise

    def distance(self, ctx: LevelContext) -> float:
        d = distance(information_flow(ctx.model, ctx.probe, ctx.aggregation), ctx.reference.information)
        n = len(ctx.probe.y)
        ctx.costs.monitor_forward_samples += n
        ctx.costs.monitor_flops += ctx.flops_per_sample * n
        return d

    def sweep(self, cfg: Config) -> tuple[float, ...]:
        return cfg.stopping.diagnose_if_epsilons
