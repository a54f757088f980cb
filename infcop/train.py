"""The mask-aware training epoch and evaluation, with cost accounting.

One optimizer recipe (SGD + momentum + weight decay, LR a function of the step) serves every
method. After each optimizer step the masks are re-applied with one fused multi-tensor multiply,
so momentum and weight decay can never revive a pruned weight. The step loop never calls
`.item()`: the loss is accumulated on the device and read once per epoch.
"""
from __future__ import annotations

import sys
import time
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from infcop.config import ConfigError, TrainingConfig
from infcop.costs import Costs
from infcop.data import Splits, eval_batches, train_batches
from infcop.masks import MaskedWeights
from infcop.sgd import SGD


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


def train_epoch(
    model: nn.Module,
    optimizer: SGD,
    splits: Splits,
    batch_size: int,
    lr_at: Callable[[int], float],
    start_step: int,
    generator: torch.Generator,
    masked: MaskedWeights | None,
    flops_per_sample: float,
    costs: Costs,
    on_step: Callable[[int], None] | None = None,
    bf16: bool = False,
    channels_last: bool = False,
) -> float:
    """One pass over the training split. Returns the mean training loss; raises Diverged on NaN/inf.

    `lr_at(i)` gives the LR of the i-th step of this run segment counted from `start_step`;
    `on_step(step)` is called before each step (used to snapshot the rewind point).
    """
    device = splits.x_train.device
    synchronize(device)
    t0 = time.perf_counter()
    model.train()
    loss_sum = torch.zeros((), device=device)
    step = start_step
    for x, y in train_batches(splits, batch_size, generator):
        if on_step is not None:
            on_step(step)
        optimizer.lr = lr_at(step)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if masked is not None:
            masked.apply()
        loss_sum += loss.detach() * len(y)
        step += 1
    n = len(splits.y_train)
    mean_loss = float(loss_sum) / n  # the one host synchronisation of the epoch
    synchronize(device)
    costs.train_seconds += time.perf_counter() - t0
    costs.epochs += 1
    costs.optimizer_steps += step - start_step
    costs.train_samples += n
    costs.train_flops += 3 * flops_per_sample * n
    if mean_loss != mean_loss or mean_loss in (float("inf"), float("-inf")):
        raise Diverged(f"training loss is {mean_loss} after step {step}")
    return mean_loss


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, splits: Splits, batch_size: int,
             flops_per_sample: float, costs: Costs, bf16: bool = False) -> float:
    """Accuracy (fraction) of `model` on (x, y), in eval mode and inference mode."""
    device = x.device
    synchronize(device)
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for xb, yb in eval_batches(x, y, splits, batch_size):
            correct += (model(xb).argmax(1) == yb).sum()
    model.train(was_training)
    acc = int(correct) / len(y)
    costs.eval_seconds += time.perf_counter() - t0
    costs.eval_samples += len(y)
    costs.eval_flops += flops_per_sample * len(y)
    return acc


def progress(total: int, desc: str):
    """A tqdm bar on a terminal; on a log file, tqdm is silent and callers log plain lines."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not sys.stderr.isatty(), leave=False, dynamic_ncols=True)
