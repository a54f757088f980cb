"""InfCoP-IF: stop when ‖Δ(w) − Δ*‖₂ < ε, Δ the layer-to-layer correlation vector
(docs/method.md)."""

from __future__ import annotations

import numpy as np
import torch.nn as nn

from infcop.foundations.config import Config
from infcop.core.costs import Costs
from infcop.core.flows import FlowReference, information_flow
from infcop.core.models import flow_layers
from infcop.criteria.base import LevelContext, register_criterion
from infcop.criteria.flow import FlowCriterion


@register_criterion
class InformationFlow(FlowCriterion):
    name = "information_flow"
    key = "if_distance"
    label = "IF"
    default_threshold = 0.11
    flow_name = "information"

    def noise_floor(self, ref: FlowReference) -> float:
        return ref.information_noise

    def flow(self, ctx: LevelContext) -> np.ndarray:
        return information_flow(ctx.model, ctx.probe, ctx.aggregation)

    def entries(self, model: nn.Module) -> list[str]:
        names = list(flow_layers(model))
        return [f"{a}->{b}" for a, b in zip(names[:-1], names[1:])]

    def charge(self, costs: Costs, samples: int, flops_per_sample: float) -> None:
        costs.monitor_forward_samples += samples
        costs.monitor_flops += flops_per_sample * samples

    def sweep(self, cfg: Config) -> tuple[float, ...]:
        return cfg.stopping.diagnose_if_epsilons
