"""Level 0: dense training, run once per dataset x model x seed and shared by every method.

Saves θ₀ (`init.pt`), the rewind point θ_t with its step (`rewind.pt`, BN buffers included),
the trained weights (`final.pt`) and `record.json`. If the record exists with the same config
hash it is reused; with a different hash it is an error, never silently reused.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn as nn

from infcop.config import Config, dense_hash, to_dict
from infcop.costs import Costs, forward_flops, output_positions
from infcop.data import Splits, epoch_generator, load_splits
from infcop.masks import full_mask
from infcop.models import build_model
from infcop.records import (atomic_torch_save, atomic_write_csv, atomic_write_json, dense_dir, load_checkpoint,
                            now, provenance, read_json)
from infcop.schedule import LRSchedule, point_to_step
from infcop.tracking import NOTHING_BEFORE, Tracker, epoch_metrics
from infcop.train import Diverged, evaluate, make_optimizer, progress, train_epoch

log = logging.getLogger("infcop")
EVAL_BATCH = 1024


class ConfigMismatch(RuntimeError):
    """A result on disk was produced by a different configuration."""


@dataclass
class DenseRun:
    dir: Path
    record: dict
    rewind_step: int

    def state(self, which: str) -> dict:
        """'init', 'rewind' or 'final' weights (state dict incl. BN buffers)."""
        return load_checkpoint(self.dir / f"{which}.pt")["state"]

    @property
    def complete(self) -> bool:
        return self.record["status"] == "complete"


def state_sha256(state: dict) -> str:
    """Content hash of a state dict: proves two runs started from the same level-0 weights."""
    h = hashlib.sha256()
    for k, v in state.items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def seeded_model(cfg: Config, splits: Splits, seed: int, device: torch.device) -> nn.Module:
    """θ₀ is a function of the seed alone: the same for every method with that seed."""
    torch.manual_seed(seed)
    model = build_model(cfg.model.name, splits.input_shape, splits.num_classes, cfg.model.pretrained).to(device)
    if cfg.training.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise concurrent jobs that would produce the same result (e.g. two methods' first dense run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_dense(cfg: Config, seed: int, device: torch.device, splits: Splits | None = None) -> DenseRun:
    d = dense_dir(cfg.experiment.results_dir, cfg.experiment.name, cfg.data.dataset, cfg.model.name, seed)
    with file_lock(d.parent / f".seed{seed}.lock"):
        if (d / "record.json").exists():
            record = read_json(d / "record.json")
            if record.get("config_hash") != dense_hash(cfg):
                raise ConfigMismatch(
                    f"{d} holds a dense run with config hash {record.get('config_hash')}, but this config's dense "
                    f"hash is {dense_hash(cfg)} (data/model/training changed). Use another experiment.name or "
                    f"delete {d}.")
            log.info("dense level 0 reused from %s", d)
            return DenseRun(d, record, record["rewind_step"])
        splits = splits or load_splits(cfg.data, device)
        return train_dense(cfg, seed, device, splits, d)


def train_dense(cfg: Config, seed: int, device: torch.device, splits: Splits, out: Path) -> DenseRun:
    tc = cfg.training
    model = seeded_model(cfg, splits, seed, device)
    spe = splits.steps_per_epoch(tc.batch_size)
    schedule = LRSchedule.from_config(tc, spe)
    rewind_step = point_to_step(tc.rewind_point, spe)
    if rewind_step > schedule.total_steps:
        raise ValueError(f"training.rewind_point={tc.rewind_point} lies beyond dense training ({tc.epochs} epochs)")
    snapshot = lambda name, step: atomic_torch_save({"state": model.state_dict(), "step": step}, out / f"{name}.pt")  # noqa: E731
    snapshot("init", 0)
    positions = output_positions(model, splits.input_shape)
    flops = forward_flops(positions, full_mask(model))
    optimizer = make_optimizer(model, tc)
    costs = Costs()
    started, epochs, status = now(), [], "complete"
    on_step = lambda step: snapshot("rewind", step) if step == rewind_step else None  # noqa: E731
    tracker = Tracker(cfg, name=f"dense-{cfg.data.dataset}-{cfg.model.name}-{seed}", job_type="dense",
                      id_file=out / "wandb_id", config={"config_hash": dense_hash(cfg), "seed": seed,
                                                       "provenance": provenance(device)})
    bar = progress(tc.epochs, f"dense {cfg.data.dataset}/{cfg.model.name} seed {seed}")
    t0 = time.perf_counter()
    try:
        for epoch in range(1, tc.epochs + 1):
            loss = train_epoch(model, optimizer, splits, tc.batch_size, schedule.lr_at, (epoch - 1) * spe,
                               epoch_generator(seed, 0, epoch), None, flops, costs, on_step, tc.bf16, tc.channels_last)
            val_acc = evaluate(model, splits.x_val, splits.y_val, splits, EVAL_BATCH, flops, costs, tc.bf16)
            epochs.append({"level": 0, "epoch": epoch, "train_loss": loss, "val_acc": val_acc})
            tracker.log(epoch_metrics(epochs[-1], 1.0, NOTHING_BEFORE, costs))
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{val_acc:.3f}")
            log.info("dense seed %d epoch %d/%d loss %.4f val_acc %.4f", seed, epoch, tc.epochs, loss, val_acc)
    except Diverged as err:
        status = "diverged"
        log.error("dense seed %d diverged: %s", seed, err)
    finally:
        bar.close()
    if rewind_step == tc.epochs * spe:
        snapshot("rewind", rewind_step)
    snapshot("final", tc.epochs * spe)
    test_acc = (evaluate(model, splits.x_test, splits.y_test, splits, EVAL_BATCH, flops, costs, tc.bf16)
                if status == "complete" else None)
    record = {
        "method": "dense", "dataset": cfg.data.dataset, "model": cfg.model.name, "seed": seed,
        "config_hash": dense_hash(cfg), "status": status,
        "config": to_dict(cfg), "provenance": provenance(device), "started": started, "finished": now(),
        "wall_seconds": time.perf_counter() - t0,
        "steps_per_epoch": spe, "rewind_step": rewind_step,
        "best_val_acc": max((e["val_acc"] for e in epochs), default=None),
        "val_acc": epochs[-1]["val_acc"] if epochs else None, "test_acc": test_acc,
        "density": 1.0, "weights_sha256": state_sha256(model.state_dict()), "costs": costs.as_dict(), "epochs": epochs,
    }
    atomic_write_csv(out / "epochs.csv", epochs, ["level", "epoch", "train_loss", "val_acc"])
    atomic_write_json(out / "record.json", record)  # last: its presence means level 0 is done
    tracker.summary({"status": status, "best_val_acc": record["best_val_acc"], "test_acc": test_acc,
                     **{f"total_{k}": v for k, v in costs.as_dict().items()}})
    tracker.finish()
    return DenseRun(out, record, rewind_step)
