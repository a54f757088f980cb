"""Diagnostic mode: train every level to the cap while every registered criterion measures, then
read off when each would have fired, against the oracle epoch (validation accuracy back at the
dense best). One run per seed thus gives every criterion's stopping lag and a threshold sweep."""

from __future__ import annotations

from infcop.foundations.config import Config
from infcop.criteria import CRITERIA, Stopper
from infcop.methods import MethodSpec
from infcop.engine.records import EpochRow


def diagnostic_monitors(spec: MethodSpec, cfg: Config) -> Stopper:
    """The method's criteria plus every other registered criterion that applies, at its defaults."""
    have = {c.name for c in spec.stopper.criteria}
    extra = [
        cls.for_diagnosis(cfg, spec.pruner) for name, cls in CRITERIA.items() if name not in have
    ]
    return Stopper(spec.stopper.criteria + [c for c in extra if c is not None], spec.stopper.cap)


def _first_epoch(rows: list[EpochRow], fires) -> int | None:
    return next((r.epoch for r in rows if fires(r)), None)


def diagnose_level(
    rows: list[EpochRow], monitors: Stopper, cfg: Config, target_val_acc: float
) -> dict:
    """When each criterion would have fired in this level, per threshold of its sweep."""
    criteria = {}
    for c in monitors.criteria:
        sweep = c.sweep(cfg)
        if sweep:
            criteria[c.name] = {
                str(t): _first_epoch(
                    rows, lambda r, c=c, t=t: c.fires_at(r.measurements.get(c.key), t)
                )
                for t in sweep
            }
    return {
        "oracle_epoch": _first_epoch(rows, lambda r: r.val_acc >= target_val_acc),
        "method_epoch": _first_epoch(rows, lambda r: r.decision is not None),
        "criteria": criteria,
    }
