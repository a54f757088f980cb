"""The IMP level loop: after the shared dense level 0, each level is prune -> reset -> train until
the stopper says stop -> checkpoint.

Data order, probe set, random pruning and fresh initialisations draw from generators derived from
(seed, level, epoch), every level starts a fresh optimizer (for every method alike), and a
checkpoint after each level holds the rest, so a killed run restarted with the same command ends
with the same numbers.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from infcop.foundations.config import dense_hash, to_dict
from infcop.core.costs import Costs, forward_flops, output_positions
from infcop.core.data import PRUNE_STREAM, RESET_STREAM, Splits, level_draw_generator, load_splits
from infcop.core.flows import FlowReference, Probe
from infcop.core.masks import Mask, MaskedWeights, density, full_mask, save_mask
from infcop.core.models import output_layer_name, prunable_layers
from infcop.core.resets import LevelLR, Snapshots
from infcop.core.schedule import LRSchedule
from infcop.core.threads import configure_threads
from infcop.core.train import Diverged, Trainer, make_optimizer, progress, resolve_device
from infcop.criteria import LevelContext, Stopper, measurement_columns
from infcop.engine.checkpoint import LevelCheckpoints, capture_rng, restore_rng
from infcop.engine.dense import DenseRun, ensure_dense, init_drawer, seeded_model
from infcop.engine.diagnosis import diagnose_level, diagnostic_monitors
from infcop.engine.loop import train_until_stop
from infcop.engine.reference import prepare_reference, probe_warnings
from infcop.engine.reuse import EpochCache, drop_cache, epoch_cache
from infcop.methods import BuildContext, MethodSpec
from infcop.foundations.provenance import now, provenance
from infcop.engine.records import EpochRow, LevelRow, RunRecord
from infcop.engine.spec import RunSpec
from infcop.foundations.storage import (
    ConfigMismatch,
    atomic_write_csv,
    atomic_write_json,
    file_lock,
    read_json,
    remove_tree,
    remove_stale_temporaries,
)

log = logging.getLogger("infcop")


@dataclass
class PreparedRun:
    """One run's fixed parts (built once) and its moving ones (the mask and the finished levels)."""

    variant: str
    model: nn.Module
    splits: Splits
    method: MethodSpec
    monitors: Stopper
    schedule: LRSchedule
    positions: dict
    dense_flops: float
    dense_best: float
    probe: Probe | None
    reference: FlowReference | None
    warnings: list[str]
    mask: Mask = field(default_factory=dict)
    levels: list[LevelRow] = field(default_factory=list)
    snapshots: Snapshots | None = None
    built: MethodSpec | None = None  # the method as built; `method`: its parts at the current level

    def enter_level(self, level: int, diagnose: bool) -> None:
        """The method's parts for `level` (MethodSpec.for_level); a diagnostic run keeps its
        monitors."""
        self.method = self.built.for_level(level)
        if not diagnose:
            self.monitors = self.method.stopper

    reuse: EpochCache | None = None

    @property
    def device(self) -> torch.device:
        return self.splits.x_train.device


