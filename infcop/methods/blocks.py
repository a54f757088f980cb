"""Building blocks shared by method files: the configured pruners and the density
schedules they follow."""

from __future__ import annotations

from typing import Any

from infcop.foundations.config import Config, ConfigError
from infcop.core.pruners import MagnitudeGlobal, MagnitudeLayer, PQIndexPruner, Pruner
from infcop.methods.registry import BuildContext

PQ_KEYS = ("p", "q", "eta", "gamma", "beta")


def excluded_layers(ctx: BuildContext) -> tuple[str, ...]:
    extra = (ctx.output_layer,) if ctx.cfg.pruning.exclude_output else ()
    return tuple(ctx.cfg.pruning.exclude_layers) + extra


def magnitude(ctx: BuildContext) -> Pruner:
    """Magnitude pruning of `pruning.fraction` per level, in `pruning.scope`
    (global or per layer)."""
    cls = MagnitudeGlobal if ctx.cfg.pruning.scope == "global" else MagnitudeLayer
    return cls(exclude=excluded_layers(ctx), fraction=ctx.cfg.pruning.fraction)


def fraction_schedule(cfg: Config, params: Any) -> str:
    """Magnitude (global or per layer) and random pruning all remove the same share of
    survivors per level."""
    return f"{cfg.pruning.fraction:g} of survivors per level"


def pq_settings(cfg: Config, params: Any) -> dict[str, float]:
    """SAP's (p, q, η, γ, β): a method parameter where a variant sets one, else `pruning.pq_*`."""
    out = {k: getattr(params, k, None) for k in PQ_KEYS}
    out = {k: float(getattr(cfg.pruning, f"pq_{k}") if v is None else v) for k, v in out.items()}
    if out["p"] >= out["q"]:
        raise ConfigError(
            f"PQ index needs p < q, got p={out['p']:g}, q={out['q']:g} "
            "(pruning.pq_p / pruning.pq_q, or the method's params p / q)"
        )
    return out


def pq_index(ctx: BuildContext, params: Any = None) -> Pruner:
    return PQIndexPruner(exclude=excluded_layers(ctx), **pq_settings(ctx.cfg, params))


def pq_schedule(cfg: Config, params: Any) -> str:
    s = pq_settings(cfg, params)
    return (
        f"PQ index p={s['p']:g} q={s['q']:g} eta={s['eta']:g} gamma={s['gamma']:g} "
        f"beta={s['beta']:g}"
    )
