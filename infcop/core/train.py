"""The mask-aware training epoch and evaluation, with cost accounting.

One optimizer recipe (SGD + momentum + weight decay, LR a function of the step) serves every
method. After each optimizer step the masks are re-applied with one fused multi-tensor multiply,
so momentum and weight decay can never revive a pruned weight. The step loop never calls
`.item()`: the loss is accumulated on the device and read once per epoch.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from infcop.foundations.config import ConfigError, TrainingConfig
from infcop.core.costs import Costs
from infcop.core.data import Splits, eval_batches, train_batches
from infcop.core.masks import MaskedWeights
from infcop.core.sgd import SGD

EVAL_BATCH = 1024  # the evaluation batch on CPU, and its cap on a GPU
EVAL_MEMORY_SHARE = 0.5  # share of the free GPU memory one evaluation batch's activations may take
EVAL_PROBE = 8  # samples of the forward pass that measures a sample's activation memory on a GPU


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def resolve_device(
    name: str, *, deterministic: bool = False, cudnn_benchmark: bool = False
) -> torch.device:
    """The device `experiment.device` names, with its kernels chosen as
    `experiment.deterministic` and `experiment.cudnn_benchmark` ask (both off: torch's defaults,
    as before these keys existed)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "experiment.device: cuda, but no CUDA device is available here; use cpu or auto"
        )
    configure_kernels(deterministic=deterministic, cudnn_benchmark=cudnn_benchmark)
    return torch.device(name)


def configure_kernels(*, deterministic: bool, cudnn_benchmark: bool) -> None:
    """Deterministic: cuDNN and cuBLAS restricted to bitwise-reproducible algorithms, so a resumed
    GPU run repeats an uninterrupted one; an op with no such kernel (adaptive average pooling's
    backward on CUDA, which only accumulates atomically where outputs overlap) warns instead of
    stopping the run, and scripts/gpu-check verifies the resume on the paper's ResNet-18.
    Benchmark: cuDNN times its algorithms for each new shape and keeps the fastest, which may
    differ from run to run. CPU kernels are deterministic either way; both settings only change
    which GPU kernels run."""
    if deterministic and cudnn_benchmark:
        raise ConfigError(
            "experiment.deterministic and experiment.cudnn_benchmark: choose one (benchmarking "
            "picks algorithms by timing, which is not reproducible)"
        )
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = cudnn_benchmark
    if deterministic or torch.are_deterministic_algorithms_enabled():
        # the call imports torch's compiler stack (~2 s of every job's
        # start-up): not for the default
        torch.use_deterministic_algorithms(deterministic, warn_only=True)


def autocast(device: torch.device, bf16: bool) -> Callable[[], ContextManager]:
    """A factory of the bf16 autocast context, or of a no-op one when bf16 is off (entering a
    disabled autocast every step still costs a few percent of a small model's step)."""
    if not bf16:
        return nullcontext
    return functools.partial(torch.autocast, device.type, dtype=torch.bfloat16)