class IMPRun:
    """One method (variant) x seed on one dataset x model. `run()` is idempotent: a finished run
    is not redone."""

    def __init__(self, spec: RunSpec, splits: Splits | None = None, replace_stale: bool = False):
        """`splits`: the data already loaded by the caller (several runs of a pair in one process).
        `replace_stale`: results of another config in the run's directory are deleted and the run
        starts afresh, instead of being an error (the workflow's jobs: the
        study's config decides)."""
        self.spec, self.cfg, self.seed = spec, spec.cfg, spec.seed
        self.splits, self.replace_stale = splits, replace_stale
        self.dir, self.config_hash = spec.dir, spec.hash
        self.checkpoints = LevelCheckpoints(self.dir, self.config_hash)

    def finished_record(self) -> RunRecord | None:
        if not self.dir.record.exists():
            return None
        record = RunRecord.from_json(read_json(self.dir.record), str(self.dir.record))
        if record.config_hash != self.config_hash:
            raise ConfigMismatch(
                f"{self.dir.record} was produced by config {record.config_hash}, this config is "
                f"{self.config_hash}; use another experiment.name or delete {self.dir.root}"
            )
        if record.complete and len(record.levels) < self.cfg.pruning.levels:
            return None  # more levels asked for: extend from the last checkpoint
        return record

    def _finished(self) -> RunRecord | None:
        try:
            return self.finished_record()
        except ConfigMismatch:
            if self.replace_stale:
                return None
            raise

    def _discard_other_config(self) -> None:
        """Delete the run directory if its record or checkpoint belongs to another config."""
        try:
            self.finished_record()
            self.checkpoints.latest()
        except ConfigMismatch as err:
            log.warning("replacing results of another config (%s)", err)
            remove_tree(self.dir.root)

    def run(self) -> RunRecord:
        """Checked first without the lock, so a finished, read-only results tree still answers; then
        one process per run directory trains (a second identical one waits, then finds it done)."""
        done = self._finished()
        if done is None:
            with file_lock(self.dir.lock, str(self.dir.root)):
                done = self._finished()
                if done is None:
                    remove_stale_temporaries(self.dir.root)
                    if self.replace_stale:
                        self._discard_other_config()
                    return self._start()
        log.info("%s already done; skipping", self.dir.root)
        return done

    def _start(self) -> RunRecord:
        cfg, spec = self.cfg, self.spec
        configure_threads(cfg.experiment.threads)
        device = resolve_device(
            cfg.experiment.device,
            deterministic=cfg.experiment.deterministic,
            cudnn_benchmark=cfg.experiment.cudnn_benchmark,
        )
        splits = self.splits if self.splits is not None else load_splits(cfg.data, device)
        dense = ensure_dense(cfg, self.seed, device, splits)
        return self._run(device, splits, dense)

    def _run(self, device, splits, dense: DenseRun) -> RunRecord:
        started, t0 = now(), time.perf_counter()
        run = self._prepare(device=device, splits=splits, dense=dense)
        state = self._resume_or_start(run=run, dense=dense)
        cfg = self.cfg
        bar = progress(
            cfg.pruning.levels,
            f"{run.variant} {cfg.data.dataset}/{cfg.model.name} seed {self.seed}",
        )
        bar.update(state["level"])
        for level in range(state["level"] + 1, cfg.pruning.levels + 1):
            if state["status"] != "complete":
                break
            run.enter_level(level, diagnose=self.spec.diagnose)
            lr = self._prune_and_reset(run=run, level=level)
            dead = [name for name, m in run.mask.items() if not bool(m.any())]
            if dead:
                run.warnings.append(
                    f"level {level}: pruning left no weight in layer(s) {', '.join(dead)}: the "
                    "network computes nothing through them, so IMP stopped before training it"
                )
                log.warning("%s %s", self.dir.root, run.warnings[-1])
                state["status"], state["collapsed_at_level"] = "collapsed", level
                break
            try:
                rows, reason, trainer = self._train(run=run, level=level, lr=lr)
            except Diverged as err:
                log.error("%s level %d diverged: %s", self.dir.root, level, err)
                state["status"], state["diverged_at_level"] = "diverged", level
                break
            self._finish_level(
                run=run, level=level, rows=rows, reason=reason, trainer=trainer, lr=lr, state=state
            )
            bar.update(1)
        bar.close()
        if run.reuse is not None and run.reuse.hits:
            log.info(
                "%s seed %d: %d epochs reused, %d trained",
                run.variant,
                self.seed,
                run.reuse.hits,
                run.reuse.misses,
            )
        return self._write_record(
            state,
            run.levels,
            dense,
            run.reference,
            provenance(device, splits.source),
            started,
            time.perf_counter() - t0,
            run.warnings,
        )

    # ---------------------------------------------------------------- the steps of a run
    def _prepare(self, *, device, splits: Splits, dense: DenseRun) -> "PreparedRun":
        """What every level of the run shares: the model, the method's parts, the rule's monitors
        and (for flow rules) the probe set and the dense network's flow reference."""
        cfg, variant = self.cfg, self.spec.variant
        model = seeded_model(cfg, splits, self.seed, device)
        steps_per_epoch = splits.steps_per_epoch(cfg.training.batch_size)
        context = BuildContext(
            cfg=cfg,
            steps_per_epoch=steps_per_epoch,
            rewind_step=dense.record.rewind_step,
            output_layer=output_layer_name(model),
            seed=self.seed,
        )
        method = variant.method.build(context, variant.params)
        monitors = diagnostic_monitors(method, cfg) if self.spec.diagnose else method.stopper
        positions = output_positions(model, splits.input_shape)
        probe = reference = None
        warnings: list[str] = []
        if monitors.needs_flow_reference and dense.complete:
            probe, reference = prepare_reference(cfg, splits, self.seed, device, dense)
            warnings += probe_warnings(cfg, probe)
        return PreparedRun(
            variant=variant.name,
            model=model,
            splits=splits,
            method=method,
            monitors=monitors,
            schedule=LRSchedule.from_config(cfg.training, steps_per_epoch),
            positions=positions,
            dense_flops=forward_flops(positions, full_mask(model)),
            dense_best=dense.record.best_val_acc,
            probe=probe,
            reference=reference,
            warnings=warnings,
            built=method,
            # a restored epoch leaves no gradient behind, and the released GF reads the last one
            reuse=None
            if monitors.reads_training_gradient
            else epoch_cache(cfg, self.seed, splits.source, model, device),
        )

    def _resume_or_start(self, *, run: "PreparedRun", dense: DenseRun) -> dict:
        """The state after the last finished level: the latest checkpoint, else the dense net."""
        state = self.checkpoints.latest()
        if state is None and not dense.complete:
            # nothing to prune: the run's record says where it diverged (level 0), and no snapshot
            # of the failed dense run (a rewind point it never reached) is loaded
            log.warning(
                "%s: dense level 0 %s, so this run is recorded as diverged at level 0",
                self.dir.root,
                dense.record.status,
            )
            return {
                "level": 0,
                "levels": [],
                "epochs": [],
                "status": "diverged",
                "diverged_at_level": 0,
            }
        if state is None:
            state = {
                "level": 0,
                "model": dense.state("final"),
                "mask": {k: v.cpu() for k, v in full_mask(run.model).items()},
                "levels": [],
                "epochs": [],
                "status": dense.record.status,
            }
        else:
            log.info("resuming %s after level %d", self.dir.root, state["level"])
            restore_rng(state["rng"])  # after every model construction, which reseeds
        run.model.load_state_dict(state["model"])
        run.mask = {k: v.to(run.device) for k, v in state["mask"].items()}
        run.levels = [LevelRow.from_dict(lv) for lv in state["levels"]]
        run.snapshots = dataclasses.replace(
            dense.snapshots(), draw_init=init_drawer(self.cfg, run.splits, run.device)
        )
        return state

    def _prune_and_reset(self, *, run: "PreparedRun", level: int) -> LevelLR:
        """Step 1 of a level: the pruner's next mask, then the method's reset of the survivors.
        Returns the level's LR schedule."""
        weights = {n: m.weight for n, m in prunable_layers(run.model).items()}
        cap = (
            run.monitors.cap
        )  # the most epochs the level trains, so the most data-order streams it draws
        run.mask = run.method.pruner.next_mask(
            weights, run.mask, generator=level_draw_generator(self.seed, level, PRUNE_STREAM, cap)
        )
        return run.method.reset.apply(
            run.model,
            run.mask,
            run.snapshots,
            run.schedule,
            generator=level_draw_generator(self.seed, level, RESET_STREAM, cap),
        )

    def _train(
        self, *, run: "PreparedRun", level: int, lr: LevelLR
    ) -> tuple[list[EpochRow], str, Trainer]:
        """Step 2: train the pruned network until the method's rule says stop (a diagnostic run
        trains on to the cap, measuring every rule). Raises Diverged."""
        cfg, tc = self.cfg, self.cfg.training
        costs = Costs()
        flops = forward_flops(run.positions, run.mask)
        trainer = Trainer(
            model=run.model,
            optimizer=make_optimizer(run.model, tc),
            splits=run.splits,
            batch_size=tc.batch_size,
            flops_per_sample=flops,
            costs=costs,
            masked=MaskedWeights(run.model, run.mask),
            bf16=tc.bf16,
            channels_last=tc.channels_last,
            compile=tc.compile,
        )
        ctx = LevelContext(
            model=run.model,
            mask=run.mask,
            probe=run.probe,
            reference=run.reference,
            target_val_acc=run.dense_best,
            costs=costs,
            flops_per_sample=flops,
            aggregation=cfg.stopping.aggregation,
            epsilon_mode=cfg.stopping.epsilon_mode,
            dense_flops_per_sample=run.dense_flops,
        )
        if level == 1:
            run.method.stopper.charge_setup(ctx)  # the rule's one-off work (the flow reference)
        rows, reason = train_until_stop(
            trainer,
            level=level,
            seed=self.seed,
            lr=lr,
            monitors=run.monitors,
            rule=run.method.stopper,
            ctx=ctx,
            run_to_cap=self.spec.diagnose,
            check_every=cfg.stopping.check_every,
            reuse=run.reuse,
        )
        run.warnings += [f"level {level}: {note}" for note in dict.fromkeys(ctx.notes)]
        return rows, reason, trainer

    def _finish_level(
        self,
        *,
        run: "PreparedRun",
        level: int,
        rows: list[EpochRow],
        reason: str,
        trainer: Trainer,
        lr: LevelLR,
        state: dict,
    ) -> None:
        """Step 3: test accuracy, the level's row (and diagnosis), its mask and a checkpoint from
        which a killed run resumes with the same numbers."""
        row = LevelRow(
            level=level,
            density=density(run.mask),
            val_acc=rows[-1].val_acc,
            test_acc=trainer.evaluate("test"),
            costs=trainer.costs,
            stop_reason=reason,
            measurements=_measured(rows),
            stopper=run.monitors.describe(),
            lr_start=lr.lr_at(lr.start_step),
        )
        if self.spec.diagnose:
            row.diagnosis = diagnose_level(rows, run.monitors, self.cfg, run.dense_best)
        run.levels.append(row)
        save_mask(run.mask, self.dir.mask(level))
        state.update(
            level=level,
            model=run.model.state_dict(),
            mask={k: v.cpu() for k, v in run.mask.items()},
            rng=capture_rng(),
            levels=[lv.as_dict() for lv in run.levels],
            epochs=state["epochs"] + [r.as_dict() for r in rows],
        )
        self.checkpoints.save(state)
        log.info(
            "%s seed %d level %d density %.4f epochs %d stop %s val %.4f test %.4f",
            run.variant,
            self.seed,
            level,
            row.density,
            row.costs.epochs,
            row.stop_reason,
            row.val_acc,
            row.test_acc,
        )

    def _write_record(
        self,
        state: dict,
        levels: list[LevelRow],
        dense: DenseRun,
        reference,
        origin: dict,
        started: str,
        seconds: float,
        warnings: list[str],
    ) -> RunRecord:
        cfg, variant = self.cfg, self.spec.variant
        record = RunRecord(
            method=variant.name,
            base_method=variant.method.name,
            role=variant.method.role.value,
            schedule=variant.schedule_for(cfg),
            dataset=cfg.data.dataset,
            model=cfg.model.name,
            seed=self.seed,
            config_hash=self.config_hash,
            dense_config_hash=dense.record.config_hash,
            status=state["status"],
            diagnostic=self.spec.diagnose,
            method_params=to_dict(variant.params),
            config=to_dict(cfg),
            provenance=origin,
            started=started,
            finished=now(),
            wall_seconds=seconds,
            dense=dense.record.summary(),
            flow_reference=reference.as_dict() if reference is not None else None,
            levels=levels,
            diverged_at_level=state.get("diverged_at_level"),
            collapsed_at_level=state.get("collapsed_at_level"),
            warnings=warnings,
        )
        atomic_write_csv(self.dir.levels, [lv.as_dict() for lv in levels], LevelRow.columns())
        atomic_write_csv(self.dir.epochs, state["epochs"], EpochRow.columns())
        atomic_write_json(self.dir.record, record.to_json())
        return record


