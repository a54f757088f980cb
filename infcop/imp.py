"""The IMP engine: dense level 0 (shared), then levels of prune -> reset -> retrain-until-stop.

After every level the mask, weights, RNG state, costs and metrics are checkpointed atomically;
a killed run restarted with the same command resumes after its last completed level. Data order,
probe set and random pruning draw from generators derived from (seed, level, epoch), and every
level starts a fresh optimizer (for every method alike), so a resumed run computes exactly the
numbers an uninterrupted one would.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from infcop.config import Config, to_dict
from infcop.costs import Costs, forward_flops, output_positions
from infcop.data import Splits, epoch_generator, load_splits
from infcop.dense import EVAL_BATCH, ConfigMismatch, DenseRun, ensure_dense, seeded_model
from infcop.flows import FlowReference, make_probes, measure_reference
from infcop.masks import MaskedWeights, density, full_mask, save_mask
from infcop.methods import BuildContext, get_method, method_params, run_hash
from infcop.models import output_layer_name, prunable_layers
from infcop.records import (atomic_torch_save, atomic_write_csv, atomic_write_json, load_checkpoint, now, provenance,
                            read_json, run_dir)
from infcop.schedule import LRSchedule
from infcop.stoppers import AccuracyTarget, AnyOf, GradientFlow, InformationFlow, LevelContext, MaskStability
from infcop.tracking import Tracker, cumulative, epoch_metrics, level_metrics
from infcop.train import Diverged, evaluate, make_optimizer, progress, resolve_device, train_epoch

log = logging.getLogger("infcop")
PRUNE_STREAM = 11
COST_FIELDS = list(Costs().as_dict())
LEVEL_COLUMNS = ["level", "density", "val_acc", "test_acc", "epochs", "optimizer_steps", "train_samples",
                 "eval_samples", "monitor_forward_samples", "monitor_backward_samples", "train_seconds",
                 "monitor_seconds", "eval_seconds", "train_flops", "eval_flops", "monitor_flops", "stop_reason"]
EPOCH_COLUMNS = ["level", "epoch", "train_loss", "val_acc", "lr_start", "if_distance", "gf_distance", "mask_distance",
                 "decision"]


def run_name(method: str, diagnose: bool) -> str:
    return f"{method}_diagnose" if diagnose else method


def configure_threads(cfg: Config) -> None:
    if cfg.experiment.threads:
        torch.set_num_threads(cfg.experiment.threads)


def _first_epoch(rows: list[dict], fires) -> int | None:
    return next((r["epoch"] for r in rows if fires(r)), None)


def diagnostic_monitors(stopper: AnyOf, build_ctx: BuildContext, pruner) -> AnyOf:
    """The method's criteria plus every other criterion, so one run records all distances."""
    have = {c.key for c in stopper.criteria}
    extra = [c for c in (InformationFlow(0.11), GradientFlow(0.5), MaskStability(pruner), AccuracyTarget())
             if c.key not in have]
    return AnyOf(stopper.criteria + extra, stopper.cap)


def diagnose_level(rows: list[dict], cfg: Config, ref: FlowReference, target: float, stopper: AnyOf) -> dict:
    """When each criterion would have fired in this level, against the oracle epoch."""
    scale = lambda noise: noise if cfg.stopping.epsilon_mode == "relative" else 1.0  # noqa: E731
    below = lambda key, thr: lambda r: r[key] is not None and r[key] < thr  # noqa: E731
    mask_rule = next(c for c in stopper.criteria if isinstance(c, MaskStability))
    return {
        "oracle_epoch": _first_epoch(rows, lambda r: r["val_acc"] >= target),
        "method_epoch": _first_epoch(rows, lambda r: r["decision"] is not None),
        "information_flow": {str(e): _first_epoch(rows, below("if_distance", e * scale(ref.information_noise)))
                             for e in cfg.stopping.diagnose_if_epsilons},
        "gradient_flow": {str(e): _first_epoch(rows, below("gf_distance", e * scale(ref.gradient_noise)))
                          for e in cfg.stopping.diagnose_gf_epsilons},
        "mask_stability": _first_epoch(rows, lambda r: mask_rule.fires(r["mask_distance"])),
    }


