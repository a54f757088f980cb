"""Information flow and gradient flow of a network on a fixed probe set (docs/method.md, section 3).

Information flow Δ(w) = (ρ_1, ..., ρ_{L-1}): for consecutive flow layers, ρ_ℓ aggregates the
cross-correlation matrix C_ℓ = (1/N) Σ_n z_ℓ(x_n) z_{ℓ+1}(x_n)ᵀ of channel-standardised outputs
(conv outputs averaged over positions). `signed` uses the entry mean of C_ℓ, which factorises as
(1/N) Σ_n mean_c z_ℓ,c · mean_c z_{ℓ+1},c, so C_ℓ is never materialised; `absolute` uses the
entry mean of |C_ℓ| (channels x channels, small).

Gradient flow g(w) = (g_1, ..., g_L): per flow layer, the mean over probe batches of the mean
|∂L/∂W_ℓ| over alive entries, from real backward passes (`torch.autograd.grad`, so the training
run's `.grad` and optimizer state are never touched).

A flow entry is NaN where it is undefined (a layer constant over the probe, a layer that alive
weights feed no gradient to): the distance is then NaN and the rule never fires on it.

Hooks exist only during a measurement, the model is in eval mode (no BN statistics updated) and
all statistics accumulate in float64.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from infcop.core.data import PROBE_STREAM, Splits, epoch_generator, eval_batches, prepare_batch
from infcop.core.masks import Mask
from infcop.core.models import flow_layers

STD_FLOOR = 1e-8
CONSTANT_RTOL = (
    1e-5  # a channel varying less than this, relative to its RMS, is constant (float32 noise)
)
WIDEN_BYTES = 64 * 2**20  # float64 copy of a flow layer's output, at most this much at a time


@dataclass
class Probe:
    x: torch.Tensor
    y: torch.Tensor
    batch_size: int
    splits: Splits

    def batches(self):
        for start in range(0, len(self.y), self.batch_size):
            yield (
                prepare_batch(self.x[start : start + self.batch_size], self.splits, None),
                self.y[start : start + self.batch_size],
            )


def make_probes(splits: Splits, size: int, batch_size: int, seed: int) -> tuple[Probe, Probe]:
    """Two disjoint seeded probe sets from the training split: the measurement set and the one
    used only to estimate the noise floor. Their size is capped at half the training split."""
    n = len(splits.y_train)
    size = min(size, n // 2)
    perm = torch.randperm(n, generator=epoch_generator(seed, PROBE_STREAM)).to(
        splits.y_train.device
    )
    a, b = perm[:size].sort().values, perm[size : 2 * size].sort().values
    return (
        Probe(splits.x_train[a], splits.y_train[a], batch_size, splits),
        Probe(splits.x_train[b], splits.y_train[b], batch_size, splits),
    )


def position_means(out: torch.Tensor) -> torch.Tensor:
    """An N x C float64 matrix: a conv output averaged over its positions (a
    linear output as it is).

    Widened to float64 a few samples at a time (at most WIDEN_BYTES), so a large activation is never
    copied whole; each row is reduced exactly as from a whole float64 copy, so the
    values are the same."""
    if out.dim() <= 2:
        return out.double()
    chunk = max(1, WIDEN_BYTES // (8 * out[0].numel()))
    return torch.cat([part.double().flatten(2).mean(2) for part in out.split(chunk)])


def layer_outputs(model: nn.Module, probe: Probe) -> list[torch.Tensor]:
    """Per flow layer, its output on the probe set as an N x C float64 matrix."""
    layers = flow_layers(model)
    chunks: dict[str, list[torch.Tensor]] = {n: [] for n in layers}

    def hook_for(name: str):
        def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            chunks[name].append(position_means(out))

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
    """Channel-wise z-scores over the probe set (population std, floored so dead
    channels give 0)."""
    centred = a - a.mean(0, keepdim=True)
    std = centred.pow(2).mean(0, keepdim=True).sqrt().clamp_min(STD_FLOOR)
    return centred / std


def varies(a: torch.Tensor) -> bool:
    """Whether any channel of a layer's N x C output varies over the probe set beyond float32
    rounding (identical inputs can differ in the last bits by where a row falls in a batch)."""
    std = (a - a.mean(0, keepdim=True)).pow(2).mean(0).sqrt()
    return bool((std > STD_FLOOR + CONSTANT_RTOL * a.pow(2).mean(0).sqrt()).any())


def information_flow(model: nn.Module, probe: Probe, aggregation: str = "signed") -> np.ndarray:
    """Δ(w); ρ_ℓ is NaN where layer ℓ or ℓ+1 is constant over the probe (its z-scores are all 0 by
    the floor, which would read as 'no correlation' rather than 'no information')."""
    outputs = layer_outputs(model, probe)
    alive = [varies(a) for a in outputs]
    z = [standardize(a) for a in outputs]
    rho = []
    for i, (za, zb) in enumerate(zip(z[:-1], z[1:])):
        if not (alive[i] and alive[i + 1]):
            rho.append(float("nan"))
        elif aggregation == "signed":
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
            total += torch.stack(
                [
                    g.abs().double()[a].mean() if a.any() else g.new_zeros((), dtype=torch.float64)
                    for g, a in zip(grads, alive)
                ]
            )
            n_batches += 1
    finally:
        model.train(was_training)
    # a layer with alive weights but no gradient at all carries no signal (a dead path): undefined
    silent = (total == 0) & torch.tensor([bool(a.any()) for a in alive], device=total.device)
    return torch.where(silent, float("nan"), total / n_batches).cpu().numpy()


def distance(current: np.ndarray, reference: np.ndarray) -> float:
    """‖current − reference‖₂ (NaN if either has a NaN: such a measurement never stops training)."""
    return float(np.linalg.norm(np.asarray(current) - np.asarray(reference)))


@dataclass
class FlowReference:
    """Δ* and g* of the dense network, with their noise floors (distance between two disjoint
    probes), and what measuring each cost: `samples` probe samples, `seconds` per flow
    ("information", "gradient")."""

    information: np.ndarray
    gradient: np.ndarray
    information_noise: float
    gradient_noise: float
    samples: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    released: "ReleasedReference | None" = None

    def as_dict(self) -> dict:
        out = {
            "information": self.information.tolist(),
            "gradient": self.gradient.tolist(),
            "information_noise_floor": self.information_noise,
            "gradient_noise_floor": self.gradient_noise,
            "samples": self.samples,
            "seconds": self.seconds,
        }
        if self.released is not None and self.released.values:
            out["released"] = self.released.as_dict()
        return out


@dataclass
class ReleasedReference:
    """The as-released criteria's references, each measured on first use only (a run of the
    corrected criteria never pays for them): `measure[flow]()` returns (value, training-split
    samples it ran through, seconds). `splits` is the data the released criteria sweep."""

    splits: Splits
    measure: dict[str, Callable[[], tuple[torch.Tensor, int, float]]]
    values: dict[str, torch.Tensor] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def _get(self, flow: str) -> torch.Tensor:
        if flow not in self.values:
            self.values[flow], self.samples[flow], self.seconds[flow] = self.measure[flow]()
        return self.values[flow]

    def information(self) -> torch.Tensor:
        """ρ* (float32), right after the warm-up."""
        return self._get("information")

    def gradient(self) -> torch.Tensor:
        """means* (float32): the last warm-up minibatch's per-layer mean |g|, through the sweep."""
        return self._get("gradient")

    def as_dict(self) -> dict:
        return {
            "values": {k: v.tolist() for k, v in self.values.items()},
            "samples": self.samples,
            "seconds": self.seconds,
        }