def _measured(rows: list[EpochRow]) -> dict[str, list[float | None]]:
    """Per measurement column the level recorded, its value after each epoch."""
    return {
        k: [r.measurements.get(k) for r in rows]
        for k in measurement_columns()
        if any(r.measurements.get(k) is not None for r in rows)
    }


def run_imp(cfg, method: str, seed: int, replace_stale: bool = False) -> RunRecord:
    return IMPRun(RunSpec.of(cfg, method, seed), replace_stale=replace_stale).run()


def run_all(specs: list[RunSpec], replace_stale: bool = False) -> list[RunRecord | None]:
    """Several runs of one dataset x model x seed in one process, one after the other (a study's
    `grouping: seed` job): the data is loaded once and dense level 0 trained first when it is not
    done yet (`replace_stale`: also when it belongs to another config). Each run keeps its own
    directory, checkpoints and record, exactly as when it runs alone, and a run that fails leaves
    None in the list, after the others have run."""
    if len({(s.cfg.data, s.cfg.experiment.device) for s in specs}) > 1:
        raise ValueError("run_all: the runs differ in data or device; run them separately")
    if not specs:
        return []
    if len({(s.seed, dense_hash(s.cfg)) for s in specs}) > 1:
        raise ValueError("run_all: the runs differ in seed or dense level 0; run them separately")
    ex = specs[0].cfg.experiment
    configure_threads(ex.threads)
    device = resolve_device(
        ex.device, deterministic=ex.deterministic, cudnn_benchmark=ex.cudnn_benchmark
    )
    # Snakemake starts this job only when a record is missing, so the data is needed (a finished run
    # whose record was removed is rewritten from its checkpoint, which loads the data too)
    splits = load_splits(specs[0].cfg.data, device)
    ensure_dense(specs[0].cfg, specs[0].seed, device, splits, replace_stale=replace_stale)
    records = [_isolated(spec, splits, replace_stale) for spec in specs]
    for spec in specs:  # every run is done: nothing is left to reuse the seed's epochs
        drop_cache(spec.cfg, spec.seed)
    return records


def _isolated(spec: RunSpec, splits: Splits, replace_stale: bool) -> RunRecord | None:
    """One run of `run_all`; its failure (None) stops neither the others nor their records."""
    try:
        return IMPRun(spec, splits, replace_stale=replace_stale).run()
    except Exception as err:  # noqa: BLE001
        # reported, and the job fails once every other run is done
        log.error("%s failed: %s", spec.dir.root, err, exc_info=log.isEnabledFor(logging.DEBUG))
        return None
