"""The flow reference a flow criterion compares against: Δ* and g* of the dense network on a
seeded probe set, with their noise floors (the same measured on a second, disjoint probe set), and
the as-released criteria's references, measured only if a released criterion asks for them."""

from __future__ import annotations

import logging
import time

import torch
import torch.nn as nn

from infcop.foundations.config import Config, ConfigError
from infcop.core.data import Splits, epoch_generator, train_batches
from infcop.core.flows import (
    FlowReference,
    Probe,
    ReleasedReference,
    make_probes,
    measure_reference,
    released_gradient_layers,
    released_information_flow,
    released_sweep_sum,
    training_sweep,
)
from infcop.core.masks import full_mask
from infcop.engine.dense import DenseRun, seeded_model, warmup_gradient

log = logging.getLogger("infcop")


def prepare_reference(
    cfg: Config, splits: Splits, seed: int, device: torch.device, dense: DenseRun
) -> tuple[Probe, FlowReference]:
    """Measured on the trained dense network (`stopping.reference: dense`) or at
    the rewind point."""
    probe, noise_probe = make_probes(
        splits, cfg.stopping.probe_size, cfg.stopping.probe_batch, seed
    )
    model = seeded_model(cfg, splits, seed, device)
    model.load_state_dict(dense.state("final" if cfg.stopping.reference == "dense" else "rewind"))
    reference = measure_reference(
        model, probe, noise_probe, full_mask(model), cfg.stopping.aggregation
    )
    reference.released = released_reference(cfg, splits, seed, device, dense)
    return probe, reference


def released_reference(
    cfg: Config, splits: Splits, seed: int, device: torch.device, dense: DenseRun
) -> ReleasedReference:
    """The as-released references, right after the warm-up (the rewind point), as the authors took
    them:

    * information: one no-grad forward of the first training batch in train mode (it moves the BN
      running statistics, as the authors' hook set-up did), then the two-pass flow over the
      training split;
    * gradient: the last warm-up minibatch's per-layer mean |g| (saved by the dense run), summed
      over a forward-only sweep of the training split and divided by (batches − 1).

    Each builds its own model under a forked RNG, so measuring it mid-run leaves training's RNG as
    it was."""
    batch = cfg.training.batch_size

    def at_rewind() -> nn.Module:
        model = seeded_model(cfg, splits, seed, device)
        model.load_state_dict(dense.state("rewind"))
        return model

    def information() -> tuple[torch.Tensor, int, float]:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            t0 = time.perf_counter()
            model = at_rewind()
            x, _ = next(train_batches(splits, batch, epoch_generator(seed, 1, 1)))
            model.train()
            with torch.no_grad():
                model(x)
            rho, _ = released_information_flow(model, splits, batch)
            return rho, 2 * len(splits.y_train) + len(x), time.perf_counter() - t0

    def gradient() -> tuple[torch.Tensor, int, float]:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            saved = warmup_gradient(cfg, seed, device, splits, dense)
            t0 = time.perf_counter()
            model = at_rewind()
            layers = list(released_gradient_layers(model))
            if saved["layers"] != layers:
                raise ConfigError(
                    f"{dense.dir.warmup_gradient} holds layers {saved['layers']}, "
                    f"the model {cfg.model.name} has {layers}; delete it to replay "
                    "the warm-up"
                )
            n_batches = training_sweep(model, splits, batch)
            means = released_sweep_sum(saved["mean_abs"], n_batches)
            return means, len(splits.y_train), time.perf_counter() - t0

    return ReleasedReference(splits, {"information": information, "gradient": gradient})


def probe_warnings(cfg: Config, probe: Probe) -> list[str]:
    """A probe set smaller than `stopping.probe_size` asked for (it is capped at half the training
    split), said in the log and kept in the run's record."""
    if len(probe.y) >= cfg.stopping.probe_size:
        return []
    text = (
        f"stopping.probe_size: {cfg.stopping.probe_size} is more than half the training split, so "
        f"each probe set holds {len(probe.y)} samples"
    )
    log.warning(text)
    return [text]
