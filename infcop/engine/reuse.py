"""Training epochs that another run of the same seed already computed, reused instead of recomputed.

Runs of one dataset x model x seed often walk the same trajectory for a while (two InfCoP criteria
that stop at the same epochs, `wr` and `fixed_same_reset`, a diagnostic run and the run it
diagnoses). An epoch and the validation pass after it are a function of what they start from, so
they are keyed by the content of all of it:

* the model's weights and buffers, the optimizer's momentum (None right after the level's fresh
  optimizer) and the mask re-applied after every step;
* the LR of every step of the epoch, the data-order generator's state (seed, level, epoch), the
  global RNG state (dropout draws from it) and the recipe: batch size, momentum, weight decay,
  Nesterov, bf16, channels-last, compile, the evaluation batch;
* the run context: data, model and training config (augmentation, resize...), the data's content
  hash, the device, the CPU threads, torch's version and the source of the code that trains.

An entry holds what the epoch produced (weights and buffers, momentum, RNG state, mean training
loss, validation accuracy) and the wall seconds the run that computed it spent training and
validating. A run that finds its key restores that state and is charged those seconds, and the
epoch's FLOPs, samples and steps, exactly as if it had trained: its records are the ones it would
have written (only `wall_seconds`, the run's real elapsed time, is shorter). The criteria measure
after the epoch from the restored model, as always. Entries are written atomically with a
checksum; an unreadable one is deleted and recomputed, and a killed job finds every complete entry
when it restarts. The directory is bounded by `experiment.epoch_cache_mb` (oldest entries go
first) and removed when a seed job finishes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import sys
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

from infcop.core.train import Trainer, charge_evaluation, evaluation_fields
from infcop.engine.checkpoint import capture_rng, restore_rng
from infcop.foundations.config import Config, canonical
from infcop.foundations.paths import EpochCacheDir, study_dir
from infcop.foundations.storage import (
    CHECKSUM_KEY,
    TMP_SUFFIX,
    CorruptFile,
    load_checkpoint,
    tensors_sha256,
)

log = logging.getLogger("infcop")
TRAINING_CODE = (
    "infcop.core.train",
    "infcop.core.sgd",
    "infcop.core.data",
    "infcop.core.masks",
    "infcop.engine.reuse",
)


@lru_cache(maxsize=None)
def _source_sha256(modules: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for name in modules:
        path = getattr(sys.modules.get(name), "__file__", None)
        h.update(name.encode() + (Path(path).read_bytes() if path else b"?"))
    return h.hexdigest()


def run_context(
    cfg: Config, splits_source: dict, model: torch.nn.Module, device: torch.device
) -> str:
    """What the runs sharing an entry must share beside the epoch's own inputs."""
    modules = tuple(sorted({*TRAINING_CODE, *(type(m).__module__ for m in model.modules())}))
    return ";".join(
        [
            canonical(cfg.data),
            canonical(cfg.model),
            canonical(cfg.training),
            str(splits_source.get("content_sha256")),
            str(device),
            torch.__version__,
            _source_sha256(modules),
        ]
    )


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def cache_dir(cfg: Config, seed: int) -> EpochCacheDir:
    ex = cfg.experiment
    return study_dir(ex.results_dir, ex.name).epoch_cache(cfg.data.dataset, cfg.model.name, seed)