class IMPRun:
    """One method x seed on one dataset x model. `run()` is idempotent: a finished run is not redone."""

    def __init__(self, cfg: Config, method: str, seed: int):
        self.cfg, self.method_name, self.seed = cfg, method, seed
        self.method = get_method(method)
        self.params = method_params(cfg, method)
        self.diagnose = cfg.stopping.diagnose
        self.config_hash = run_hash(cfg, method)
        self.dir = run_dir(cfg.experiment.results_dir, cfg.experiment.name, cfg.data.dataset, cfg.model.name,
                           run_name(method, self.diagnose), seed)

    @property
    def record_path(self) -> Path:
        return self.dir / "record.json"

    def finished_record(self) -> dict | None:
        if not self.record_path.exists():
            return None
        record = read_json(self.record_path)
        if record.get("config_hash") != self.config_hash:
            raise ConfigMismatch(f"{self.record_path} was produced by config {record.get('config_hash')}, this config is "
                                 f"{self.config_hash}; use another experiment.name or delete {self.dir}")
        if record["status"] == "complete" and len(record["levels"]) < self.cfg.pruning.levels:
            return None  # more levels asked for: extend from the last checkpoint
        return record

    # ------------------------------------------------------------ checkpoints
    def _checkpoints(self) -> list[Path]:
        return sorted((self.dir / "checkpoints").glob("level*.pt"), key=lambda p: int(p.stem[5:]))

    def _save_checkpoint(self, state: dict) -> None:
        path = self.dir / "checkpoints" / f"level{state['level']}.pt"
        atomic_torch_save(state, path)
        for old in self._checkpoints():
            if old != path:
                old.unlink()

    def _load_checkpoint(self) -> dict | None:
        found = self._checkpoints()
        if not found:
            return None
        state = load_checkpoint(found[-1])
        if not isinstance(state, dict) or "config_hash" not in state:
            raise ConfigMismatch(f"checkpoint {found[-1]} is not an IMP level checkpoint; delete {self.dir} to restart")
        if state["config_hash"] != self.config_hash:
            raise ConfigMismatch(f"checkpoint {found[-1]} belongs to config {state['config_hash']}, this config is "
                                 f"{self.config_hash}; delete {self.dir} to restart with the new config")
        return state

    # ------------------------------------------------------------ the run
    def run(self) -> dict:
        done = self.finished_record()
        if done is not None:
            log.info("%s already done; skipping", self.dir)
            return done
        cfg = self.cfg
        configure_threads(cfg)
        device = resolve_device(cfg.experiment.device)
        splits = load_splits(cfg.data, device)
        dense = ensure_dense(cfg, self.seed, device, splits)
        started, t0 = now(), time.perf_counter()
        tracker = Tracker(cfg, name=f"{run_name(self.method_name, self.diagnose)}-{cfg.data.dataset}-{cfg.model.name}-{self.seed}",
                          job_type=run_name(self.method_name, self.diagnose), id_file=self.dir / "wandb_id",
                          config={"config_hash": self.config_hash, "method": self.method_name, "seed": self.seed,
                                  "method_params": to_dict(self.params), "provenance": provenance(device)})
        try:
            return self._run(cfg, device, splits, dense, tracker, started, t0)
        finally:
            tracker.finish()

    def _run(self, cfg, device, splits, dense, tracker, started, t0) -> dict:
        model = seeded_model(cfg, splits, self.seed, device)
        spe = splits.steps_per_epoch(cfg.training.batch_size)
        schedule = LRSchedule.from_config(cfg.training, spe)
        build_ctx = BuildContext(cfg, spe, dense.rewind_step, output_layer_name(model))
        spec = self.method.build(build_ctx, self.params)
        stopper = diagnostic_monitors(spec.stopper, build_ctx, spec.pruner) if self.diagnose else spec.stopper
        positions = output_positions(model, splits.input_shape)

        state = self._load_checkpoint()
        if state is None:
            state = {"config_hash": self.config_hash, "level": 0, "model": dense.state("final"),
                     "mask": {k: v.cpu() for k, v in full_mask(model).items()}, "levels": [], "epochs": [],
                     "status": dense.record["status"]}
        else:
            log.info("resuming %s after level %d", self.dir, state["level"])
            torch.set_rng_state(state["rng"])
        model.load_state_dict(state["model"])
        mask = {k: v.to(device) for k, v in state["mask"].items()}

        needs_flow = any(isinstance(c, (InformationFlow, GradientFlow)) for c in stopper.criteria)
        probe = reference = None
        if needs_flow and state["status"] == "complete":
            probe, noise_probe = make_probes(splits, cfg.stopping.probe_size, cfg.stopping.probe_batch, self.seed)
            ref_model = seeded_model(cfg, splits, self.seed, device)
            ref_model.load_state_dict(dense.state("final" if cfg.stopping.reference == "dense" else "rewind"))
            reference = measure_reference(ref_model, probe, noise_probe, full_mask(ref_model), cfg.stopping.aggregation)
            del ref_model

        bar = progress(cfg.pruning.levels, f"{self.method_name} {cfg.data.dataset}/{cfg.model.name} seed {self.seed}")
        bar.update(state["level"])
        for level in range(state["level"] + 1, cfg.pruning.levels + 1):
            if state["status"] != "complete":
                break
            weights = {n: m.weight for n, m in prunable_layers(model).items()}
            mask = spec.pruner.next_mask(weights, mask, generator=epoch_generator(self.seed, level, PRUNE_STREAM))
            before = cumulative(state["levels"])
            log_epoch = lambda row, costs, d=density(mask): tracker.log(epoch_metrics(row, d, before, costs))  # noqa: E731
            try:
                level_row, epoch_rows = self._train_level(level, model, mask, spec, stopper, dense, schedule, splits,
                                                          positions, probe, reference, spe, log_epoch)
            except Diverged as err:
                log.error("%s level %d diverged: %s", self.dir, level, err)
                state["status"], state["diverged_at_level"] = "diverged", level
                break
            save_mask(mask, self.dir / "masks" / f"level{level}.pt")
            state.update(level=level, model=model.state_dict(), mask={k: v.cpu() for k, v in mask.items()},
                         rng=torch.get_rng_state())
            state["levels"].append(level_row)
            state["epochs"].extend(epoch_rows)
            self._save_checkpoint(state)
            tracker.log(level_metrics(level_row, LEVEL_COLUMNS, cumulative(state["levels"])))
            bar.update(1)
            log.info("%s seed %d level %d density %.4f epochs %d stop %s val %.4f test %.4f", self.method_name,
                     self.seed, level, level_row["density"], level_row["epochs"], level_row["stop_reason"],
                     level_row["val_acc"], level_row["test_acc"])
        bar.close()
        record = self._write_record(state, dense, reference, device, started, time.perf_counter() - t0)
        final = record["levels"][-1] if record["levels"] else {}
        tracker.summary({"status": record["status"], "final_density": final.get("density"),
                         "final_test_acc": final.get("test_acc"), **{f"total_{k}": v for k, v in record["totals"].items()}})
        return record

    def _train_level(self, level, model, mask, spec, stopper, dense: DenseRun, schedule, splits: Splits, positions,
                     probe, reference, spe, on_epoch) -> tuple[dict, list[dict]]:
        cfg = self.cfg
        level_lr = spec.reset.apply(model, mask, dense, schedule)
        optimizer = make_optimizer(model, cfg.training)
        masked = MaskedWeights(model, mask)
        costs = Costs()
        flops = forward_flops(positions, mask)
        target = dense.record["best_val_acc"]
        ctx = LevelContext(model, mask, probe, reference, target, costs, flops, cfg.stopping.aggregation,
                           cfg.stopping.epsilon_mode)
        stopper.begin_level(ctx)
        rows, reason, step, val_acc = [], None, level_lr.start_step, None
        tc = cfg.training
        for epoch in range(1, stopper.cap + 1):
            lr_start = level_lr.lr_at(step)
            loss = train_epoch(model, optimizer, splits, tc.batch_size, level_lr.lr_at, step,
                               epoch_generator(self.seed, level, epoch), masked, flops, costs, None, tc.bf16, tc.channels_last)
            step += spe
            val_acc = evaluate(model, splits.x_val, splits.y_val, splits, EVAL_BATCH, flops, costs, tc.bf16)
            measured = stopper.measure(ctx, val_acc)
            decision = spec.stopper.decide(measured, epoch)  # the method's own rule, also in diagnose mode
            rows.append({"level": level, "epoch": epoch, "train_loss": loss, "val_acc": val_acc, "lr_start": lr_start,
                         "if_distance": measured.get("if_distance"), "gf_distance": measured.get("gf_distance"),
                         "mask_distance": measured.get("mask_distance"), "decision": decision})
            on_epoch(rows[-1], costs)
            if reason is None and decision is not None:
                reason = decision
                if not self.diagnose:
                    break
        test_acc = evaluate(model, splits.x_test, splits.y_test, splits, EVAL_BATCH, flops, costs, cfg.training.bf16)
        row = {"level": level, "density": density(mask), "val_acc": val_acc, "test_acc": test_acc,
               **costs.as_dict(), "stop_reason": reason or "cap",
               "flow_distances": {k: [r[k] for r in rows] for k in ("if_distance", "gf_distance")
                                  if any(r[k] is not None for r in rows)},
               "stopper": stopper.describe(), "lr_start": level_lr.lr_at(level_lr.start_step)}
        if self.diagnose:
            row["diagnosis"] = diagnose_level(rows, cfg, reference, target, stopper)
        return row, rows

    def _write_record(self, state: dict, dense: DenseRun, reference, device, started, seconds) -> dict:
        levels = state["levels"]
        totals = {f: sum(lv[f] for lv in levels) for f in COST_FIELDS}
        totals["levels"] = len(levels)
        d = dense.record
        record = {
            "method": self.method_name, "dataset": self.cfg.data.dataset, "model": self.cfg.model.name,
            "seed": self.seed, "config_hash": self.config_hash, "dense_config_hash": d["config_hash"],
            "status": state["status"], "diagnostic": self.diagnose,
            "method_params": to_dict(self.params), "config": to_dict(self.cfg),
            "provenance": provenance(device), "started": started, "finished": now(), "wall_seconds": seconds,
            "dense": {k: d[k] for k in ("best_val_acc", "val_acc", "test_acc", "status", "costs", "rewind_step",
                                        "steps_per_epoch", "weights_sha256")},
            "flow_reference": reference.as_dict() if reference is not None else None,
            "levels": levels, "totals": totals,
        }
        if "diverged_at_level" in state:
            record["diverged_at_level"] = state["diverged_at_level"]
        atomic_write_csv(self.dir / "levels.csv", levels, LEVEL_COLUMNS)
        atomic_write_csv(self.dir / "epochs.csv", state["epochs"], EPOCH_COLUMNS)
        atomic_write_json(self.record_path, record)
        return record


def run_imp(cfg: Config, method: str, seed: int) -> dict:
    return IMPRun(cfg, method, seed).run()

