"""InfCoP's two flow criteria as the authors' code computes them (docs/method.md §7b), beside the
corrected ones in information_flow.py and gradient_flow.py.

* IF as released: ‖ρ − ρ*‖₂ < ε, ρ from the whole training split in two float32 passes (no NaN guard
  on the variance: a NaN anywhere in the current correlations means "never stop", no distance).
* GF as released: ‖norms − means*‖₂ < ε, from the `.grad` the last training minibatch left (times
  the mask), per layer mean |g| (reference) and ‖|g|‖_F (now), each summed over a forward-only sweep
  of the training split and divided by (batches − 1). The sweep does nothing else; it is charged as
  what the released rule costs.

The references (rewind point, i.e. right after the warm-up) come from `ctx.reference.released`
(infcop/engine/reference.py). ε is absolute: `stopping.epsilon_mode` does not apply.
"""

from __future__ import annotations

import torch

from infcop.foundations.config import Config
from infcop.core.costs import Costs
from infcop.core.flows import (
    ReleasedReference,
    released_distance,
    released_gradient_layers,
    released_gradient_stats,
    released_information_flow,
    released_sweep_sum,
    training_sweep,
)
from infcop.core.models import prunable_layers
from infcop.core.pruners import Pruner
from infcop.core.train import timed
from infcop.criteria.base import Criterion, LevelContext, register_criterion


class ReleasedFlow(Criterion):
    reason = "flow"
    needs_flow_reference = True
    grid: tuple[float, ...] = ()  # the authors' ε grid, evaluated in diagnostic runs
    passes = 1  # forward passes over the training split per measurement

    def __init__(self, batch_size: int, threshold: float | None = None):
        super().__init__(threshold)
        self.batch_size = batch_size

    @classmethod
    def for_diagnosis(cls, cfg: Config, pruner: Pruner) -> None:
        return None  # whole-training-split sweeps: measured only where a released variant runs

    def released(self, ctx: LevelContext) -> ReleasedReference:
        if ctx.reference is None or ctx.reference.released is None:
            raise ValueError(f"{type(self).__name__} needs the as-released flow reference")
        return ctx.reference.released

    def charge_setup(self, ctx: LevelContext) -> None:
        ref = self.released(ctx)
        self.reference(ref)  # measured now if not yet: its samples and seconds are known after
        ctx.costs.monitor_forward_samples += ref.samples[self.flow_name]
        ctx.costs.monitor_flops += ref.samples[self.flow_name] * ctx.dense_flops_per_sample
        ctx.costs.monitor_seconds += ref.seconds[self.flow_name]

    def charge(self, costs: Costs, samples: int, flops_per_sample: float) -> None:
        costs.monitor_forward_samples += self.passes * samples
        costs.monitor_flops += self.passes * samples * flops_per_sample

    def fires_at(self, value: float | None, threshold: float) -> bool:
        return value is not None and value < threshold  # NaN never stops

    def describe(self) -> dict:
        return {
            "key": self.key,
            "epsilon": self.threshold,
            "threshold": self.threshold,
            "implementation": "released",
        }

    def sweep(self, cfg: Config) -> tuple[float, ...]:
        return self.grid

    def training_split_samples(self, n_train: int) -> tuple[int, int]:
        # the reference: the same sweeps through the dense network (IF: after one train-mode batch)
        setup = self.passes * n_train + (self.batch_size if self.flow_name == "information" else 0)
        return self.passes * n_train, setup


@register_criterion
class ReleasedInformationFlow(ReleasedFlow):
    name = "information_flow_released"
    key = "if_released_distance"
    label = "IF (as released)"
    default_threshold = 0.11
    flow_name = "information"
    grid = (0.08, 0.10, 0.11, 0.12, 0.15)
    passes = 2

    def reference(self, ref: ReleasedReference) -> torch.Tensor:
        return ref.information()

    def measure(self, ctx: LevelContext, val_acc: float) -> float | None:
        ref = self.reference(self.released(ctx))
        splits = self.released(ctx).splits
        with timed(next(ctx.model.parameters()).device, ctx.costs, "monitor_seconds"):
            rho, has_nan = released_information_flow(ctx.model, splits, self.batch_size)
        self.charge(ctx.costs, len(splits.y_train), ctx.flops_per_sample)
        return None if has_nan else released_distance(rho, ref)


@register_criterion
class ReleasedGradientFlow(ReleasedFlow):
    name = "gradient_flow_released"
    key = "gf_released_distance"
    label = "GF (as released)"
    default_threshold = 0.5
    reads_training_gradient = True
    flow_name = "gradient"
    grid = (0.3, 0.4, 0.5, 0.6, 0.7, 1.0)

    def reference(self, ref: ReleasedReference) -> torch.Tensor:
        return ref.gradient()

    def measure(self, ctx: LevelContext, val_acc: float) -> float:
        ref = self.reference(self.released(ctx))
        splits = self.released(ctx).splits
        with timed(next(ctx.model.parameters()).device, ctx.costs, "monitor_seconds"):
            grads = masked_gradients(ctx)
            n_batches = training_sweep(ctx.model, splits, self.batch_size)
            _, norms = released_gradient_stats(grads)
            now = released_sweep_sum(norms, n_batches)
        self.charge(ctx.costs, len(splits.y_train), ctx.flops_per_sample)
        return released_distance(now, ref)


def masked_gradients(ctx: LevelContext) -> list[torch.Tensor]:
    """The `.grad` training left on every released gradient-flow layer, times its mask (the
    authors zeroed pruned gradients before the step; the harness masks weights after it)."""
    layers = prunable_layers(ctx.model)
    masks = {id(m.weight): ctx.mask[n] for n, m in layers.items() if n in ctx.mask}
    out = []
    for name, p in released_gradient_layers(ctx.model).items():
        if p.grad is None:
            raise ValueError(
                f"{name} has no gradient: the released gradient flow reads the last "
                "training minibatch's, so it must follow a training epoch"
            )
        mask = masks.get(id(p))
        g = p.grad
        out.append(g if mask is None else g * mask.to(device=g.device, dtype=g.dtype))
    return out