class EpochCache:
    """Trained epochs of one dataset x model x seed, shared by its runs (in one
    or more processes)."""

    def __init__(self, root: EpochCacheDir, context: str, budget_mb: int):
        self.root, self.context, self.budget = root, context, budget_mb * 2**20
        self.hits = self.misses = 0
        self._stored: int | None = None  # bytes in the directory, counted at the first write

    def key(
        self,
        trainer: Trainer,
        lr_at: Callable[[int], float],
        start_step: int,
        generator: torch.Generator,
    ) -> str:
        opt = trainer.optimizer
        steps = trainer.splits.steps_per_epoch(trainer.batch_size)
        tensors = {
            "model": trainer.model.state_dict(),
            "momentum": opt.buffers or [],
            "mask": trainer.masked.masks if trainer.masked is not None else [],
            "data_order": generator.get_state(),
            "rng": capture_rng(),
        }
        recipe = [
            self.context,
            trainer.batch_size,
            opt.momentum,
            opt.weight_decay,
            opt.nesterov,
            opt.buffers is None,
            trainer.masked is None,
            trainer.bf16,
            trainer.channels_last,
            trainer.compile,
            trainer.eval_batch,
            torch.get_num_threads(),
            [lr_at(s).hex() for s in range(start_step, start_step + steps)],
        ]
        return hashlib.sha256(f"{tensors_sha256(tensors)};{recipe!r}".encode()).hexdigest()

    def train_and_validate(
        self,
        trainer: Trainer,
        lr_at: Callable[[int], float],
        start_step: int,
        generator: torch.Generator,
        *,
        for_stopping: bool,
    ) -> tuple[float, float]:
        """`trainer.train_epoch` then `trainer.evaluate("val")`: the mean training loss and the
        validation accuracy, reused when an earlier run computed this epoch from the same inputs."""
        key = self.key(trainer, lr_at, start_step, generator)
        entry = self._load(key)
        if entry is not None:
            self.hits += 1
            return self._replay(trainer, entry, for_stopping)
        self.misses += 1
        costs, seconds_field = trainer.costs, evaluation_fields(for_stopping)[0]
        train_before, val_before = costs.train_seconds, getattr(costs, seconds_field)
        loss = trainer.train_epoch(lr_at, start_step, generator)
        train_seconds = costs.train_seconds - train_before
        val_acc = trainer.evaluate("val", for_stopping=for_stopping)
        buffers = trainer.optimizer.buffers
        self._store(
            key,
            {
                "key": key,
                "model": trainer.model.state_dict(),
                "momentum": None if buffers is None else list(buffers),
                "rng": capture_rng(),
                "loss": loss,
                "val_acc": val_acc,
                "steps": trainer.splits.steps_per_epoch(trainer.batch_size),
                "train_seconds": train_seconds,
                "val_seconds": getattr(costs, seconds_field) - val_before,
            },
        )
        return loss, val_acc

    @staticmethod
    def _replay(trainer: Trainer, entry: dict, for_stopping: bool) -> tuple[float, float]:
        model, opt, device = trainer.model, trainer.optimizer, trainer.device
        model.load_state_dict(entry["model"])
        model.train()  # as train_epoch leaves it; evaluation restores the mode it finds
        momentum = entry["momentum"]
        opt.buffers = None if momentum is None else [b.to(device) for b in momentum]
        restore_rng(entry["rng"])
        trainer.charge_epoch(entry["steps"], entry["train_seconds"])
        charge_evaluation(
            trainer.costs,
            len(trainer.splits.y_val),
            trainer.flops_per_sample,
            for_stopping,
            entry["val_seconds"],
        )
        return entry["loss"], entry["val_acc"]

    def _load(self, key: str) -> dict | None:
        path = self.root.entry(key)
        if self.budget <= 0 or not path.exists():
            return None
        try:
            entry = load_checkpoint(path)
        except CorruptFile as err:
            log.warning("epoch cache entry unusable, recomputing it: %s", err)
            path.unlink(missing_ok=True)
            return None
        if entry.get("key") != key:
            return None
        path.touch()  # recently used: evicted last
        return entry

    def _store(self, key: str, entry: dict) -> None:
        if self.budget <= 0:
            return
        path = self.root.entry(key)
        if self._stored is None:
            self.root.root.mkdir(parents=True, exist_ok=True)
            self._stored = sum(size for _, size, _ in self._sized())
        # atomic without storage.save_checkpoint's fsync: an entry must survive a killed process
        # (the rename does that), not a power cut (a lost entry is only recomputed)
        tmp = path.parent / f".{path.name}.{socket.gethostname()}.{os.getpid()}{TMP_SUFFIX}"
        try:
            torch.save({**entry, CHECKSUM_KEY: tensors_sha256(entry)}, tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._stored += path.stat().st_size
        if self._stored > self.budget:
            self._stored = self._evict(keep=path)

    def remove_dead_temporaries(self) -> None:
        """Temporaries of writes killed on this host: their process no longer runs."""
        host = socket.gethostname()
        for tmp in self.root.root.glob(f".*.{host}.*{TMP_SUFFIX}"):
            pid = tmp.name[: -len(TMP_SUFFIX)].rsplit(".", 1)[-1]
            if pid.isdigit() and not _running(int(pid)):
                tmp.unlink(missing_ok=True)

    def _sized(self) -> list[tuple[float, int, Path]]:
        sized = []
        for p in self.root.entries():
            try:
                stat = p.stat()
            except FileNotFoundError:  # another job evicted it meanwhile
                continue
            sized.append((stat.st_mtime, stat.st_size, p))
        return sized

    def _evict(self, keep: Path) -> int:
        """Delete the least recently used entries until the directory fits the budget.
        Returns the bytes left."""
        sized = self._sized()
        total = sum(size for _, size, _ in sized)
        for _, size, p in sorted(sized, key=lambda t: t[0]):
            if total <= self.budget:
                break
            if p != keep:
                p.unlink(missing_ok=True)
                total -= size
        return total


def drop_cache(cfg: Config, seed: int) -> None:
    """Delete the seed's entries (its runs are all done) and the folders left empty above them."""
    root = cache_dir(cfg, seed).root
    shutil.rmtree(root, ignore_errors=True)
    for parent in list(root.parents)[:4]:  # <model>/, <dataset>/, epochs/, cache/
        try:
            parent.rmdir()
        except OSError:  # not empty: another pair's or seed's entries
            break


def epoch_cache(
    cfg: Config, seed: int, splits_source: dict, model: torch.nn.Module, device: torch.device
) -> EpochCache | None:
    """The cache the runs of this dataset x model x seed share, or None when reuse is off."""
    if cfg.experiment.epoch_cache_mb <= 0:
        return None
    cache = EpochCache(
        cache_dir(cfg, seed),
        run_context(cfg, splits_source, model, device),
        cfg.experiment.epoch_cache_mb,
    )
    cache.remove_dead_temporaries()
    return cache