def measure_reference(
    model: nn.Module, probe: Probe, noise_probe: Probe, mask: Mask, aggregation: str
) -> FlowReference:
    """Both flows on both probes, each flow timed (its results come back to the host, so the timing
    includes the device's work)."""
    t0 = time.perf_counter()
    info = information_flow(model, probe, aggregation)
    info_noise = distance(info, information_flow(model, noise_probe, aggregation))
    t1 = time.perf_counter()
    grad = gradient_flow(model, probe, mask)
    grad_noise = distance(grad, gradient_flow(model, noise_probe, mask))
    t2 = time.perf_counter()
    return FlowReference(
        info,
        grad,
        info_noise,
        grad_noise,
        len(probe.y) + len(noise_probe.y),
        {"information": t1 - t0, "gradient": t2 - t1},
    )


# ---------------------------------------------------------------- the flows as released
# docs/method.md §7b: what the authors' code computes, detail for detail, so a study can run InfCoP
# as released beside the corrected flows above. Everything is float32, as in their code.
RELEASED_STD_FLOOR = 1e-6


def released_gradient_layers(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every weight with more than one dimension (ResNet shortcut convs included, unlike IF's)."""
    return {n: p for n, p in model.named_parameters() if "weight" in n and p.dim() > 1}


def training_sweep(
    model: nn.Module, splits: Splits, batch_size: int, on_batch: Callable[[], None] | None = None
) -> int:
    """One eval-mode forward pass over the whole training split in batches of `batch_size`, in order
    and without augmentation; `on_batch()` runs after each batch. Returns the number of batches."""
    was_training = model.training
    model.eval()
    n_batches = 0
    try:
        with torch.no_grad():
            for x, _ in eval_batches(splits.x_train, splits.y_train, splits, batch_size):
                model(x)
                n_batches += 1
                if on_batch is not None:
                    on_batch()
    finally:
        model.train(was_training)
    return n_batches


def released_information_flow(
    model: nn.Module, splits: Splits, batch_size: int
) -> tuple[torch.Tensor, bool]:
    """(ρ, any NaN in a correlation matrix): two passes over the training split, first the channel
    statistics (σ = sqrt(E[a²] − μ²), floored at 1e-6, NaN where the argument is negative), then
    C_ℓ = (1/N) Σ_n z_ℓ(x_n)ᵀ z_{ℓ+1}(x_n) and ρ_ℓ = mean of C_ℓ, all in float32."""
    layers = flow_layers(model)
    outputs: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            out = out.detach().float()
            outputs[name] = out.mean(tuple(range(2, out.dim()))) if out.dim() > 2 else out

        return hook

    names, n = list(layers), len(splits.y_train)
    s1: dict[str, torch.Tensor] = {}
    s2: dict[str, torch.Tensor] = {}
    corr: list[torch.Tensor | None] = [None] * (len(names) - 1)

    def accumulate_moments() -> None:
        for k in names:
            a = torch.nan_to_num(outputs[k])
            s1[k] = s1.get(k, 0) + a.sum(0)
            s2[k] = s2.get(k, 0) + a.pow(2).sum(0)

    def accumulate_correlations() -> None:
        z = [((outputs[k] - mu[k]) / sd[k]) for k in names]
        for i, (za, zb) in enumerate(zip(z[:-1], z[1:])):
            corr[i] = za.T @ zb if corr[i] is None else corr[i] + za.T @ zb

    handles = [m.register_forward_hook(hook_for(k)) for k, m in layers.items()]
    try:
        training_sweep(model, splits, batch_size, accumulate_moments)
        mu = {k: s1[k] / n for k in names}
        sd = {
            k: torch.max(
                torch.sqrt(s2[k] / n - mu[k].pow(2)), torch.full_like(mu[k], RELEASED_STD_FLOOR)
            )
            for k in names
        }
        training_sweep(model, splits, batch_size, accumulate_correlations)
    finally:
        for h in handles:
            h.remove()
    corr = [c / n for c in corr]
    rho = torch.stack([c.mean() for c in corr]).cpu()
    return rho, any(bool(torch.isnan(c).any()) for c in corr)


def released_gradient_stats(gradients: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per layer, in float32: the mean of |g| over all entries (pruned zeros included), ‖|g|‖_F."""
    return (
        torch.stack([g.float().abs().mean() for g in gradients]).cpu(),
        torch.stack([g.float().abs().norm() for g in gradients]).cpu(),
    )


def released_sweep_sum(values: torch.Tensor, n_batches: int) -> torch.Tensor:
    """`values` added once per batch of the training sweep in float32, then divided by n_batches − 1
    (the released code divides by the last batch index)."""
    total = torch.zeros_like(values)
    for _ in range(n_batches):
        total += values
    return total / (n_batches - 1)


def released_distance(current: torch.Tensor, reference: torch.Tensor) -> float:
    """‖current − reference‖₂ in float32, NaN when either holds a NaN."""
    return float((current.float() - reference.float()).norm())
