"""SGD with momentum, weight decay and Nesterov: torch.optim.SGD's update rule, in foreach ops.

Why not torch.optim.SGD: constructing it imports torch._dynamo (about 1.5 s per process on a
CPU), which dominated the short jobs of a Snakemake study. The update below is PyTorch's
(dampening 0): d = g + λw; b = d on the first step, else b = μb + d; w -= lr·(d + μb if
Nesterov else b). tests/test_train.py checks it against torch.optim.SGD bit for bit.
"""

from __future__ import annotations

import torch


class SGD:
    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.momentum, self.weight_decay, self.nesterov = (
            lr,
            momentum,
            weight_decay,
            nesterov,
        )
        self.buffers: list[torch.Tensor] | None = None

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        params = [p for p in self.params if p.grad is not None]
        grads = [p.grad for p in params]
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        if self.momentum:
            if self.buffers is None:
                self.buffers = [g.clone() for g in grads]
            else:
                torch._foreach_mul_(self.buffers, self.momentum)
                torch._foreach_add_(self.buffers, grads)
            grads = (
                torch._foreach_add(grads, self.buffers, alpha=self.momentum)
                if self.nesterov
                else self.buffers
            )
        torch._foreach_add_(params, grads, alpha=-self.lr)
