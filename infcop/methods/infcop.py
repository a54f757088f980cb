"""InfCoP (information-consistent pruning): the method under test, in four variants, each also as
the authors' code computes its flow (`_released`, docs/method.md §7b).

InfCoP resets survivors to the rewind point and retrains until the pruned network's flow is
within ε of the dense network's (or validation accuracy recovers, or the cap). The `_pq`
variants use SAP's PQ-index pruner, as the authors did, and compare with `sap`; the plain ones
use magnitude pruning, so they compare with lth / wr / lrr / early_bird at identical densities.
The ablations that locate its speedup are in ablations.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from infcop.foundations.config import Config, ConfigError
from infcop.core.resets import Reset, RewindTo
from infcop.criteria import Stopper
from infcop.criteria.accuracy import AccuracyTarget
from infcop.criteria.gradient_flow import GradientFlow
from infcop.criteria.information_flow import InformationFlow
from infcop.criteria.released import ReleasedGradientFlow, ReleasedInformationFlow
from infcop.methods import (
    BuildContext,
    MethodSpec,
    Role,
    fraction_schedule,
    magnitude,
    pq_index,
    pq_schedule,
    register_method,
)

_EPS_DOC = (
    "stop when the flow distance < ε (× the dense noise floor if stopping.epsilon_mode is relative)"
)
_MODE_DOC = (
    "this variant's stopping.epsilon_mode (absolute, or relative: ε × the dense noise floor); "
    "unset: the config's"
)
_AGG_DOC = (
    "this variant's stopping.aggregation of the information flow (signed or absolute); unset: "
    "the config's"
)


def _stopping_field(key: str, choices: tuple[str, ...], doc: str) -> str | None:
    """A method parameter that, when set, replaces `stopping.<key>` for this method's runs
    (spec.run_config)."""
    return field(default=None, metadata={"choices": choices, "stopping": key, "doc": doc})


_PQ_DOC = "PQ-index {}; unset: pruning.pq_{}"


@dataclass(frozen=True)
class IFParams:
    epsilon: float = field(
        default=InformationFlow.default_threshold, metadata={"gt": 0.0, "doc": _EPS_DOC}
    )
    epsilon_mode: str | None = _stopping_field("epsilon_mode", ("absolute", "relative"), _MODE_DOC)
    aggregation: str | None = _stopping_field("aggregation", ("signed", "absolute"), _AGG_DOC)


@dataclass(frozen=True)
class GFParams:
    epsilon: float = field(
        default=GradientFlow.default_threshold, metadata={"gt": 0.0, "doc": _EPS_DOC}
    )
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
    hash_name: ClassVar[str] = (
        "IFParams"  # the run ids from before p, q became parameters stay valid
    )


@dataclass(frozen=True)
class GFPQParams(PQSettings, GFParams):
    hash_name: ClassVar[str] = "GFParams"


def infcop_spec(ctx: BuildContext, criterion, pruner, reset: Reset | None = None) -> MethodSpec:
    """InfCoP's composition: `pruner`, reset to the rewind point (or `reset`), stop on `criterion`
    or on recovered validation accuracy, whichever comes first, or at the cap."""
    reset = reset or RewindTo()
    return MethodSpec(pruner, reset, Stopper([criterion, AccuracyTarget()], ctx.cap(reset)))


@register_method("infcop_if", params=IFParams, role=Role.INFCOP, schedule=fraction_schedule)
def infcop_if(ctx: BuildContext, p: IFParams) -> MethodSpec:
    """InfCoP, information flow; magnitude pruning; reset to the rewind point."""
    return infcop_spec(ctx, InformationFlow(p.epsilon), magnitude(ctx))


@register_method("infcop_gf", params=GFParams, role=Role.INFCOP, schedule=fraction_schedule)
def infcop_gf(ctx: BuildContext, p: GFParams) -> MethodSpec:
    """InfCoP, gradient flow; magnitude pruning; reset to the rewind point."""
    return infcop_spec(ctx, GradientFlow(p.epsilon), magnitude(ctx))


@register_method("infcop_if_pq", params=IFPQParams, role=Role.INFCOP, schedule=pq_schedule)
def infcop_if_pq(ctx: BuildContext, p: IFPQParams) -> MethodSpec:
    """InfCoP, information flow; PQ-index pruning (the authors' pairing, compare with sap)."""
    return infcop_spec(ctx, InformationFlow(p.epsilon), pq_index(ctx, p))


@register_method("infcop_gf_pq", params=GFPQParams, role=Role.INFCOP, schedule=pq_schedule)
def infcop_gf_pq(ctx: BuildContext, p: GFPQParams) -> MethodSpec:
    """InfCoP, gradient flow; PQ-index pruning (the authors' pairing, compare with sap)."""
    return infcop_spec(ctx, GradientFlow(p.epsilon), pq_index(ctx, p))


# ---------------------------------------------------------------- InfCoP as the authors released it
_RELEASED_EPS_DOC = "stop when the as-released flow distance < ε (absolute; the authors' {})"


@dataclass(frozen=True)
class ReleasedIFParams:
    epsilon: float = field(
        default=ReleasedInformationFlow.default_threshold,
        metadata={"gt": 0.0, "doc": _RELEASED_EPS_DOC.format("0.11")},
    )


@dataclass(frozen=True)
class ReleasedGFParams:
    epsilon: float = field(
        default=ReleasedGradientFlow.default_threshold,
        metadata={"gt": 0.0, "doc": _RELEASED_EPS_DOC.format("0.5")},
    )


@dataclass(frozen=True)
class ReleasedIFPQParams(PQSettings, ReleasedIFParams):
    pass


@dataclass(frozen=True)
class ReleasedGFPQParams(PQSettings, ReleasedGFParams):
    pass


def released(schedule):
    """`schedule`, once the config is one the released float32 measures can run under: the variants
    pair with the corrected ones on the same densities (and the same dense warm-up)."""

    def checked(cfg: Config, params) -> str:
        for key in ("bf16", "channels_last"):
            if getattr(cfg.training, key):
                raise ConfigError(
                    f"training.{key}: the as-released InfCoP variants measure in "
                    "float32 on contiguous tensors, as the authors' code did; set it "
                    "to false"
                )
        return schedule(cfg, params)

    return checked


def _released_if(ctx: BuildContext, p) -> ReleasedInformationFlow:
    released(fraction_schedule)(ctx.cfg, p)
    return ReleasedInformationFlow(ctx.cfg.training.batch_size, p.epsilon)


def _released_gf(ctx: BuildContext, p) -> ReleasedGradientFlow:
    released(fraction_schedule)(ctx.cfg, p)
    return ReleasedGradientFlow(ctx.cfg.training.batch_size, p.epsilon)


@register_method(
    "infcop_if_released",
    params=ReleasedIFParams,
    role=Role.INFCOP,
    schedule=released(fraction_schedule),
)
def infcop_if_released(ctx: BuildContext, p: ReleasedIFParams) -> MethodSpec:
    """InfCoP, information flow as released (whole training split, float32); magnitude."""
    return infcop_spec(ctx, _released_if(ctx, p), magnitude(ctx))


@register_method(
    "infcop_gf_released",
    params=ReleasedGFParams,
    role=Role.INFCOP,
    schedule=released(fraction_schedule),
)
def infcop_gf_released(ctx: BuildContext, p: ReleasedGFParams) -> MethodSpec:
    """InfCoP, gradient flow as released (last minibatch's .grad vs warm-up means); magnitude."""
    return infcop_spec(ctx, _released_gf(ctx, p), magnitude(ctx))


@register_method(
    "infcop_if_pq_released",
    params=ReleasedIFPQParams,
    role=Role.INFCOP,
    schedule=released(pq_schedule),
)
def infcop_if_pq_released(ctx: BuildContext, p: ReleasedIFPQParams) -> MethodSpec:
    """InfCoP, information flow as released; PQ-index pruning (the authors' method, vs sap)."""
    return infcop_spec(ctx, _released_if(ctx, p), pq_index(ctx, p))


@register_method(
    "infcop_gf_pq_released",
    params=ReleasedGFPQParams,
    role=Role.INFCOP,
    schedule=released(pq_schedule),
)
def infcop_gf_pq_released(ctx: BuildContext, p: ReleasedGFPQParams) -> MethodSpec:
    """InfCoP, gradient flow as released; PQ-index pruning (the authors' method, vs sap)."""
    return infcop_spec(ctx, _released_gf(ctx, p), pq_index(ctx, p))
