"""Pruners: given the current weights and mask, choose the next mask.

Each pruner only ever removes alive weights. Excluded layers (e.g. the output layer) keep their
mask unchanged and take no part in global rankings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from infcop.core.masks import Mask

Weights = dict[str, torch.Tensor]


def _prune_smallest(scores: torch.Tensor, alive: torch.Tensor, n_prune: int) -> torch.Tensor:
    """New mask: `alive` minus its `n_prune` lowest-scoring entries (ties broken by index,
    so deterministic)."""
    if n_prune <= 0:
        return alive.clone()
    flat_alive = alive.flatten()
    idx = torch.nonzero(flat_alive).squeeze(1)
    order = torch.argsort(scores.flatten()[idx], stable=True)
    new = flat_alive.clone()
    new[idx[order[:n_prune]]] = False
    return new.view_as(alive)


def _concat_alive(
    weights: Weights, mask: Mask, names: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """|w| and the mask of the named layers, flattened into one vector each, on the weights' device.

    |w| keeps the weights' dtype: widening is exact and keeps the order, so a stable sort ranks
    the entries exactly as in float64, without a float64 copy of every weight."""
    scores = torch.cat([weights[n].detach().abs().flatten() for n in names])
    alive = torch.cat([mask[n].flatten().to(scores.device) for n in names])
    return scores, alive


def _split_back(flat: torch.Tensor, mask: Mask, names: list[str]) -> Mask:
    out, start = dict(mask), 0
    for n in names:
        k = mask[n].numel()
        out[n] = flat[start : start + k].view_as(mask[n]).to(mask[n].device)
        start += k
    return out


@dataclass(frozen=True)
class Pruner:
    exclude: tuple[str, ...] = ()
    reads_weights: ClassVar[bool] = True  # False: the next mask does not depend on the weights

    def prunable(self, mask: Mask) -> list[str]:
        return [n for n in mask if n not in self.exclude]

    def next_mask(
        self, weights: Weights, mask: Mask, generator: torch.Generator | None = None
    ) -> Mask:
        raise NotImplementedError


@dataclass(frozen=True)
class MagnitudeGlobal(Pruner):
    """Prune `fraction` of the remaining weights with the smallest |w| across all layers."""

    fraction: float = 0.2

    def next_mask(
        self, weights: Weights, mask: Mask, generator: torch.Generator | None = None
    ) -> Mask:
        names = self.prunable(mask)
        scores, alive = _concat_alive(weights, mask, names)
        n_prune = int(round(self.fraction * int(alive.sum())))
        return _split_back(_prune_smallest(scores, alive, n_prune), mask, names)


@dataclass(frozen=True)
class MagnitudeLayer(Pruner):
    """Prune `fraction` of each layer's remaining weights with the smallest |w| in that layer."""

    fraction: float = 0.2

    def next_mask(
        self, weights: Weights, mask: Mask, generator: torch.Generator | None = None
    ) -> Mask:
        out = dict(mask)
        for n in self.prunable(mask):
            n_prune = int(round(self.fraction * int(mask[n].sum())))
            out[n] = _prune_smallest(weights[n].detach().abs(), mask[n], n_prune)
        return out


@dataclass(frozen=True)
class RandomPruner(Pruner):
    """Control: prune `fraction` of each layer's remaining weights uniformly at random."""

    fraction: float = 0.2
    reads_weights: ClassVar[bool] = False

    def next_mask(
        self, weights: Weights, mask: Mask, generator: torch.Generator | None = None
    ) -> Mask:
        if generator is None:
            raise ValueError("RandomPruner needs a seeded generator")
        out = dict(mask)
        for n in self.prunable(mask):
            n_prune = int(round(self.fraction * int(mask[n].sum())))
            scores = torch.rand(mask[n].shape, generator=generator, dtype=torch.float64)
            out[n] = _prune_smallest(scores, mask[n].cpu(), n_prune).to(mask[n].device)
        return out


def pq_index(w: torch.Tensor, p: float, q: float) -> float:
    """PQ index I(w) = 1 - d^(1/q - 1/p) ||w||_p / ||w||_q of a vector of d alive
    weights (Diao et al. 2023).

    Computed as 1 - (mean |w|^p)^(1/p) / (mean |w|^q)^(1/q), the same quantity without d-powers
    that overflow. 0 for an empty or all-zero vector (no sparsity information).
    """
    a = w.detach().abs().double().flatten()
    if a.numel() == 0 or float(a.max()) == 0.0:
        return 0.0
    a = a / a.max()  # scale-invariant; avoids underflow of |w|^q
    mp = float(a.pow(p).mean()) ** (1.0 / p)
    mq = float(a.pow(q).mean()) ** (1.0 / q)
    return 1.0 - mp / mq


def sap_prune_fraction(
    index: float, p: float, q: float, eta: float, gamma: float, beta: float
) -> float:
    """SAP: retain m = d (1+η)^(-q/(q-p)) (1-I)^(qp/(q-p)); prune clamp(γ (1 - m/d), 0, β)."""
    keep_ratio = (1 + eta) ** (-q / (q - p)) * (1 - index) ** (q * p / (q - p))
    return min(max(gamma * (1 - keep_ratio), 0.0), beta)


@dataclass(frozen=True)
class PQIndexPruner(Pruner):
    """SAP's adaptive rule: the prune fraction follows the PQ index of the alive
    weights (global scope)."""

    p: float = 0.5
    q: float = 1.0
    eta: float = 0.0
    gamma: float = 1.0
    beta: float = 0.9

    def fraction_for(self, alive_weights: torch.Tensor) -> float:
        index = pq_index(alive_weights, self.p, self.q)
        return sap_prune_fraction(index, self.p, self.q, self.eta, self.gamma, self.beta)

    def next_mask(
        self, weights: Weights, mask: Mask, generator: torch.Generator | None = None
    ) -> Mask:
        names = self.prunable(mask)
        scores, alive = _concat_alive(weights, mask, names)
        fraction = self.fraction_for(scores[alive])
        n_prune = math.floor(int(alive.sum()) * fraction)
        return _split_back(_prune_smallest(scores, alive, n_prune), mask, names)
