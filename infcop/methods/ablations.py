"""Ablations of InfCoP: each changes one part of it (the reset, the stopping rule, the budget) to
locate where its speedup comes from. Every ablation exists in both pairings (`acc_target` /
`acc_target_pq`, ...), so the authors' PQ-index InfCoP has its ablations on its own density schedule.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from infcop.foundations.config import ConfigError
from infcop.core.resets import ResetToInit, RewindTo
from infcop.criteria import FixedEpochs, Stopper
from infcop.criteria.accuracy import AccuracyTarget
from infcop.criteria.gradient_flow import GradientFlow
from infcop.criteria.information_flow import InformationFlow
from infcop.methods import (BuildContext, MethodSpec, Role, fraction_schedule, magnitude, pq_index,
                            pq_schedule, register_method)
from infcop.methods.infcop import GFParams, GFPQParams, IFParams, IFPQParams, PQSettings, infcop_spec


@register_method("infcop_if_init", params=IFParams, role=Role.ABLATION, schedule=fraction_schedule,
                 ablates=("infcop_if",))
def infcop_if_init(ctx: BuildContext, p: IFParams) -> MethodSpec:
    """Ablation: InfCoP-IF with reset to θ₀, so the reset cannot carry accuracy."""
    return infcop_spec(ctx, InformationFlow(p.epsilon), magnitude(ctx), ResetToInit())


@register_method("infcop_gf_init", params=GFParams, role=Role.ABLATION, schedule=fraction_schedule,
                 ablates=("infcop_gf",))
def infcop_gf_init(ctx: BuildContext, p: GFParams) -> MethodSpec:
    """Ablation: InfCoP-GF with reset to θ₀."""
    return infcop_spec(ctx, GradientFlow(p.epsilon), magnitude(ctx), ResetToInit())


@dataclass(frozen=True)
class AccTargetParams:
    hash_name: ClassVar[str] = "NoParams"  # τ = 0 is the rule acc_target always was: same run ids
    tolerance: float = field(default=0.0, metadata={"min": 0.0, "lt": 1.0,
                                                    "doc": "τ: stop at validation accuracy ≥ dense best − τ"})


@dataclass(frozen=True)
class FixedParams:
    hash_name: ClassVar[str] = "NoParams"  # unset is the budget fixed_same_reset always trained: same run ids
    epochs: int | None = field(default=None, metadata={"min": 1, "doc": "epochs per level; unset: the cap"})


@register_method("acc_target", params=AccTargetParams, role=Role.ABLATION, schedule=fraction_schedule)
def acc_target(ctx: BuildContext, p: AccTargetParams) -> MethodSpec:
    """Ablation: InfCoP's pruner and reset, stop when validation accuracy ≥ dense best − τ (or cap)."""
    reset = RewindTo()
    return MethodSpec(magnitude(ctx), reset, Stopper([AccuracyTarget(p.tolerance)], ctx.cap(reset)))


@register_method("fixed_same_reset", params=FixedParams, role=Role.ABLATION, schedule=fraction_schedule)
def fixed_same_reset(ctx: BuildContext, p: FixedParams) -> MethodSpec:
    """Ablation: InfCoP's pruner and reset, trained a fixed number of epochs (default InfCoP's cap: what the
    reset alone saves; with the default cap this is wr, T − t epochs after the rewind)."""
    reset = RewindTo()
    budget = ctx.budget(reset)
    if p.epochs is not None and p.epochs > budget and ctx.cfg.training.schedule == "cosine":
        raise ConfigError(f"fixed_same_reset params.epochs: {p.epochs} epochs run past the end of the cosine LR "
                          f"schedule, which has {budget} epoch(s) left after the rewind; the extra epochs would train "
                          f"at LR 0. Set epochs <= {budget}.")
    return MethodSpec(magnitude(ctx), reset, FixedEpochs(p.epochs or ctx.cap(reset)))


@register_method("infcop_if_pq_init", params=IFPQParams, role=Role.ABLATION, schedule=pq_schedule,
                 ablates=("infcop_if_pq",))
def infcop_if_pq_init(ctx: BuildContext, p: IFPQParams) -> MethodSpec:
    """Ablation: InfCoP-IF with PQ-index pruning and reset to θ₀."""
    return infcop_spec(ctx, InformationFlow(p.epsilon), pq_index(ctx, p), ResetToInit())


@register_method("infcop_gf_pq_init", params=GFPQParams, role=Role.ABLATION, schedule=pq_schedule,
                 ablates=("infcop_gf_pq",))
def infcop_gf_pq_init(ctx: BuildContext, p: GFPQParams) -> MethodSpec:
    """Ablation: InfCoP-GF with PQ-index pruning and reset to θ₀."""
    return infcop_spec(ctx, GradientFlow(p.epsilon), pq_index(ctx, p), ResetToInit())


@register_method("acc_target_pq", params=PQSettings, role=Role.ABLATION, schedule=pq_schedule)
def acc_target_pq(ctx: BuildContext, p: PQSettings) -> MethodSpec:
    """Ablation: acc_target with PQ-index pruning (the pairing of the infcop_*_pq variants)."""
    reset = RewindTo()
    return MethodSpec(pq_index(ctx, p), reset, Stopper([AccuracyTarget()], ctx.cap(reset)))


@register_method("fixed_same_reset_pq", params=PQSettings, role=Role.ABLATION, schedule=pq_schedule)
def fixed_same_reset_pq(ctx: BuildContext, p: PQSettings) -> MethodSpec:
    """Ablation: fixed_same_reset with PQ-index pruning, trained to the infcop_*_pq cap."""
    reset = RewindTo()
    return MethodSpec(pq_index(ctx, p), reset, FixedEpochs(ctx.cap(reset)))
