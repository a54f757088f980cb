"""The mask-aware training epoch and evaluation, with cost accounting.

One optimizer recipe (SGD + momentum + weight decay, LR a function of the step) serves every
method. After each optimizer step the masks are re-applied with one fused multi-tensor multiply,
so momentum and weight decay can never revive a pruned weight. The step loop never calls
`.item()`: the loss is accumulated on the device and read once per epoch.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from infcop.foundations.config import ConfigError, TrainingConfig
from infcop.core.costs import Costs
from infcop.core.data import Splits, eval_batches, train_batches
from infcop.core.masks import MaskedWeights
from infcop.core.sgd import SGD

EVAL_BATCH = 1024


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("experiment.device: cuda, but no CUDA device is available here; use cpu or auto")
    return torch.device(name)


def make_optimizer(model: nn.Module, tc: TrainingConfig) -> SGD:
    return SGD(model.parameters(), lr=tc.lr, momentum=tc.momentum, nesterov=tc.nesterov, weight_decay=tc.weight_decay)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def timed(device: torch.device, costs: Costs, field: str) -> Iterator[None]:
    """Add the wall seconds of the block to `costs.<field>`, with the device synchronised at both ends
    (CUDA work is asynchronous: without the synchronisation a timer measures only the launch)."""
    synchronize(device)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        synchronize(device)
        setattr(costs, field, getattr(costs, field) + time.perf_counter() - t0)


@dataclass
class Trainer:
    """Everything one level's epochs share: the model under its mask, optimizer, data and cost meter."""

    model: nn.Module
    optimizer: SGD
    splits: Splits
    batch_size: int
    flops_per_sample: float
    costs: Costs
    masked: MaskedWeights | None = None
    bf16: bool = False
    channels_last: bool = False

    @property
    def device(self) -> torch.device:
        return self.splits.x_train.device

    def train_epoch(self, lr_at: Callable[[int], float], start_step: int, generator: torch.Generator,
                    on_step: Callable[[int], None] | None = None) -> float:
        """One pass over the training split; returns the mean training loss, raises Diverged on NaN/inf.

        Optimizer step `i` (counted from `start_step`) uses `lr_at(i)`; `on_step(i)` runs before it
        (the dense run snapshots the rewind point there).
        """
        model, optimizer, device = self.model, self.optimizer, self.device
        loss_sum = torch.zeros((), device=device)
        step = start_step
        with timed(device, self.costs, "train_seconds"):
            model.train()
            for x, y in train_batches(self.splits, self.batch_size, generator):
                if on_step is not None:
                    on_step(step)
                optimizer.lr = lr_at(step)
                if self.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
                    loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if self.masked is not None:
                    self.masked.apply()
                loss_sum += loss.detach() * len(y)
                step += 1
            n = len(self.splits.y_train)
            mean_loss = float(loss_sum) / n  # the one host synchronisation of the epoch
        costs = self.costs
        costs.epochs += 1
        costs.optimizer_steps += step - start_step
        costs.train_samples += n
        costs.train_flops += 3 * self.flops_per_sample * n
        if mean_loss != mean_loss or mean_loss in (float("inf"), float("-inf")):
            raise Diverged(f"training loss is {mean_loss} after step {step}")
        return mean_loss

    def evaluate(self, split: str, for_stopping: bool = False) -> float:
        """Accuracy on 'val' or 'test'. Charged to the monitoring costs when a stopping rule reads it,
        else to the evaluation costs (bookkeeping that no method is charged for)."""
        s = self.splits
        x, y = (s.x_val, s.y_val) if split == "val" else (s.x_test, s.y_test)
        return evaluate(self.model, x, y, s, EVAL_BATCH, self.flops_per_sample, self.costs, self.bf16, for_stopping)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, splits: Splits, batch_size: int,
             flops_per_sample: float, costs: Costs, bf16: bool = False, for_stopping: bool = False) -> float:
    """Accuracy (fraction) of `model` on (x, y), in eval mode and inference mode."""
    seconds, samples, flops = (("monitor_seconds", "monitor_forward_samples", "monitor_flops") if for_stopping
                               else ("eval_seconds", "eval_samples", "eval_flops"))
    with timed(x.device, costs, seconds):
        was_training = model.training
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=x.device)
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            for xb, yb in eval_batches(x, y, splits, batch_size):
                correct += (model(xb).argmax(1) == yb).sum()
        model.train(was_training)
        acc = int(correct) / len(y)
    setattr(costs, samples, getattr(costs, samples) + len(y))
    setattr(costs, flops, getattr(costs, flops) + flops_per_sample * len(y))
    return acc


def progress(total: int, desc: str):
    """A tqdm bar on a terminal; on a log file, tqdm is silent and callers log plain lines."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not sys.stderr.isatty(), leave=False, dynamic_ncols=True)
