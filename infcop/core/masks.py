"""Masks: one boolean tensor per prunable weight, keyed by layer name.

Density is always computed from the masks, never by counting nonzero weights (a weight can be
alive and exactly zero; a bug can leave a pruned weight nonzero).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from infcop.core.models import prunable_layers
from infcop.foundations.storage import atomic_torch_save

Mask = dict[str, torch.Tensor]


def full_mask(model: nn.Module) -> Mask:
    return {
        name: torch.ones_like(m.weight, dtype=torch.bool)
        for name, m in prunable_layers(model).items()
    }


def density(mask: Mask) -> float:
    kept = sum(int(m.sum()) for m in mask.values())
    total = sum(m.numel() for m in mask.values())
    return kept / total


class MaskedWeights:
    """The prunable weights of a model paired with their masks, for fused re-application.

    `torch._foreach_mul_` zeroes every pruned weight in one multi-tensor op after each optimizer
    step, which is what keeps momentum and weight decay from reviving pruned weights.
    """

    def __init__(self, model: nn.Module, mask: Mask):
        layers = prunable_layers(model)
        if set(layers) != set(mask):
            raise ValueError(
                f"mask layers {sorted(mask)} do not match the model's prunable layers "
                f"{sorted(layers)}"
            )
        self.weights = [layers[n].weight for n in layers]
        self.masks = [
            mask[n].to(device=w.device, dtype=w.dtype) for n, w in zip(layers, self.weights)
        ]

    @torch.no_grad()
    def apply(self) -> None:
        torch._foreach_mul_(self.weights, self.masks)


def apply_mask(model: nn.Module, mask: Mask) -> None:
    MaskedWeights(model, mask).apply()


def save_mask(mask: Mask, path: Path) -> None:
    atomic_torch_save({n: m.cpu() for n, m in mask.items()}, path)


def load_mask(path: Path) -> Mask:
    return {n: m.bool() for n, m in torch.load(path, map_location="cpu", weights_only=True).items()}
