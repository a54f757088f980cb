"""InfCoP (information-consistent pruning) and the ablations that locate its speedup.

InfCoP resets survivors to the rewind point and retrains until the pruned network's flow is
within ε of the dense network's (or validation accuracy recovers, or the cap). The `_pq`
variants use SAP's PQ-index pruner, as the authors did, and compare with `sap`; the plain ones
use magnitude pruning, so they compare with lth / wr / lrr / early_bird at identical densities.
Every ablation exists in both pairings (`acc_target` / `acc_target_pq`, ...), so the authors'
PQ-index InfCoP has its ablations on its own density schedule.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from infcop.config import ConfigError
from infcop.core.resets import ResetToInit, RewindTo
from infcop.criteria import FixedEpochs, Stopper
from infcop.criteria.accuracy import AccuracyTarget
from infcop.criteria.gradient_flow import GradientFlow
from infcop.criteria.information_flow import InformationFlow
from infcop.methods import (BuildContext, MethodSpec, Role, fraction_schedule, magnitude, pq_index,
                            pq_schedule, register_method)

_EPS_DOC = "stop when the flow distance < ε (× the dense noise floor if stopping.epsilon_mode is relative)"
_MODE_DOC = "this variant's stopping.epsilon_mode (absolute, or relative: ε × the dense noise floor); unset: the config's"
_AGG_DOC = "this variant's stopping.aggregation of the information flow (signed or absolute); unset: the config's"


def _stopping_field(key: str, choices: tuple[str, ...], doc: str) -> str | None:
    """A method parameter that, when set, replaces `stopping.<key>` for this method's runs (spec.run_config)."""
    return field(default=None, metadata={"choices": choices, "stopping": key, "doc": doc})
_PQ_DOC = "PQ-index {}; unset: pruning.pq_{}"


@dataclass(frozen=True)
class IFParams:
    epsilon: float = field(default=InformationFlow.default_threshold, metadata={"gt": 0.0, "doc": _EPS_DOC})
    epsilon_mode: str | None = _stopping_field("epsilon_mode", ("absolute", "relative"), _MODE_DOC)
    aggregation: str | None = _stopping_field("aggregation", ("signed", "absolute"), _AGG_DOC)


@dataclass(frozen=True)
class GFParams:
    epsilon: float = field(default=GradientFlow.default_threshold, metadata={"gt": 0.0, "doc": _EPS_DOC})
    epsilon_mode: str | None = _stopping_field("epsilon_mode", ("absolute", "relative"), _MODE_DOC)


def _pq_field(name: str, **bounds: float) -> float | None:
    return field(default=None, metadata={**bounds, "doc": _PQ_DOC.format(name, name)})


@dataclass(frozen=True)
class PQSettings:
    p: float | None = _pq_field("p", gt=0.0)
    q: float | None = _pq_field("q", gt=0.0)
    eta: float | None = _pq_field("eta", min=0.0)
    gamma: float | None = _pq_field("gamma", gt=0.0)
    beta: float | None = _pq_field("beta", gt=0.0, lt=1.0)


@dataclass(frozen=True)
class IFPQParams(PQSettings, IFParams):
    hash_name: ClassVar[str] = "IFParams"  # the run ids from before p, q became parameters stay valid


@dataclass(frozen=True)
class GFPQParams(PQSettings, GFParams):
    hash_name: ClassVar[str] = "GFParams"


def _infcop(ctx: BuildContext, criterion, pruner, reset=None) -> MethodSpec:
    reset = reset or RewindTo()
    return MethodSpec(pruner, reset, Stopper([criterion, AccuracyTarget()], ctx.cap(reset)))


@register_method("infcop_if", params=IFParams, role=Role.INFCOP, schedule=fraction_schedule)
def infcop_if(ctx: BuildContext, p: IFParams) -> MethodSpec:
    """InfCoP, information flow; magnitude pruning; reset to the rewind point."""
    return _infcop(ctx, InformationFlow(p.epsilon), magnitude(ctx))


@register_method("infcop_gf", params=GFParams, role=Role.INFCOP, schedule=fraction_schedule)
def infcop_gf(ctx: BuildContext, p: GFParams) -> MethodSpec:
    """InfCoP, gradient flow; magnitude pruning; reset to the rewind point."""
    return _infcop(ctx, GradientFlow(p.epsilon), magnitude(ctx))


@register_method("infcop_if_pq", params=IFPQParams, role=Role.INFCOP, schedule=pq_schedule)
def infcop_if_pq(ctx: BuildContext, p: IFPQParams) -> MethodSpec:
    """InfCoP, information flow; PQ-index pruning (the authors' pairing, compare with sap)."""
    return _infcop(ctx, InformationFlow(p.epsilon), pq_index(ctx, p))


@register_method("infcop_gf_pq", params=GFPQParams, role=Role.INFCOP, schedule=pq_schedule)
def infcop_gf_pq(ctx: BuildContext, p: GFPQParams) -> MethodSpec:
    """InfCoP, gradient flow; PQ-index pruning (the authors' pairing, compare with sap)."""
    return _infcop(ctx, GradientFlow(p.epsilon), pq_index(ctx, p))


@register_method("infcop_if_init", params=IFParams, role=Role.ABLATION, schedule=fraction_schedule,
                 ablates=("infcop_if",))
def infcop_if_init(ctx: BuildContext, p: IFParams) -> MethodSpec:
    """Ablation: InfCoP-IF with reset to θ₀, so the reset cannot carry accuracy."""
    return _infcop(ctx, InformationFlow(p.epsilon), magnitude(ctx), ResetToInit())


@register_method("infcop_gf_init", params=GFParams, role=Role.ABLATION, schedule=fraction_schedule,
                 ablates=("infcop_gf",))
def infcop_gf_init(ctx: BuildContext, p: GFParams) -> MethodSpec:
    """Ablation: InfCoP-GF with reset to θ₀."""
    return _infcop(ctx, GradientFlow(p.epsilon), magnitude(ctx), ResetToInit())


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
    return _infcop(ctx, InformationFlow(p.epsilon), pq_index(ctx, p), ResetToInit())


@register_method("infcop_gf_pq_init", params=GFPQParams, role=Role.ABLATION, schedule=pq_schedule,
                 ablates=("infcop_gf_pq",))
def infcop_gf_pq_init(ctx: BuildContext, p: GFPQParams) -> MethodSpec:
    """Ablation: InfCoP-GF with PQ-index pruning and reset to θ₀."""
    return _infcop(ctx, GradientFlow(p.epsilon), pq_index(ctx, p), ResetToInit())


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
