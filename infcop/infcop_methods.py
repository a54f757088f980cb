"""InfCoP (information-consistent pruning) and the ablations that locate its speedup.

InfCoP resets survivors to the rewind point and retrains until the pruned network's flow is
within ε of the dense network's (or validation accuracy recovers, or the cap). The `_pq`
variants use SAP's PQ-index pruner, as the authors did; the plain ones use magnitude-20% so they
compare with lth / wr / lrr / early_bird at identical densities.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from infcop.methods import BuildContext, MethodSpec, magnitude, pq_index, register_method
from infcop.resets import ResetToInit, RewindTo
from infcop.stoppers import AccuracyTarget, AnyOf, FixedEpochs, GradientFlow, InformationFlow


@dataclass(frozen=True)
class IFParams:
    epsilon: float = field(default=0.11, metadata={"gt": 0.0, "doc": "stop when ‖Δ − Δ*‖ < ε (× noise floor if relative)"})


@dataclass(frozen=True)
class GFParams:
    epsilon: float = field(default=0.5, metadata={"gt": 0.0, "doc": "stop when ‖g − g*‖ < ε (× noise floor if relative)"})


def _infcop(ctx: BuildContext, criterion, pruner, reset=None) -> MethodSpec:
    stopper = AnyOf([criterion, AccuracyTarget()], ctx.cfg.epoch_cap)
    return MethodSpec(pruner, reset or RewindTo(), stopper)


@register_method("infcop_if", params=IFParams)
def infcop_if(ctx: BuildContext, p: IFParams) -> MethodSpec:
    """InfCoP, information flow; magnitude pruning; reset to the rewind point."""
    return _infcop(ctx, InformationFlow(p.epsilon), magnitude(ctx))


@register_method("infcop_gf", params=GFParams)
def infcop_gf(ctx: BuildContext, p: GFParams) -> MethodSpec:
    """InfCoP, gradient flow; magnitude pruning; reset to the rewind point."""
    return _infcop(ctx, GradientFlow(p.epsilon), magnitude(ctx))


@register_method("infcop_if_pq", params=IFParams)
def infcop_if_pq(ctx: BuildContext, p: IFParams) -> MethodSpec:
    """InfCoP, information flow; PQ-index pruning (the authors' pairing, compare with sap)."""
    return _infcop(ctx, InformationFlow(p.epsilon), pq_index(ctx))


@register_method("infcop_gf_pq", params=GFParams)
def infcop_gf_pq(ctx: BuildContext, p: GFParams) -> MethodSpec:
    """InfCoP, gradient flow; PQ-index pruning (the authors' pairing, compare with sap)."""
    return _infcop(ctx, GradientFlow(p.epsilon), pq_index(ctx))


@register_method("infcop_if_init", params=IFParams)
def infcop_if_init(ctx: BuildContext, p: IFParams) -> MethodSpec:
    """Ablation: InfCoP-IF with reset to θ₀, so the reset cannot carry accuracy."""
    return _infcop(ctx, InformationFlow(p.epsilon), magnitude(ctx), ResetToInit())


@register_method("infcop_gf_init", params=GFParams)
def infcop_gf_init(ctx: BuildContext, p: GFParams) -> MethodSpec:
    """Ablation: InfCoP-GF with reset to θ₀."""
    return _infcop(ctx, GradientFlow(p.epsilon), magnitude(ctx), ResetToInit())


@register_method("acc_target")
def acc_target(ctx: BuildContext, p: object) -> MethodSpec:
    """Ablation: InfCoP's pruner and reset, stop when validation accuracy ≥ dense best (or cap)."""
    return MethodSpec(magnitude(ctx), RewindTo(), AnyOf([AccuracyTarget()], ctx.cfg.epoch_cap))


@register_method("fixed_same_reset")
def fixed_same_reset(ctx: BuildContext, p: object) -> MethodSpec:
    """Ablation: InfCoP's pruner and reset, fixed epochs (the cap): what the reset alone saves."""
    return MethodSpec(magnitude(ctx), RewindTo(), FixedEpochs(ctx.cfg.epoch_cap))
