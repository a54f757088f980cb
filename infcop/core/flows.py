"""Information flow and gradient flow of a network on a fixed probe set (docs/method.md, section 3).

Information flow Δ(w) = (ρ_1, ..., ρ_{L-1}): for consecutive flow layers, ρ_ℓ aggregates the
cross-correlation matrix C_ℓ = (1/N) Σ_n z_ℓ(x_n) z_{ℓ+1}(x_n)ᵀ of channel-standardised outputs
(conv outputs averaged over positions). `signed` uses the entry mean of C_ℓ, which factorises as
(1/N) Σ_n mean_c z_ℓ,c · mean_c z_{ℓ+1},c, so C_ℓ is never materialised; `absolute` uses the
entry mean of |C_ℓ| (channels x channels, small).

Gradient flow g(w) = (g_1, ..., g_L): per flow layer, the mean over probe batches of the mean
|∂L/∂W_ℓ| over alive entries, from real backward passes (`torch.autograd.grad`, so the training
run's `.grad` and optimizer state are never touched).

Hooks exist only during a measurement, the model is in eval mode (no BN statistics updated) and
all statistics accumulate in float64.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from infcop.core.data import PROBE_STREAM, Splits, epoch_generator, prepare_batch
from infcop.core.masks import Mask
from infcop.core.models import flow_layers

STD_FLOOR = 1e-8


@dataclass
class Probe:
    x: torch.Tensor
    y: torch.Tensor
    batch_size: int
    splits: Splits

    def batches(self):
        for start in range(0, len(self.y), self.batch_size):
            yield prepare_batch(self.x[start:start + self.batch_size], self.splits, None), self.y[start:start + self.batch_size]


def make_probes(splits: Splits, size: int, batch_size: int, seed: int) -> tuple[Probe, Probe]:
    """Two disjoint seeded probe sets from the training split: the measurement set and the one
    used only to estimate the noise floor. Their size is capped at half the training split."""
    n = len(splits.y_train)
    size = min(size, n // 2)
    perm = torch.randperm(n, generator=epoch_generator(seed, PROBE_STREAM)).to(splits.y_train.device)
    a, b = perm[:size].sort().values, perm[size:2 * size].sort().values
    return (Probe(splits.x_train[a], splits.y_train[a], batch_size, splits),
            Probe(splits.x_train[b], splits.y_train[b], batch_size, splits))


def layer_outputs(model: nn.Module, probe: Probe) -> list[torch.Tensor]:
    """Per flow layer, its output on the probe set as an N x C float64 matrix."""
    layers = flow_layers(model)
    chunks: dict[str, list[torch.Tensor]] = {n: [] for n in layers}

    def hook_for(name: str):
        def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            out = out.double()
            chunks[name].append(out.flatten(2).mean(2) if out.dim() > 2 else out)
        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in layers.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for x, _ in probe.batches():
                model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return [torch.cat(chunks[n]) for n in layers]


def standardize(a: torch.Tensor) -> torch.Tensor:
    """Channel-wise z-scores over the probe set (population std, floored so dead channels give 0)."""
    centred = a - a.mean(0, keepdim=True)
    std = centred.pow(2).mean(0, keepdim=True).sqrt().clamp_min(STD_FLOOR)
    return centred / std


def information_flow(model: nn.Module, probe: Probe, aggregation: str = "signed") -> np.ndarray:
    z = [standardize(a) for a in layer_outputs(model, probe)]
    rho = []
    for za, zb in zip(z[:-1], z[1:]):
        if aggregation == "signed":
            rho.append(float((za.mean(1) * zb.mean(1)).mean()))
        elif aggregation == "absolute":
            rho.append(float((za.T @ zb / len(za)).abs().mean()))
        else:
            raise ValueError(f"unknown information-flow aggregation {aggregation!r}")
    return np.array(rho, dtype=np.float64)


def gradient_flow(model: nn.Module, probe: Probe, mask: Mask) -> np.ndarray:
    layers = flow_layers(model)
    weights = [m.weight for m in layers.values()]
    alive = [mask[n].to(w.device) for n, w in zip(layers, weights)]
    total = torch.zeros(len(weights), dtype=torch.float64, device=weights[0].device)
    n_batches = 0
    was_training = model.training
    model.eval()
    try:
        for x, y in probe.batches():
            grads = torch.autograd.grad(F.cross_entropy(model(x), y), weights)
            total += torch.stack([g.abs().double()[a].mean() if a.any() else g.new_zeros((), dtype=torch.float64)
                                  for g, a in zip(grads, alive)])
            n_batches += 1
    finally:
        model.train(was_training)
    return (total / n_batches).cpu().numpy()


def distance(current: np.ndarray, reference: np.ndarray) -> float:
    """‖current − reference‖₂ (NaN if either has a NaN: such a measurement never stops training)."""
    return float(np.linalg.norm(np.asarray(current) - np.asarray(reference)))


@dataclass
class FlowReference:
    """Δ* and g* of the dense network, with their noise floors (distance between two disjoint probes),
    and what measuring each cost: `samples` probe samples, `seconds` per flow ("information", "gradient")."""

    information: np.ndarray
    gradient: np.ndarray
    information_noise: float
    gradient_noise: float
    samples: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"information": self.information.tolist(), "gradient": self.gradient.tolist(),
                "information_noise_floor": self.information_noise, "gradient_noise_floor": self.gradient_noise,
                "samples": self.samples, "seconds": self.seconds}


def measure_reference(model: nn.Module, probe: Probe, noise_probe: Probe, mask: Mask, aggregation: str) -> FlowReference:
    """Both flows on both probes, each flow timed (its results come back to the host, so the timing
    includes the device's work)."""
    t0 = time.perf_counter()
    info = information_flow(model, probe, aggregation)
    info_noise = distance(info, information_flow(model, noise_probe, aggregation))
    t1 = time.perf_counter()
    grad = gradient_flow(model, probe, mask)
    grad_noise = distance(grad, gradient_flow(model, noise_probe, mask))
    t2 = time.perf_counter()
    return FlowReference(info, grad, info_noise, grad_noise, len(probe.y) + len(noise_probe.y),
                         {"information": t1 - t0, "gradient": t2 - t1})