def make_optimizer(model: nn.Module, tc: TrainingConfig) -> SGD:
    return SGD(
        model.parameters(),
        lr=tc.lr,
        momentum=tc.momentum,
        nesterov=tc.nesterov,
        weight_decay=tc.weight_decay,
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def timed(device: torch.device, costs: Costs, field: str) -> Iterator[None]:
    """Add the wall seconds of the block to `costs.<field>`, with the device synchronised
    at both ends (CUDA work is asynchronous: without the synchronisation a timer measures
    only the launch)."""
    synchronize(device)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        synchronize(device)
        setattr(costs, field, getattr(costs, field) + time.perf_counter() - t0)


@dataclass
class Trainer:
    """Everything one level's epochs share: the model under its mask, optimizer,
    data and cost meter."""

    model: nn.Module
    optimizer: SGD
    splits: Splits
    batch_size: int
    flops_per_sample: float
    costs: Costs
    masked: MaskedWeights | None = None
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False
    _forward: nn.Module | None = field(default=None, init=False, repr=False)
    _eval_batch: int | None = field(default=None, init=False, repr=False)

    @property
    def device(self) -> torch.device:
        return self.splits.x_train.device

    @property
    def forward(self) -> nn.Module:
        """The model, or its `torch.compile`d form sharing its parameters
        (compiled on first use)."""
        if self._forward is None:
            self._forward = torch.compile(self.model) if self.compile else self.model
        return self._forward

    @property
    def eval_batch(self) -> int:
        if self._eval_batch is None:
            self._eval_batch = eval_batch_size(
                self.model, self.splits.input_shape, self.device, self.bf16
            )
        return self._eval_batch

    def train_epoch(
        self,
        lr_at: Callable[[int], float],
        start_step: int,
        generator: torch.Generator,
        on_step: Callable[[int], None] | None = None,
    ) -> float:
        """One pass over the training split; returns the mean training loss, raises
        Diverged on NaN/inf.

        Optimizer step `i` (counted from `start_step`) uses `lr_at(i)`; `on_step(i)` runs before it
        (the dense run snapshots the rewind point there).
        """
        model, optimizer, device, forward = self.model, self.optimizer, self.device, self.forward
        cast = autocast(device, self.bf16)
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
                with cast():
                    loss = F.cross_entropy(forward(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if self.masked is not None:
                    self.masked.apply()
                loss_sum += loss.detach() * len(y)
                step += 1
            # the one host synchronisation of the epoch
            mean_loss = float(loss_sum) / len(self.splits.y_train)
        self.charge_epoch(step - start_step)
        if mean_loss != mean_loss or mean_loss in (float("inf"), float("-inf")):
            raise Diverged(f"training loss is {mean_loss} after step {step}")
        return mean_loss

    def charge_epoch(self, steps: int, seconds: float = 0.0) -> None:
        """Count one training epoch of `steps` steps (and `seconds`, where the timer did not)."""
        costs, n = self.costs, len(self.splits.y_train)
        costs.train_seconds += seconds
        costs.epochs += 1
        costs.optimizer_steps += steps
        costs.train_samples += n
        costs.train_flops += 3 * self.flops_per_sample * n

    def evaluate(self, split: str, for_stopping: bool = False) -> float:
        """Accuracy on 'val' or 'test'. Charged to the monitoring costs when a stopping rule reads
        it, else to the evaluation costs (bookkeeping that no method is charged for)."""
        s = self.splits
        x, y = (s.x_val, s.y_val) if split == "val" else (s.x_test, s.y_test)
        return evaluate(
            self.model,
            x,
            y,
            s,
            self.eval_batch,
            self.flops_per_sample,
            self.costs,
            self.bf16,
            for_stopping,
        )


def fitting_batch(per_sample_bytes: float, free_bytes: float, cap: int = EVAL_BATCH) -> int:
    """The largest batch, at most `cap`, whose activations take at most EVAL_MEMORY_SHARE of
    `free_bytes`."""
    if per_sample_bytes <= 0:
        return cap
    return max(1, min(cap, int(EVAL_MEMORY_SHARE * free_bytes / per_sample_bytes)))


def eval_batch_size(
    model: nn.Module, input_shape: tuple[int, ...], device: torch.device, bf16: bool
) -> int:
    """EVAL_BATCH on CPU (so CPU records never change); on a GPU, a batch whose activations fit the
    free memory, from the allocator's peak during a forward pass of EVAL_PROBE samples."""
    if device.type != "cuda":
        return EVAL_BATCH
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    was_training = model.training
    model.eval()
    with torch.inference_mode(), autocast(device, bf16)():
        model(torch.zeros((EVAL_PROBE, *input_shape), device=device))
    model.train(was_training)
    per_sample = (torch.cuda.max_memory_allocated(device) - base) / EVAL_PROBE
    return fitting_batch(per_sample, torch.cuda.mem_get_info(device)[0])


def evaluation_fields(for_stopping: bool) -> tuple[str, str, str]:
    """The cost fields an evaluation is charged to: seconds, samples, FLOPs."""
    return (
        ("monitor_seconds", "monitor_forward_samples", "monitor_flops")
        if for_stopping
        else ("eval_seconds", "eval_samples", "eval_flops")
    )


def charge_evaluation(
    costs: Costs, samples: int, flops_per_sample: float, for_stopping: bool, seconds: float = 0.0
) -> None:
    """Count one evaluation pass over `samples` samples (and `seconds`, where the timer did not)."""
    t, n, f = evaluation_fields(for_stopping)
    setattr(costs, t, getattr(costs, t) + seconds)
    setattr(costs, n, getattr(costs, n) + samples)
    setattr(costs, f, getattr(costs, f) + flops_per_sample * samples)


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    splits: Splits,
    batch_size: int,
    flops_per_sample: float,
    costs: Costs,
    bf16: bool = False,
    for_stopping: bool = False,
) -> float:
    """Accuracy (fraction) of `model` on (x, y), in eval mode and inference mode."""
    with timed(x.device, costs, evaluation_fields(for_stopping)[0]):
        was_training = model.training
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=x.device)
        with torch.inference_mode(), autocast(x.device, bf16)():
            for xb, yb in eval_batches(x, y, splits, batch_size):
                correct += (model(xb).argmax(1) == yb).sum()
        model.train(was_training)
        acc = int(correct) / len(y)
    charge_evaluation(costs, len(y), flops_per_sample, for_stopping)
    return acc


def progress(total: int, desc: str):
    """A tqdm bar on a terminal; on a log file, tqdm is silent and callers log plain lines."""
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, disable=not sys.stderr.isatty(), leave=False, dynamic_ncols=True
    )
