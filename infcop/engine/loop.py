"""Train until the stopper says stop: the one epoch loop of dense level 0 and of
every pruning level."""

from __future__ import annotations

from typing import Callable

from infcop.core.data import epoch_generator
from infcop.core.resets import LevelLR
from infcop.core.train import Trainer
from infcop.criteria import CAP, LevelContext, Stopper
from infcop.engine.records import EpochRow
from infcop.engine.reuse import EpochCache


def train_until_stop(
    trainer: Trainer,
    level: int,
    seed: int,
    lr: LevelLR,
    monitors: Stopper,
    rule: Stopper,
    ctx: LevelContext | None,
    *,
    run_to_cap: bool = False,
    check_every: int = 1,
    on_epoch: Callable[[EpochRow], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    reuse: EpochCache | None = None,
) -> tuple[list[EpochRow], str]:
    """Train epochs of one level, measuring every criterion of `monitors` after every
    `check_every`-th epoch, until `rule` decides to stop (or, for a diagnostic run, on to the
    cap). Between checks nothing is measured, so nothing can fire and no monitoring is charged;
    the cap holds at any epoch. Returns the epoch rows and the stop reason: the first decision of
    `rule`, or the cap. Raises Diverged on a NaN/inf loss. `reuse`: the epoch cache of the seed
    (an epoch and its validation pass that another run computed from the same inputs are
    restored, not recomputed)."""
    monitors.begin_level(ctx)
    steps_per_epoch = trainer.splits.steps_per_epoch(trainer.batch_size)
    rows: list[EpochRow] = []
    reason, step = None, lr.start_step
    for epoch in range(1, monitors.cap + 1):
        lr_start = lr.lr_at(step)
        check = epoch % check_every == 0
        generator = epoch_generator(seed, level, epoch)
        for_stopping = check and rule.reads_validation
        if reuse is None or on_step is not None:
            loss = trainer.train_epoch(lr.lr_at, step, generator, on_step)
            val_acc = trainer.evaluate("val", for_stopping=for_stopping)
        else:
            loss, val_acc = reuse.train_and_validate(
                trainer, lr.lr_at, step, generator, for_stopping=for_stopping
            )
        step += steps_per_epoch
        measured = monitors.measure(ctx, val_acc) if check else {}
        decision = rule.decide(measured, epoch)  # the method's own rule, also while diagnosing
        rows.append(EpochRow(level, epoch, loss, val_acc, lr_start, measured, decision))
        if on_epoch is not None:
            on_epoch(rows[-1])
        if reason is None and decision is not None:
            reason = decision
            if not run_to_cap:
                break
    return rows, reason or CAP
