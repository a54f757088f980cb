"""Weights & Biases mirror of the results. The files under results/ stay the source of truth.

Tracking never breaks an experiment: if W&B cannot start or a call fails, one warning is logged
and the tracker turns itself into a no-op. A resumed run (after a kill) continues the same W&B
run id, stored next to the run's record, instead of creating a duplicate.

Metrics: per epoch under `epoch/` (charted against `epoch/cumulative_steps`), per level under
`level/` (charted against `level/density`; `level/cumulative_flops` gives cost-vs-density).
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any, Iterator

from infcop.foundations.config import Config, to_dict
from infcop.core.costs import COMPARED_COSTS, Costs
from infcop.foundations.paths import study_dir
from infcop.foundations.storage import atomic_write_text

log = logging.getLogger("infcop")


def tracking_mode(cfg: Config) -> str:
    """`tracking.mode`, unless the standard WANDB_MODE environment variable says otherwise."""
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("disabled", "offline", "online"):
        return env
    if env == "dryrun":
        return "offline"
    return cfg.tracking.mode


def tracking_dir(cfg: Config) -> Path:
    return Path(cfg.tracking.dir) if cfg.tracking.dir else study_dir(cfg.experiment.results_dir, cfg.experiment.name).wandb


NOTHING_BEFORE = {"epochs": 0, "steps": 0, "flops": 0.0}


def epoch_metrics(row: dict, density: float, before: dict[str, float], costs: Costs) -> dict[str, Any]:
    """One epoch's W&B metrics; `before` holds the totals of earlier levels, `costs` this level's so far."""
    return {**{f"epoch/{k}": v for k, v in row.items() if k != "decision"}, "epoch/density": density,
            "epoch/cumulative_steps": before["steps"] + costs.optimizer_steps,
            "epoch/cumulative_flops": before["flops"] + COMPARED_COSTS["flops"](costs)}


def level_metrics(row: dict, columns: list[str], totals: dict[str, float]) -> dict[str, Any]:
    """One level's W&B metrics; `totals` includes this level."""
    return {**{f"level/{k}": row[k] for k in columns}, "level/cumulative_epochs": totals["epochs"],
            "level/cumulative_flops": totals["flops"]}


class Tracker:
    def __init__(self, cfg: Config, *, name: str, job_type: str, config: dict[str, Any], id_file: Path | None = None,
                 group: str | None = None):
        self.run = None
        mode = tracking_mode(cfg)
        if mode == "disabled":
            return
        try:
            import wandb

            directory = tracking_dir(cfg)
            directory.mkdir(parents=True, exist_ok=True)
            run_id = None
            if id_file is not None and id_file.exists():
                run_id = id_file.read_text().strip()
            run_id = run_id or secrets.token_hex(4)
            self.run = wandb.init(
                mode=mode, project=cfg.tracking.project, entity=cfg.tracking.entity or None, dir=str(directory),
                group=group or f"{cfg.experiment.name}-{cfg.data.dataset}-{cfg.model.name}", job_type=job_type,
                name=name, id=run_id, resume="allow", tags=list(cfg.tracking.tags) or None,
                config={**to_dict(cfg), **config}, settings=wandb.Settings(silent=True, console="off"),
            )
            if id_file is not None:
                atomic_write_text(id_file, run_id)
            self.run.define_metric("epoch/cumulative_steps")
            self.run.define_metric("epoch/*", step_metric="epoch/cumulative_steps")
            self.run.define_metric("level/density")
            self.run.define_metric("level/*", step_metric="level/density")
        except Exception as err:  # noqa: BLE001 - tracking must never stop an experiment
            self._give_up("start", err)

    def _give_up(self, what: str, err: Exception) -> None:
        log.warning("W&B tracking disabled for this run (could not %s: %s); results are still written to disk", what, err)
        self.run = None

    def log(self, data: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            self.run.log({k: v for k, v in data.items() if v is not None})
        except Exception as err:  # noqa: BLE001
            self._give_up("log", err)

    def summary(self, data: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            self.run.summary.update(data)
        except Exception as err:  # noqa: BLE001
            self._give_up("write the summary", err)

    def log_tables(self, tables: dict[str, list[dict]], images: list[Path]) -> None:
        """The aggregate step: summary tables as W&B tables and the figures as images."""
        if self.run is None:
            return
        try:
            import wandb

            data: dict[str, Any] = {}
            for name, rows in tables.items():
                columns = list(dict.fromkeys(k for r in rows for k in r))
                if rows:
                    data[f"table/{name}"] = wandb.Table(columns=columns,
                                                        data=[[str(r.get(c, "")) for c in columns] for r in rows])
            data.update({f"figure/{p.stem}": wandb.Image(str(p)) for p in images if p.suffix == ".png"})
            self.run.log(data)
        except Exception as err:  # noqa: BLE001
            self._give_up("log the tables", err)

    def finish(self) -> None:
        """Finish the W&B run; on return its offline run file is complete on disk (inside `shared_service`,
        when the block ends).

        `run.finish()` alone does not promise that: it only tells the wandb-core service that the run
        is done (a message it does not wait on), and the service writes the run's file in 32 KiB blocks,
        the last partial block only when it closes the run. Until then a reader in the same process (the
        tests) can find just the 7-byte header. Tearing the service down waits for it to close every run,
        as happens at process exit; the next Tracker starts a new service (about a second).
        """
        if self.run is None:
            return
        try:
            self.run.finish()
        except Exception as err:  # noqa: BLE001
            self._give_up("finish", err)
        self.run = None
        if not _service_shared:
            _teardown()


_service_shared = False


def _teardown() -> None:
    import wandb

    try:
        wandb.teardown()
    except (Exception, SystemExit) as err:  # noqa: BLE001 - teardown exits if the service failed
        log.warning("W&B service did not shut down cleanly (%s); results are still written to disk", err)


@contextlib.contextmanager
def shared_service() -> Iterator[None]:
    """Several runs in one process (a study's `grouping: seed` job) share one W&B service: each run
    still is its own W&B run, but only the first pays the service's start-up; every run's file is
    complete when the block ends."""
    global _service_shared
    outer, _service_shared = _service_shared, True
    try:
        yield
    finally:
        _service_shared = outer
        if not outer and "wandb" in sys.modules:
            _teardown()
