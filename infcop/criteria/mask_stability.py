"""Early-bird rule (You et al. 2020) for unstructured IMP: stop once the next mask stops changing.

After each epoch, draw the mask the pruner would produce now; keep the last `window`. Fire when
the newest is within ε of every older one in the window. The measured value is the largest of
those distances (None until the window is full); the distance is normalised by the kept count.
"""

from __future__ import annotations

from collections import deque

from infcop.foundations.config import Config
from infcop.core.masks import Mask
from infcop.core.models import prunable_layers
from infcop.core.pruners import Pruner
from infcop.core.train import timed
from infcop.criteria.base import Criterion, LevelContext, register_criterion


def mask_distance(a: Mask, b: Mask) -> float:
    """1 − |a ∧ b| / |a|: the share of a's kept weights that b does not keep
    (normalised by kept count)."""
    kept = int(sum(m.sum() for m in a.values()))  # counted on the masks' device, read once
    both = int(sum((a[n] & b[n]).sum() for n in a))
    return 1.0 - both / kept if kept else 0.0


@register_criterion
class MaskStability(Criterion):
    name = "mask_stability"
    key = "mask_distance"
    reason = "mask"
    label = "mask stability"
    default_threshold = 0.1

    def __init__(self, pruner: Pruner, window: int = 5, epsilon: float | None = None):
        super().__init__(epsilon)
        self.pruner, self.window = pruner, window
        self.history: deque = deque(maxlen=window)

    @property
    def epsilon(self) -> float:
        return self.threshold

    @classmethod
    def for_diagnosis(cls, cfg: Config, pruner: Pruner) -> "MaskStability | None":
        # a pruner that ignores the weights (random) has no mask to stabilise
        return cls(pruner) if pruner.reads_weights else None

    def begin_level(self, ctx: LevelContext) -> None:
        self.history.clear()

    def push(self, candidate: Mask) -> float | None:
        self.history.append(candidate)
        if len(self.history) < self.window:
            return None
        newest = self.history[-1]
        return max(mask_distance(newest, older) for older in list(self.history)[:-1])

    def measure(self, ctx: LevelContext, val_acc: float) -> float | None:
        with timed(next(ctx.model.parameters()).device, ctx.costs, "monitor_seconds"):
            weights = {n: m.weight for n, m in prunable_layers(ctx.model).items()}
            return self.push(self.pruner.next_mask(weights, ctx.mask))

    def fires_at(self, value: float | None, threshold: float) -> bool:
        return value is not None and value <= threshold

    def describe(self) -> dict:
        return {"key": self.key, "window": self.window, "epsilon": self.threshold}

    def sweep(self, cfg: Config) -> tuple[float, ...]:
        return (self.threshold,)
