"""Cost accounting: epochs, steps, samples, seconds and mask-aware theoretical FLOPs.

FLOP convention (ShrinkBench-style, conv/linear only): a forward pass of one sample costs
2 x (alive weights) x (output positions) per layer -- one multiply and one add per weight use;
a backward pass costs twice the forward. Biases, norms and activations are not counted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn

from infcop.core.masks import Mask
from infcop.core.models import prunable_layers


@dataclass
class Costs:
    epochs: int = 0
    optimizer_steps: int = 0
    train_samples: int = 0
    eval_samples: int = 0
    monitor_forward_samples: int = 0
    monitor_backward_samples: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    monitor_seconds: float = 0.0
    train_flops: float = 0.0
    eval_flops: float = 0.0
    monitor_flops: float = 0.0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict) -> "Costs":
        return cls(**{k: d[k] for k in cls.fields()})

    def __add__(self, other: "Costs") -> "Costs":
        return Costs(**{k: getattr(self, k) + getattr(other, k) for k in self.fields()})


# The costs a speedup is computed on, for a level or a whole run: training plus exactly the work the
# method's stopping rule needs (`monitor_*`): its criteria's measurements, the validation passes of
# a rule that reads validation accuracy, and the one-off dense flow reference of a flow rule. The
# `eval_*` costs are bookkeeping every run does for its record (validation every epoch, test once
# per level) and are charged to no method. FLOPs and seconds count the same work.
COMPARED_COSTS = {
    "epochs": lambda c: c.epochs,
    "flops": lambda c: c.train_flops + c.monitor_flops,
    "wall": lambda c: c.train_seconds + c.monitor_seconds,
}


def output_positions(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Per prunable layer: output positions per sample (1 for Linear, H*W or L for convs)."""
    positions: dict[str, int] = {}
    handles = []
    for name, m in prunable_layers(model).items():

        def hook(mod: nn.Module, inp: tuple, out: torch.Tensor, name: str = name) -> None:
            positions[name] = out[0].numel() // (
                mod.out_features if isinstance(mod, nn.Linear) else mod.out_channels
            )

        handles.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=p.device, dtype=p.dtype))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return positions


def forward_flops(positions: dict[str, int], mask: Mask) -> float:
    """FLOPs of one sample's forward pass through the conv/linear layers under `mask`."""
    return float(sum(2 * int(mask[n].sum()) * positions[n] for n in positions))
