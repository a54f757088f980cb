"""Level 0: dense training, run once per dataset x model x seed and shared by every method.

Saves θ₀ (`init.pt`), the rewind point θ_t with its step (`rewind.pt`, BN buffers included),
the trained weights (`final.pt`) and the record. If the record exists with the same config hash
and was trained on data with the same content hash it is reused; with a different config hash, or
on other data (say Fashion-MNIST files in the MNIST folder), it is an error, never silently reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from infcop.foundations.config import Config, ConfigError, dense_hash, to_dict
from infcop.core.costs import Costs, forward_flops, output_positions
from infcop.core.data import Splits, load_splits
from infcop.core.flows import released_gradient_layers, released_gradient_stats
from infcop.core.masks import full_mask
from infcop.core.models import build_model
from infcop.core.resets import LevelLR, Snapshots
from infcop.core.schedule import LRSchedule, point_to_step
from infcop.core.train import Diverged, Trainer, make_optimizer, progress
from infcop.criteria import FixedEpochs
from infcop.engine.loop import train_until_stop
from infcop.foundations.paths import DenseDir, study_dir
from infcop.foundations.provenance import now, provenance
from infcop.engine.records import DenseRecord, EpochRow
from infcop.foundations.storage import (
    ConfigMismatch,
    atomic_write_csv,
    atomic_write_json,
    file_lock,
    load_checkpoint,
    read_json,
    remove_stale_temporaries,
    remove_tree,
    save_checkpoint,
)

log = logging.getLogger("infcop")


@dataclass
class DenseRun:
    dir: DenseDir
    record: DenseRecord

    def state(self, which: str) -> dict:
        """'init', 'rewind' or 'final' weights (state dict incl. BN buffers)."""
        advice = (
            f"delete {self.dir.root} to retrain level 0 (deleting only this file is not enough: "
            f"{self.dir.record.name} there says level 0 is done)"
        )
        return load_checkpoint(self.dir.snapshot(which), advice)["state"]

    def snapshots(self) -> Snapshots:
        return Snapshots(self.state("init"), self.state("rewind"), self.record.rewind_step)

    @property
    def complete(self) -> bool:
        return self.record.complete


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
    model = build_model(
        cfg.model.name, splits.input_shape, splits.num_classes, cfg.model.pretrained
    ).to(device)
    if cfg.training.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def init_drawer(
    cfg: Config, splits: Splits, device: torch.device
) -> Callable[[int], dict[str, torch.Tensor]]:
    """`draw(s)`: the θ₀ that seed s gives (weights + BN buffers), drawn without touching the global
    RNG that training's dropout reads. Always randomly initialised: a fresh draw never loads
    pretrained weights."""
    scratch = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, pretrained=False))

    def draw(init_seed: int) -> dict[str, torch.Tensor]:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return seeded_model(scratch, splits, init_seed, device).state_dict()

    return draw


def dense_dir(cfg: Config, seed: int) -> DenseDir:
    ex = cfg.experiment
    return study_dir(ex.results_dir, ex.name).dense(cfg.data.dataset, cfg.model.name, seed)


def ensure_dense(
    cfg: Config,
    seed: int,
    device: torch.device,
    splits: Splits | None = None,
    replace_stale: bool = False,
) -> DenseRun:
    """The dense run of this seed: reused when done (checked without the lock, so a finished,
    read-only results tree still serves it), else trained by the one process holding its
    lock. `replace_stale` (the workflow's dense job): a dense run of another config there is
    deleted and retrained."""
    d = dense_dir(cfg, seed)
    splits = splits or load_splits(cfg.data, device)
    record = None if replace_stale else _finished(cfg, d, splits)
    if record is None:
        with file_lock(d.lock, f"dense level 0 in {d.root}"):
            if replace_stale and d.record.exists() and _recorded_hash(d) != dense_hash(cfg):
                log.warning("replacing the dense run of config %s in %s", _recorded_hash(d), d.root)
                remove_tree(d.root)
            record = _finished(cfg, d, splits)
            if record is None:
                remove_stale_temporaries(d.root)
                return train_dense(cfg, seed, device, splits, d)
    log.info("dense level 0 reused from %s", d.root)
    return DenseRun(d, record)


def _recorded_hash(d: DenseDir) -> str:
    return read_json(d.record).get("config_hash", "")


def _finished(cfg: Config, d: DenseDir, splits: Splits) -> DenseRecord | None:
    """The record of a finished dense run that this config may reuse; None if there is none."""
    if not d.record.exists():
        return None
    record = DenseRecord.from_json(read_json(d.record), str(d.record))
    if record.config_hash != dense_hash(cfg):
        raise ConfigMismatch(
            f"{d.root} holds a dense run with config hash {record.config_hash}, but this config's "
            f"dense hash is {dense_hash(cfg)} (data/model/training changed). Use another "
            f"experiment.name or delete {d.root}."
        )
    trained_on = (record.provenance.get("data") or {}).get("content_sha256")
    now_sha = splits.source["content_sha256"]
    if trained_on is None:
        log.warning(
            "%s records no content hash of its data (written by an older version); "
            "reused unchecked",
            d.root,
        )
    elif trained_on != now_sha:
        raise ConfigMismatch(
            f"{d.root} was trained on other {cfg.data.dataset} data than "
            f"data.data_dir={cfg.data.data_dir} now holds (content sha256 {trained_on[:16]} then, "
            f"{now_sha[:16]} now). Restore the data it was trained on, or delete {d.root} and the "
            "runs that reused it to train on the new data."
        )
    return record


def train_dense(
    cfg: Config, seed: int, device: torch.device, splits: Splits, out: DenseDir
) -> DenseRun:
    tc = cfg.training
    model = seeded_model(cfg, splits, seed, device)
    spe = splits.steps_per_epoch(tc.batch_size)
    schedule = LRSchedule.from_config(tc, spe)
    rewind_step = point_to_step(tc.rewind_point, spe)
    if rewind_step > schedule.total_steps:
        raise ConfigError(
            f"training.rewind_point: {tc.rewind_point} lies beyond dense training "
            f"({tc.epochs} epochs = {schedule.total_steps} steps)"
        )
    snapshot = lambda name, step: save_checkpoint(
        {"state": model.state_dict(), "step": step},  # noqa: E731
        out.snapshot(name),
    )

    def rewind(step: int) -> None:
        snapshot("rewind", step)
        if step > 0:  # the gradient training left: the last warm-up minibatch's
            save_checkpoint(warmup_gradient_state(model, step), out.warmup_gradient)

    snapshot("init", 0)
    flops = forward_flops(output_positions(model, splits.input_shape), full_mask(model))
    trainer = Trainer(
        model=model,
        optimizer=make_optimizer(model, tc),
        splits=splits,
        batch_size=tc.batch_size,
        flops_per_sample=flops,
        costs=Costs(),
        bf16=tc.bf16,
        channels_last=tc.channels_last,
        compile=tc.compile,
    )
    bar = progress(tc.epochs, f"dense {cfg.data.dataset}/{cfg.model.name} seed {seed}")
    epochs: list[EpochRow] = []

    def on_epoch(row: EpochRow) -> None:
        epochs.append(row)
        bar.update(1)
        bar.set_postfix(loss=f"{row.train_loss:.3f}", val=f"{row.val_acc:.3f}")
        log.info(
            "dense seed %d epoch %d/%d loss %.4f val_acc %.4f",
            seed,
            row.epoch,
            tc.epochs,
            row.train_loss,
            row.val_acc,
        )

    started, t0, status = now(), time.perf_counter(), "complete"
    try:
        train_until_stop(
            trainer,
            level=0,
            seed=seed,
            lr=LevelLR(0, schedule.lr_at),
            monitors=FixedEpochs(tc.epochs),
            rule=FixedEpochs(tc.epochs),
            ctx=None,
            on_epoch=on_epoch,
            on_step=lambda step: rewind(step) if step == rewind_step else None,
        )
    except Diverged as err:
        status = "diverged"
        log.error("dense seed %d diverged: %s", seed, err)
    finally:
        bar.close()
    if rewind_step == tc.epochs * spe:
        rewind(rewind_step)
    snapshot("final", tc.epochs * spe)
    test_acc = trainer.evaluate("test") if status == "complete" else None
    record = DenseRecord(
        dataset=cfg.data.dataset,
        model=cfg.model.name,
        seed=seed,
        config_hash=dense_hash(cfg),
        status=status,
        config=to_dict(cfg),
        provenance=provenance(device, splits.source),
        started=started,
        finished=now(),
        wall_seconds=time.perf_counter() - t0,
        steps_per_epoch=spe,
        rewind_step=rewind_step,
        best_val_acc=max((e.val_acc for e in epochs), default=None),
        val_acc=epochs[-1].val_acc if epochs else None,
        test_acc=test_acc,
        weights_sha256=state_sha256(model.state_dict()),
        costs=trainer.costs,
        epochs=epochs,
    )
    atomic_write_csv(out.epochs, [e.as_dict() for e in epochs], EpochRow.columns())
    atomic_write_json(out.record, record.to_json())  # last: its presence means level 0 is done
    return DenseRun(out, record)


# ---------------------------------------------------------------- the warm-up gradient
class _Replayed(Exception):
    """Raised by the replay once it has reached the rewind point."""


def warmup_gradient_state(model: nn.Module, step: int) -> dict:
    """Per released gradient-flow layer, mean |g| (float32, all entries) of the gradient the last
    optimizer step before `step` left in `.grad`: the loss gradient, unmasked, without weight
    decay."""
    layers = released_gradient_layers(model)
    mean_abs, _ = released_gradient_stats([p.grad for p in layers.values()])
    return {"step": step, "layers": list(layers), "mean_abs": mean_abs}


def warmup_gradient(
    cfg: Config, seed: int, device: torch.device, splits: Splits, dense: DenseRun
) -> dict:
    """The dense run's warm-up gradient (`warmup_gradient_state`). A dense run trained before the
    harness saved it is replayed from θ₀ to the rewind point, which is exact on a CPU; the replay is
    checked bit for bit against the saved rewind weights, and its result saved beside them."""
    path = dense.dir.warmup_gradient
    if not path.exists():
        with file_lock(dense.dir.lock, f"dense level 0 in {dense.dir.root}"):
            if not path.exists():
                save_checkpoint(_replay_warmup(cfg, seed, device, splits, dense), path)
    return load_checkpoint(path, f"delete {path} to replay the warm-up")


def _replay_warmup(
    cfg: Config, seed: int, device: torch.device, splits: Splits, dense: DenseRun
) -> dict:
    tc, step = cfg.training, dense.record.rewind_step
    if step == 0:
        raise ConfigError(
            "training.rewind_point: 0 leaves no warm-up gradient, which the "
            "as-released gradient flow takes as its reference; rewind after at least "
            "one step"
        )
    log.info(
        "replaying dense level 0 of %s to step %d for its warm-up gradient", dense.dir.root, step
    )
    rewind = dense.state("rewind")
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model = seeded_model(cfg, splits, seed, device)
        model.load_state_dict(dense.state("init"))
        spe = splits.steps_per_epoch(tc.batch_size)
        trainer = Trainer(
            model,
            make_optimizer(model, tc),
            splits,
            tc.batch_size,
            0.0,
            Costs(),
            None,
            tc.bf16,
            tc.channels_last,
        )
        captured: dict = {}

        def on_step(s: int) -> None:
            if s == step:
                captured.update(state=model.state_dict(), gradient=warmup_gradient_state(model, s))
                raise _Replayed

        try:
            epochs = FixedEpochs(-(-step // spe))
            lr = LevelLR(0, LRSchedule.from_config(tc, spe).lr_at)
            train_until_stop(trainer, 0, seed, lr, epochs, epochs, None, on_step=on_step)
            captured.update(state=model.state_dict(), gradient=warmup_gradient_state(model, step))
        except _Replayed:
            pass
    if any(not torch.equal(v.cpu(), rewind[k].cpu()) for k, v in captured["state"].items()):
        raise ConfigMismatch(
            f"replaying {dense.dir.root} to its rewind point did not give its "
            "saved weights (non-deterministic kernels?); delete "
            f"{dense.dir.root} to retrain level 0, which then saves the warm-up "
            "gradient as it trains"
        )
    return captured["gradient"]
