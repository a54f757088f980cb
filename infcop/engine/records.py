"""Typed records: what a dense run and an IMP run leave on disk, and the rows of their CSV files.

Cost columns come from `Costs`, measurement columns from the registered criteria; JSON and CSV
are written from these types and read back into them, so no reader spells a key by hand.

A record's JSON carries the sha256 of its own content (`sha256`), checked whenever it is read: a
record edited by hand or damaged on disk is an error, never a number in the tables. Records written
before records carried a checksum are read as they are (there is nothing to check them against);
`unchecked` says so, and `infcop collect` warns about each.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from infcop.core.costs import COMPARED_COSTS, Costs
from infcop.criteria import measurement_columns
from infcop.foundations.storage import CorruptFile

CHECKSUM = "sha256"


def content_sha256(d: dict) -> str:
    """sha256 of a record's JSON content, its own checksum left out, in one canonical spelling (keys
    sorted, and the form JSON reads back, so the writer and every reader hash the same text)."""
    body = json.loads(json.dumps({k: v for k, v in d.items() if k != CHECKSUM}, allow_nan=True))
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=True).encode()).hexdigest()


def with_checksum(d: dict) -> dict:
    return {**d, CHECKSUM: content_sha256(d)}


def checked(d: dict, where: str = "a record") -> dict:
    """`d` (a record's JSON) after its checksum is verified; a record without one
    is returned as is."""
    if CHECKSUM in d and d[CHECKSUM] != content_sha256(d):
        raise CorruptFile(
            f"{where} fails its checksum: it was edited or damaged after it was written, so its "
            "numbers cannot be trusted; delete it to recompute the run"
        )
    return d


@dataclass
class EpochRow:
    level: int
    epoch: int
    train_loss: float
    val_acc: float
    lr_start: float | None = None
    measurements: dict[str, float | None] = field(default_factory=dict)
    decision: str | None = None

    @staticmethod
    def columns() -> list[str]:
        return [
            "level",
            "epoch",
            "train_loss",
            "val_acc",
            "lr_start",
            *measurement_columns(),
            "decision",
        ]

    def as_dict(self) -> dict:
        base = {
            k: getattr(self, k) for k in ("level", "epoch", "train_loss", "val_acc", "lr_start")
        }
        return {
            **base,
            **{k: self.measurements.get(k) for k in measurement_columns()},
            "decision": self.decision,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "EpochRow":
        measured = {k: d.get(k) for k in measurement_columns() if d.get(k) is not None}
        return cls(
            d["level"],
            d["epoch"],
            d["train_loss"],
            d["val_acc"],
            d.get("lr_start"),
            measured,
            d.get("decision"),
        )


@dataclass
class LevelRow:
    """One pruning level: its density, accuracies, costs, why it stopped and what it measured."""

    level: int
    density: float
    val_acc: float
    test_acc: float
    costs: Costs
    stop_reason: str
    measurements: dict[str, list[float | None]]
    stopper: dict
    lr_start: float
    diagnosis: dict | None = None

    @staticmethod
    def columns() -> list[str]:
        return ["level", "density", "val_acc", "test_acc", *Costs.fields(), "stop_reason"]

    def as_dict(self) -> dict:
        out = {
            "level": self.level,
            "density": self.density,
            "val_acc": self.val_acc,
            "test_acc": self.test_acc,
            **self.costs.as_dict(),
            "stop_reason": self.stop_reason,
            "measurements": self.measurements,
            "stopper": self.stopper,
            "lr_start": self.lr_start,
        }
        if self.diagnosis is not None:
            out["diagnosis"] = self.diagnosis
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "LevelRow":
        return cls(
            d["level"],
            d["density"],
            d["val_acc"],
            d["test_acc"],
            Costs.from_dict(d),
            d["stop_reason"],
            d.get("measurements", {}),
            d.get("stopper", {}),
            d.get("lr_start"),
            d.get("diagnosis"),
        )


@dataclass
class DenseRecord:
    """Level 0 of one dataset x model x seed."""

    dataset: str
    model: str
    seed: int
    config_hash: str
    status: str
    config: dict
    provenance: dict
    started: str
    finished: str
    wall_seconds: float
    steps_per_epoch: int
    rewind_step: int
    best_val_acc: float | None
    val_acc: float | None
    test_acc: float | None
    weights_sha256: str
    costs: Costs
    epochs: list[EpochRow]
    method: str = "dense"
    density: float = 1.0

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    unchecked: bool = False  # read from a file without a checksum (written by an older version)

    def to_json(self) -> dict:
        out = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "unchecked"
        }
        return with_checksum(
            {**out, "costs": self.costs.as_dict(), "epochs": [e.as_dict() for e in self.epochs]}
        )

    @classmethod
    def from_json(cls, d: dict, where: str = "a dense record") -> "DenseRecord":
        d = {**checked(d, where), "unchecked": CHECKSUM not in d}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(
            **{
                **{k: v for k, v in d.items() if k in names},
                "costs": Costs.from_dict(d["costs"]),
                "epochs": [EpochRow.from_dict(e) for e in d["epochs"]],
            }
        )

    def summary(self) -> dict:
        """What an IMP record keeps of its level 0."""
        return {
            "best_val_acc": self.best_val_acc,
            "val_acc": self.val_acc,
            "test_acc": self.test_acc,
            "status": self.status,
            "costs": self.costs.as_dict(),
            "rewind_step": self.rewind_step,
            "steps_per_epoch": self.steps_per_epoch,
            "weights_sha256": self.weights_sha256,
        }


@dataclass
class RunRecord:
    """One IMP run. `method` is the name the study gives it (a variant's own name); `base_method`
    the registered method; `role` and `schedule` are what the statistics compare it by."""

    method: str
    base_method: str
    role: str
    schedule: str
    dataset: str
    model: str
    seed: int
    config_hash: str
    dense_config_hash: str
    status: str
    diagnostic: bool
    method_params: dict
    config: dict
    provenance: dict
    started: str
    finished: str
    wall_seconds: float
    dense: dict
    flow_reference: dict | None
    levels: list[LevelRow]
    diverged_at_level: int | None = None
    collapsed_at_level: int | None = (
        None  # pruning left a prunable layer without a weight: the run stopped
    )
    warnings: list[str] = field(
        default_factory=list
    )  # inputs accepted with a caveat (e.g. a shrunk probe set)
    unchecked: bool = False  # read from a file without a checksum (written by an older version)

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def totals(self) -> Costs:
        return sum((lv.costs for lv in self.levels), Costs())

    @property
    def ended_at_level(self) -> int | None:
        """The level a run that did not complete stopped at (it diverged, or its
        network collapsed)."""
        return (
            self.diverged_at_level
            if self.diverged_at_level is not None
            else self.collapsed_at_level
        )

    @property
    def final(self) -> LevelRow | None:
        """The last level of a complete run (None for a diverged or empty one)."""
        return self.levels[-1] if self.complete and self.levels else None

    def to_json(self) -> dict:
        out = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "unchecked"
        }
        out["levels"] = [lv.as_dict() for lv in self.levels]
        out["totals"] = {**self.totals.as_dict(), "levels": len(self.levels)}
        for key in ("diverged_at_level", "collapsed_at_level"):
            if out[key] is None:
                del out[key]
        if not self.warnings:
            del out["warnings"]
        return with_checksum(out)

    @classmethod
    def from_json(cls, d: dict, where: str = "a run record") -> "RunRecord":
        d = {**checked(d, where), "unchecked": CHECKSUM not in d}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(
            **{
                **{k: v for k, v in d.items() if k in names},
                "levels": [LevelRow.from_dict(lv) for lv in d["levels"]],
            }
        )


def cumulative(levels: list[LevelRow]) -> dict[str, Any]:
    """Epochs, optimizer steps and compared FLOPs (training + monitoring) summed over levels."""
    return {
        "epochs": sum(lv.costs.epochs for lv in levels),
        "steps": sum(lv.costs.optimizer_steps for lv in levels),
        "flops": sum(COMPARED_COSTS["flops"](lv.costs) for lv in levels),
    }
