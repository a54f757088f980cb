"""Weights & Biases mirror of the results, built from the finished records.

The files under results/ are the source of truth and W&B shows exactly them: after the runs,
`infcop track` (the study's `track` rule) turns each run's record.json, levels.csv and epochs.csv
into one W&B run, then the study's tables and figures into a summary run. Training never starts
W&B, and one W&B service serves the whole study. A run is mirrored once per version of its record
(its W&B id is a hash of the record, kept in the run's `wandb_id`); a rewritten record (more levels)
replaces the run's local offline copy. Tracking never breaks an experiment: if W&B fails, one
warning is logged and the mirror stops.

Runs: one W&B group per method on one pair across seeds (`<study>/<dataset>/<model>/<method>`),
so W&B's grouped charts draw each method's mean and spread over seeds. Job type: `dense`, `imp`,
`diagnostic` or `summary`. Config: the run's config plus `study`, `pair`, `method`, `family` (its
registered base method), `role` and `seed`; tags: study, pair, role and family, and tracking.tags.
Metrics: per epoch under `epoch/` against `epoch/cumulative_steps`; per level under `level/`
against `level/density` (`level/cumulative_flops`: training plus monitoring, for cost vs density).
Artifacts: each run logs its record files as an artifact (`run-record` / `dense-record`); the
summary run names them as its inputs, as W&B lineage when online; offline W&B cannot record a use,
so `infcop track --link` (run by the `wandb_sync` rule after syncing) adds it.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

from infcop.foundations.config import Config, to_dict
from infcop.foundations.paths import DenseDir, RunDir, run_name, study_dir
from infcop.foundations.storage import atomic_write_text, read_json
from infcop.engine.records import DenseRecord, LevelRow, RunRecord, cumulative
from infcop.engine.spec import RunSpec

log = logging.getLogger("infcop")
STEP, DENSITY = "epoch/cumulative_steps", "level/density"  # the x axes


def tracking_mode(cfg: Config) -> str:
    """`tracking.mode`, unless the standard WANDB_MODE environment variable says otherwise."""
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("disabled", "offline", "online"):
        return env
    if env == "dryrun":
        return "offline"
    return cfg.tracking.mode


def tracking_dir(cfg: Config) -> Path:
    return (
        Path(cfg.tracking.dir)
        if cfg.tracking.dir
        else study_dir(cfg.experiment.results_dir, cfg.experiment.name).wandb
    )


def group_name(study: str, dataset: str, model: str, method: str) -> str:
    return f"{study}/{dataset}/{model}/{method}"


def artifact_name(study: str, dataset: str, model: str, name: str, seed: int) -> str:
    return f"{study}-{dataset}-{model}-{name}-seed{seed}"


# ---------------------------------------------------------------- metrics from a record
def _number(text: str) -> float | int | str | None:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_epochs(path: Path) -> list[dict[str, Any]]:
    """epochs.csv as rows of numbers (an empty cell: not measured)."""
    with open(path, newline="") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def epoch_metrics(
    rows: list[dict], levels: list[LevelRow], steps_per_epoch: int
) -> list[dict[str, Any]]:
    """One W&B history row per epoch row: its values under `epoch/`, the density it trained at and
    the optimizer steps of the whole run up to its end (earlier levels' steps, then whole epochs).
    """
    density = {lv.level: lv.density for lv in levels} | {0: 1.0}
    before = {lv.level: cumulative(levels[:i])["steps"] for i, lv in enumerate(levels)} | {0: 0}
    return [
        {
            **{f"epoch/{k}": v for k, v in row.items() if k != "decision" and v is not None},
            "epoch/density": density[row["level"]],
            STEP: before[row["level"]] + row["epoch"] * steps_per_epoch,
        }
        for row in rows
        if row["level"] in density
    ]


def level_metrics(levels: list[LevelRow]) -> list[dict[str, Any]]:
    """One W&B history row per level: the levels.csv row, and epochs and FLOPs summed up to it."""
    out = []
    for i, lv in enumerate(levels):
        totals = cumulative(levels[: i + 1])
        out.append(
            {
                **{f"level/{k}": v for k, v in lv.as_dict().items() if k in LevelRow.columns()},
                "level/cumulative_epochs": totals["epochs"],
                "level/cumulative_flops": totals["flops"],
            }
        )
    return out


# ---------------------------------------------------------------- one W&B run
@dataclasses.dataclass(frozen=True)
class Mirror:
    """What one W&B run shows: its identity, config, history rows, summary and record files."""

    name: str
    group: str
    job_type: str
    config: dict[str, Any]
    tags: list[str]
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    artifact: str
    artifact_type: str
    files: list[Path]
    id_file: Path


def _identity(
    study: str, rec: DenseRecord | RunRecord, method: str, family: str, role: str
) -> dict:
    pair = f"{rec.dataset}/{rec.model}"
    return {
        "study": study,
        "pair": pair,
        "dataset": rec.dataset,
        "model": rec.model,
        "method": method,
        "family": family,
        "role": role,
        "seed": rec.seed,
        "config_hash": rec.config_hash,
    }


def run_mirror(study: str, run_dir: RunDir, tags: tuple[str, ...]) -> Mirror:
    rec = RunRecord.from_json(read_json(run_dir.record))
    ident = _identity(study, rec, rec.method, rec.base_method, rec.role)
    history = [
        *epoch_metrics(read_epochs(run_dir.epochs), rec.levels, rec.dense["steps_per_epoch"]),
        *level_metrics(rec.levels),
    ]
    history.sort(key=lambda h: (h.get("epoch/level", h.get("level/level")), "level/level" in h))
    name = run_name(rec.method, rec.diagnostic)
    final = rec.final
    return Mirror(
        name=f"{name}-{rec.dataset}-{rec.model}-{rec.seed}",
        group=group_name(study, rec.dataset, rec.model, name),
        job_type="diagnostic" if rec.diagnostic else "imp",
        config={
            **rec.config,
            **ident,
            "diagnostic": rec.diagnostic,
            "dense_config_hash": rec.dense_config_hash,
            "method_params": rec.method_params,
            "schedule": rec.schedule,
            "provenance": rec.provenance,
        },
        tags=[study, ident["pair"], rec.role, rec.base_method, *tags],
        history=history,
        summary={
            "status": rec.status,
            "final_density": final and final.density,
            "final_test_acc": final and final.test_acc,
            **{f"total_{k}": v for k, v in rec.totals.as_dict().items()},
        },
        artifact=artifact_name(study, rec.dataset, rec.model, name, rec.seed),
        artifact_type="run-record",
        files=[run_dir.record, run_dir.levels, run_dir.epochs],
        id_file=run_dir.wandb_id,
    )


def dense_mirror(study: str, dense_dir: DenseDir, tags: tuple[str, ...]) -> Mirror:
    rec = DenseRecord.from_json(read_json(dense_dir.record))
    ident = _identity(study, rec, "dense", "dense", "dense")
    return Mirror(
        name=f"dense-{rec.dataset}-{rec.model}-{rec.seed}",
        group=group_name(study, rec.dataset, rec.model, "dense"),
        job_type="dense",
        config={**rec.config, **ident, "diagnostic": False, "provenance": rec.provenance},
        tags=[study, ident["pair"], "dense", *tags],
        history=epoch_metrics([e.as_dict() for e in rec.epochs], [], rec.steps_per_epoch),
        summary={
            "status": rec.status,
            "best_val_acc": rec.best_val_acc,
            "test_acc": rec.test_acc,
            **{f"total_{k}": v for k, v in rec.costs.as_dict().items()},
        },
        artifact=artifact_name(study, rec.dataset, rec.model, "dense", rec.seed),
        artifact_type="dense-record",
        files=[dense_dir.record, dense_dir.epochs],
        id_file=dense_dir.wandb_id,
    )


def mirror_id(m: Mirror) -> str:
    """A W&B run id per version of the record: the same record is never mirrored twice."""
    return hashlib.sha256(m.files[0].read_bytes()).hexdigest()[:16]


def _drop_local(directory: Path, run_id: str) -> None:
    """The local offline copies of an earlier version of a run."""
    for old in (directory / "wandb").glob(f"offline-run-*-{run_id}"):
        shutil.rmtree(old)


def write_run(cfg: Config, m: Mirror, mode: str) -> bool:
    """Write one W&B run for `m` unless this version of its record is mirrored already."""
    import wandb

    run_id = mirror_id(m)
    old = m.id_file.read_text().strip() if m.id_file.exists() else ""
    if old == run_id:
        return False
    directory = tracking_dir(cfg)
    if old:
        _drop_local(directory, old)
    run = wandb.init(
        mode=mode,
        project=cfg.tracking.project,
        entity=cfg.tracking.entity or None,
        dir=str(directory),
        id=run_id,
        name=m.name,
        group=m.group,
        job_type=m.job_type,
        tags=m.tags,
        config=m.config,
        # no pip list per run: the record's provenance names the packages that produced it, and
        # reading every installed package's metadata was two thirds of the study's `track` job
        settings=wandb.Settings(silent=True, console="off", x_save_requirements=False),
    )
    run.define_metric(STEP)
    run.define_metric("epoch/*", step_metric=STEP)
    run.define_metric(DENSITY)
    run.define_metric("level/*", step_metric=DENSITY)
    for row in m.history:
        run.log(row)
    run.summary.update({k: v for k, v in m.summary.items() if v is not None})
    artifact = wandb.Artifact(
        m.artifact, type=m.artifact_type, metadata={"config_hash": m.config["config_hash"]}
    )
    for path in m.files:
        artifact.add_file(
            str(path), policy="immutable", skip_cache=True
        )  # the results file, not a copy
    run.log_artifact(artifact)
    run.finish()
    atomic_write_text(m.id_file, run_id)
    return True


def study_mirrors(pair_cfgs: dict[str, Config]) -> list[Mirror]:
    """Every finished record of the study: dense runs, then IMP and diagnostic runs."""
    out = []
    for pair, cfg in pair_cfgs.items():
        ex, tags = cfg.experiment, cfg.tracking.tags
        dense = {
            study_dir(ex.results_dir, ex.name).dense(cfg.data.dataset, cfg.model.name, s)
            for s in ex.seeds
        }
        out += [dense_mirror(ex.name, d, tags) for d in sorted(dense, key=str) if d.record.exists()]
        diagnosed = dataclasses.replace(
            cfg, stopping=dataclasses.replace(cfg.stopping, diagnose=True)
        )
        specs = [RunSpec.of(cfg, e.name, s) for e in cfg.study.methods for s in ex.seeds] + [
            RunSpec.of(diagnosed, m, s) for m in cfg.study.diagnose for s in ex.seeds
        ]
        out += [run_mirror(ex.name, spec.dir, tags) for spec in specs if spec.dir.record.exists()]
    return out


@contextlib.contextmanager
def _service() -> Iterator[None]:
    """One W&B service for all the runs of the block; every run's file is complete when it ends.
    (`run.finish()` alone does not promise that: the service writes the file's last block when it
    closes the run, which tearing the service down waits for.)"""
    import wandb

    try:
        yield
    finally:
        try:
            wandb.teardown()
        except (
            Exception,
            SystemExit,
        ) as err:  # noqa: BLE001 - teardown exits if the service failed
            log.warning(
                "W&B service did not shut down cleanly (%s); results are still on disk", err
            )


def track_study(
    pair_cfgs: dict[str, Config],
    summary: tuple[dict[str, list[dict]], list[Path]] | None,
) -> int:
    """Mirror every finished record not mirrored yet, then, given the study's (tables, figures),
    its summary run. Returns the number of runs written (0 when tracking is disabled or W&B fails;
    a warning says why)."""
    cfg = next(iter(pair_cfgs.values()))
    mode = tracking_mode(cfg)
    if mode == "disabled":
        return 0
    written = 0
    try:
        tracking_dir(cfg).mkdir(parents=True, exist_ok=True)  # W&B itself would fall back to /tmp
        with _service():
            mirrors = study_mirrors(pair_cfgs)
            for m in mirrors:
                written += write_run(cfg, m, mode)
            if summary is not None:
                write_summary(cfg, mode, mirrors, *summary)
                written += 1
    except Exception as err:  # noqa: BLE001 - tracking must never fail a study
        log.warning("W&B mirror stopped (%s); the results on disk are complete", err)
    return written


def write_summary(
    cfg: Config, mode: str, mirrors: list[Mirror], tables: dict[str, list[dict]], images: list[Path]
) -> None:
    """The study's summary run: its tables (numeric cells) and figures, and the runs' artifacts as
    its inputs. A new summary run replaces the local copy of the previous one."""
    import wandb

    ex = cfg.experiment
    study = study_dir(ex.results_dir, ex.name)
    inputs = [f"{m.artifact}:latest" for m in mirrors]
    old = study.wandb_id.read_text().strip() if study.wandb_id.exists() else ""
    if old:
        _drop_local(tracking_dir(cfg), old)
    run_id = (
        hashlib.sha256(study.stats.read_bytes()).hexdigest()[:16] if study.stats.exists() else None
    )
    run = wandb.init(
        mode=mode,
        project=cfg.tracking.project,
        entity=cfg.tracking.entity or None,
        dir=str(tracking_dir(cfg)),
        id=run_id,
        name=f"summary-{ex.name}",
        group=f"{ex.name}/summary",
        job_type="summary",
        tags=[ex.name, "summary", *cfg.tracking.tags],
        config={**to_dict(cfg), "study": ex.name, "inputs": inputs},
        settings=wandb.Settings(silent=True, console="off"),
    )
    if mode == "online":
        for name in inputs:
            run.use_artifact(name)
    data: dict[str, Any] = {}
    for name, rows in tables.items():
        columns = list(dict.fromkeys(k for r in rows for k in r))
        if rows:
            data[f"table/{name}"] = wandb.Table(
                columns=columns,
                data=[[r.get(c) for c in columns] for r in rows],
                allow_mixed_types=True,
            )
    data.update({f"figure/{p.stem}": wandb.Image(str(p)) for p in images if p.suffix == ".png"})
    run.log(data)
    run.finish()
    atomic_write_text(study.wandb_id, run.id)


def link_inputs(cfg: Config) -> int:
    """After `wandb sync`: record, online, that the study's summary run used each run's artifact
    (offline W&B cannot). Returns the number of inputs linked."""
    import wandb

    study = study_dir(cfg.experiment.results_dir, cfg.experiment.name)
    run_id = study.wandb_id.read_text().strip()
    with _service():
        run = wandb.init(
            project=cfg.tracking.project,
            entity=cfg.tracking.entity or None,
            id=run_id,
            resume="must",
            dir=str(tracking_dir(cfg)),
            settings=wandb.Settings(silent=True),
        )
        inputs = list(run.config.get("inputs", []))
        for name in inputs:
            run.use_artifact(name)
        run.finish()
    return len(inputs)
