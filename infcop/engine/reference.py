"""The flow reference a flow criterion compares against: Δ* and g* of the dense network on a
seeded probe set, with their noise floors (the same measured on a second, disjoint probe set)."""
from __future__ import annotations

import logging

import torch

from infcop.foundations.config import Config
from infcop.core.data import Splits
from infcop.core.flows import FlowReference, Probe, make_probes, measure_reference
from infcop.core.masks import full_mask
from infcop.engine.dense import DenseRun, seeded_model

log = logging.getLogger("infcop")


def prepare_reference(cfg: Config, splits: Splits, seed: int, device: torch.device,
                      dense: DenseRun) -> tuple[Probe, FlowReference]:
    """Measured on the trained dense network (`stopping.reference: dense`) or at the rewind point."""
    probe, noise_probe = make_probes(splits, cfg.stopping.probe_size, cfg.stopping.probe_batch, seed)
    model = seeded_model(cfg, splits, seed, device)
    model.load_state_dict(dense.state("final" if cfg.stopping.reference == "dense" else "rewind"))
    return probe, measure_reference(model, probe, noise_probe, full_mask(model), cfg.stopping.aggregation)


def probe_warnings(cfg: Config, probe: Probe) -> list[str]:
    """A probe set smaller than `stopping.probe_size` asked for (it is capped at half the training
    split), said in the log and kept in the run's record."""
    if len(probe.y) >= cfg.stopping.probe_size:
        return []
    text = (f"stopping.probe_size: {cfg.stopping.probe_size} is more than half the training split, so each probe set "
            f"holds {len(probe.y)} samples")
    log.warning(text)
    return [text]
