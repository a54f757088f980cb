"""Stoppers: when a level's retraining ends.

A stopper is an any-of composition of criteria plus a hard epoch cap. After every epoch each
criterion *measures* its quantity (a flow distance, a mask distance, validation accuracy), then
the stopper *decides*. Keeping the two apart lets diagnostic mode measure everything and
evaluate every rule on the record without acting on it.

Stop reasons: `flow`, `accuracy`, `mask`, `cap`.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import torch.nn as nn

from infcop.costs import Costs
from infcop.flows import FlowReference, Probe, distance, gradient_flow, information_flow
from infcop.masks import Mask
from infcop.models import prunable_layers
from infcop.pruners import Pruner
from infcop.train import synchronize


@dataclass
class LevelContext:
    """What criteria may look at during one level."""

    model: nn.Module
    mask: Mask
    probe: Probe | None
    reference: FlowReference | None
    target_val_acc: float
    costs: Costs
    flops_per_sample: float
    aggregation: str = "signed"
    epsilon_mode: str = "absolute"


class Criterion:
    reason: str = ""
    key: str = ""

    def begin_level(self, ctx: LevelContext) -> None:
        pass

    def measure(self, ctx: LevelContext, val_acc: float) -> float | None:
        raise NotImplementedError

    def fires(self, value: float | None) -> bool:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"key": self.key}


class _Timed:
    """Charge the wrapped work to the level's monitoring seconds."""

    def __init__(self, ctx: LevelContext):
        self.ctx = ctx

    def __enter__(self) -> None:
        self.device = next(self.ctx.model.parameters()).device
        synchronize(self.device)
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.ctx.costs.monitor_seconds += time.perf_counter() - self.t0


class _FlowCriterion(Criterion):
    reason = "flow"

    def __init__(self, epsilon: float):
        self.epsilon = epsilon
        self.threshold = epsilon

    def noise_floor(self, ref: FlowReference) -> float:
        raise NotImplementedError

    def begin_level(self, ctx: LevelContext) -> None:
        if ctx.reference is None or ctx.probe is None:
            raise ValueError(f"{type(self).__name__} needs a probe set and a dense flow reference")
        self.threshold = self.epsilon * (self.noise_floor(ctx.reference) if ctx.epsilon_mode == "relative" else 1.0)

    def fires(self, value: float | None) -> bool:
        return value is not None and value == value and value < self.threshold  # NaN never stops training

    def describe(self) -> dict:
        return {"key": self.key, "epsilon": self.epsilon, "threshold": self.threshold}


class InformationFlow(_FlowCriterion):
    key = "if_distance"

    def noise_floor(self, ref: FlowReference) -> float:
        return ref.information_noise

    def measure(self, ctx: LevelContext, val_acc: float) -> float:
        with _Timed(ctx):
            d = distance(information_flow(ctx.model, ctx.probe, ctx.aggregation), ctx.reference.information)
        n = len(ctx.probe.y)
        ctx.costs.monitor_forward_samples += n
        ctx.costs.monitor_flops += ctx.flops_per_sample * n
        return d


class GradientFlow(_FlowCriterion):
    key = "gf_distance"

    def noise_floor(self, ref: FlowReference) -> float:
        return ref.gradient_noise

    def measure(self, ctx: LevelContext, val_acc: float) -> float:
        with _Timed(ctx):
            d = distance(gradient_flow(ctx.model, ctx.probe, ctx.mask), ctx.reference.gradient)
        n = len(ctx.probe.y)
        ctx.costs.monitor_backward_samples += n
        ctx.costs.monitor_flops += 3 * ctx.flops_per_sample * n
        return d


class AccuracyTarget(Criterion):
    """Validation accuracy has recovered to the dense run's best validation accuracy."""

    reason = "accuracy"
    key = "val_acc"

    def begin_level(self, ctx: LevelContext) -> None:
        self.target = ctx.target_val_acc

    def measure(self, ctx: LevelContext, val_acc: float) -> float:
        return val_acc

    def fires(self, value: float | None) -> bool:
        return value is not None and value >= self.target

    def describe(self) -> dict:
        return {"key": self.key, "target": getattr(self, "target", None)}


def mask_distance(a: Mask, b: Mask) -> float:
    """1 − |a ∧ b| / |a|: the share of a's kept weights that b does not keep (normalised by kept count)."""
    kept = sum(int(m.sum()) for m in a.values())
    both = sum(int((a[n] & b[n]).sum()) for n in a)
    return 1.0 - both / kept if kept else 0.0


class MaskStability(Criterion):
    """Early-bird rule (You et al. 2020) for unstructured IMP.

    After each epoch, draw the mask the pruner would produce now; keep the last `window`. Fire when
    the newest is within `epsilon` of every older one in the window. The measured value is the
    largest of those distances (None until the window is full).
    """

    reason = "mask"
    key = "mask_distance"

    def __init__(self, pruner: Pruner, window: int = 5, epsilon: float = 0.1):
        self.pruner, self.window, self.epsilon = pruner, window, epsilon
        self.history: deque = deque(maxlen=window)

    def begin_level(self, ctx: LevelContext) -> None:
        self.history.clear()

    def push(self, candidate: Mask) -> float | None:
        self.history.append(candidate)
        if len(self.history) < self.window:
            return None
        newest = self.history[-1]
        return max(mask_distance(newest, older) for older in list(self.history)[:-1])

    def measure(self, ctx: LevelContext, val_acc: float) -> float | None:
        with _Timed(ctx):
            weights = {n: m.weight for n, m in prunable_layers(ctx.model).items()}
            return self.push(self.pruner.next_mask(weights, ctx.mask))

    def fires(self, value: float | None) -> bool:
        return value is not None and value <= self.epsilon

    def describe(self) -> dict:
        return {"key": self.key, "window": self.window, "epsilon": self.epsilon}


@dataclass
class AnyOf:
    """Stop when any criterion fires (first listed wins a tie), or at `cap` epochs."""

    criteria: list[Criterion] = field(default_factory=list)
    cap: int = 1

    def begin_level(self, ctx: LevelContext) -> None:
        for c in self.criteria:
            c.begin_level(ctx)

    def measure(self, ctx: LevelContext, val_acc: float) -> dict[str, float | None]:
        return {c.key: c.measure(ctx, val_acc) for c in self.criteria}

    def decide(self, measurements: dict[str, float | None], epoch: int) -> str | None:
        for c in self.criteria:
            if c.fires(measurements.get(c.key)):
                return c.reason
        return "cap" if epoch >= self.cap else None

    def describe(self) -> dict:
        return {"cap": self.cap, "criteria": [c.describe() for c in self.criteria]}


class FixedEpochs(AnyOf):
    """Retrain exactly `epochs` epochs (the cap is the budget)."""

    def __init__(self, epochs: int):
        super().__init__([], epochs)

