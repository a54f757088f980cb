"""What the information-flow and gradient-flow criteria share: a distance to the dense reference
that must fall below ε (or ε times the dense noise floor, in relative mode)."""

from __future__ import annotations

import numpy as np
import torch.nn as nn

from infcop.core.costs import Costs
from infcop.core.flows import FlowReference, distance
from infcop.core.models import flow_layers
from infcop.core.train import timed
from infcop.criteria.base import Criterion, LevelContext


class FlowCriterion(Criterion):
    reason = "flow"
    needs_flow_reference = True
    flow_name = ""  # "information" or "gradient": its entry in FlowReference.seconds

    def __init__(self, threshold: float | None = None):
        super().__init__(threshold)
        self.scale = 1.0

    def noise_floor(self, ref: FlowReference) -> float:
        raise NotImplementedError

    def flow(self, ctx: LevelContext) -> np.ndarray:
        """This criterion's flow vector of the current network on the probe set."""
        raise NotImplementedError

    def charge(self, costs: Costs, samples: int, flops_per_sample: float) -> None:
        """Add the samples and FLOPs of measuring the flow on `samples` probe samples."""
        raise NotImplementedError

    def begin_level(self, ctx: LevelContext) -> None:
        if ctx.reference is None or ctx.probe is None:
            raise ValueError(f"{type(self).__name__} needs a probe set and a dense flow reference")
        self.scale = self.noise_floor(ctx.reference) if ctx.epsilon_mode == "relative" else 1.0

    def charge_setup(self, ctx: LevelContext) -> None:
        """The dense reference and its noise floor: this flow on both probe sets, through
        the dense network."""
        self.charge(ctx.costs, ctx.reference.samples, ctx.dense_flops_per_sample)
        ctx.costs.monitor_seconds += ctx.reference.seconds.get(self.flow_name, 0.0)

    def entries(self, model: nn.Module) -> list[str]:
        """What each entry of the flow vector is about (layer names)."""
        raise NotImplementedError

    def measure(self, ctx: LevelContext, val_acc: float) -> float | None:
        with timed(next(ctx.model.parameters()).device, ctx.costs, "monitor_seconds"):
            flow = self.flow(ctx)
        self.charge(ctx.costs, len(ctx.probe.y), ctx.flops_per_sample)
        undefined = [e for e, v in zip(self.entries(ctx.model), flow) if v != v]
        if undefined:
            ctx.notes.append(
                f"{self.label} undefined at {', '.join(undefined)} (a layer constant over "
                "the probe set or passing no gradient): the rule did not fire on it"
            )
            return None
        return distance(flow, getattr(ctx.reference, self.flow_name))

    def fires_at(self, value: float | None, threshold: float) -> bool:
        return value is not None and value < threshold * self.scale

    def describe(self) -> dict:
        return {
            "key": self.key,
            "epsilon": self.threshold,
            "threshold": self.threshold * self.scale,
        }
