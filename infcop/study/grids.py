"""Threshold grids for the frontier study, derived from the per-epoch values of diagnostic runs.

Every stopping rule swept here fires when a per-epoch value is small enough: a flow distance below ε
(or below ε x the dense noise floor, relative mode), early-bird's mask distance at most ε, the
validation gap (dense best − val acc) at most τ. A diagnostic run trains every level to the cap
while measuring all of them, so for each level it shows the value after epoch 1 and the smallest
value before the cap. A threshold above every epoch-1 value fires at epoch 1 in every level; one at
or below every level's smallest value never fires before the cap. A grid spans the two, pooled over
pairs (a rule is practical only if one threshold serves every pair): from the `low` quantile of the
level minima to the `high` quantile of the epoch-1 values, geometrically spaced, rounded to two
significant digits. τ has a natural bottom, 0 (plain acc_target, which never fires in levels where
accuracy does not recover); its grid is 0, then geometric from 1/20 of the top to the top.

    python -m infcop.study.grids results/default results/frontier_calibration

prints the grids with each pair's range, and the `study.methods` entries of configs/frontier.yaml,
the fixed-budget points (budget_entries: truncated schedules and budgeted retraining) at their end.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infcop.foundations.paths import RunDir, StudyDir, run_name


@dataclass(frozen=True)
class Family:
    """One swept rule: which per-epoch value it reads, how it is scaled, and the
    variants it becomes."""

    name: str
    column: str  # epochs.csv column; "val_gap" is dense best − val acc
    points: int
    method: str  # the registered method each point is a variant of
    knob: str  # the method parameter swept
    params: dict = field(default_factory=dict)
    relative: bool = False  # values divided by the run's noise floor of this flow
    aggregation: str | None = None  # only runs measured with this information-flow aggregation
    window: int | None = None  # only runs whose mask-stability window is this
    zero_then_geometric: bool = False  # τ: 0 (the plain rule), then geometric from hi / 20 to hi

    def accepts(self, run: "DiagnosticRun") -> bool:
        if self.aggregation is not None and run.aggregation != self.aggregation:
            return False
        return self.window is None or run.window == self.window


FAMILIES = (
    Family(
        "if_signed_abs",
        "if_distance",
        4,
        "infcop_if",
        "epsilon",
        {"epsilon_mode": "absolute", "aggregation": "signed"},
        aggregation="signed",
    ),
    Family(
        "if_signed_rel",
        "if_distance",
        4,
        "infcop_if",
        "epsilon",
        {"epsilon_mode": "relative", "aggregation": "signed"},
        relative=True,
        aggregation="signed",
    ),
    Family(
        "if_absagg_abs",
        "if_distance",
        3,
        "infcop_if",
        "epsilon",
        {"epsilon_mode": "absolute", "aggregation": "absolute"},
        aggregation="absolute",
    ),
    Family(
        "if_absagg_rel",
        "if_distance",
        3,
        "infcop_if",
        "epsilon",
        {"epsilon_mode": "relative", "aggregation": "absolute"},
        relative=True,
        aggregation="absolute",
    ),
    Family("gf_abs", "gf_distance", 4, "infcop_gf", "epsilon", {"epsilon_mode": "absolute"}),
    Family(
        "gf_rel",
        "gf_distance",
        3,
        "infcop_gf",
        "epsilon",
        {"epsilon_mode": "relative"},
        relative=True,
    ),
    Family("acc_tau", "val_gap", 4, "acc_target", "tolerance", zero_then_geometric=True),
    Family(
        "early_bird_w2",
        "mask_distance",
        3,
        "early_bird",
        "epsilon",
        {"window": 2, "reset": "rewind"},
        window=2,
    ),
)
NOISE_FLOOR = {"if_distance": "information_noise_floor", "gf_distance": "gradient_noise_floor"}


@dataclass
class DiagnosticRun:
    """One diagnostic run's per-level epoch values (None where not measured) and what they
    were measured under."""

    pair: str
    seed: int
    aggregation: str
    window: int | None
    floors: dict[str, float]
    levels: list[dict[str, list[float | None]]]


def _value(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def read_run(run_dir: RunDir) -> DiagnosticRun:
    record = json.loads(run_dir.record.read_text())
    best = record["dense"]["best_val_acc"]
    levels: dict[int, dict[str, list[float | None]]] = {}
    with open(run_dir.epochs) as f:
        for row in csv.DictReader(f):
            lv = levels.setdefault(int(row["level"]), {})
            for key in ("if_distance", "gf_distance", "mask_distance"):
                lv.setdefault(key, []).append(_value(row.get(key, "")))
            lv.setdefault("val_gap", []).append(best - float(row["val_acc"]))
    windows = [
        c.get("window")
        for lv in record["levels"]
        for c in lv["stopper"].get("criteria", [])
        if c.get("key") == "mask_distance"
    ]
    floors = {
        k: (record.get("flow_reference") or {}).get(v, math.nan) for k, v in NOISE_FLOOR.items()
    }
    return DiagnosticRun(
        f"{record['dataset']}/{record['model']}",
        record["seed"],
        record["config"]["stopping"]["aggregation"],
        windows[0] if windows else None,
        floors,
        [levels[k] for k in sorted(levels)],
    )


def find_runs(study_dirs: list[Path]) -> list[DiagnosticRun]:
    patterns = [
        StudyDir(Path(study)).run("*", "*", run_name("*", True), "*").record for study in study_dirs
    ]
    runs = [
        read_run(RunDir(Path(record).parent))
        for pattern in patterns
        for record in sorted(glob.glob(str(pattern)))
    ]
    if not runs:
        raise FileNotFoundError(
            f"no diagnostic run records ({', '.join(map(str, patterns))}); run a study with "
            "study.diagnose first"
        )
    return runs


def level_extremes(
    family: Family, runs: list[DiagnosticRun]
) -> dict[str, tuple[list[float], list[float]]]:
    """Per pair: the first measured value of each level, and each level's smallest value. Two
    diagnostic runs of one seed that measured the same values (the same trajectory, e.g. IF in runs
    of two methods that reset alike) count once."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    seen = set()
    for run in runs:
        key = (run.pair, run.seed, tuple(tuple(lv.get(family.column, ())) for lv in run.levels))
        if not family.accepts(run) or key in seen:
            continue
        seen.add(key)
        scale = run.floors[family.column] if family.relative else 1.0
        firsts, minima = out.setdefault(run.pair, ([], []))
        for level in run.levels:
            values = [
                v / scale
                for v in level.get(family.column, [])
                if v is not None and math.isfinite(v / scale)
            ]
            if values:
                firsts.append(values[0])
                minima.append(min(values))
    return out


def round_sig(x: float, digits: int = 2) -> float:
    if x == 0:
        return 0.0
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def grid(family: Family, lo: float, hi: float) -> list[float]:
    if family.zero_then_geometric:
        hi = max(hi, 1e-12)
        values = np.concatenate([[0.0], np.geomspace(hi / 20, hi, family.points - 1)])
    else:
        lo = max(lo, hi * 1e-6, 1e-12)
        values = np.geomspace(lo, max(hi, lo), family.points)
    return sorted({round_sig(float(v)) for v in values})


def derive(runs: list[DiagnosticRun], low: float = 0.05, high: float = 0.95) -> dict[str, dict]:
    """Per family: the grid, and each pair's (low quantile of level minima, high quantile
    of epoch-1 values)."""
    out = {}
    for family in FAMILIES:
        per_pair = {
            pair: (float(np.quantile(minima, low)), float(np.quantile(firsts, high)))
            for pair, (firsts, minima) in level_extremes(family, runs).items()
            if firsts
        }
        if not per_pair:
            out[family.name] = {"grid": [], "pairs": {}}
            continue
        lo, hi = min(r[0] for r in per_pair.values()), max(r[1] for r in per_pair.values())
        out[family.name] = {"grid": grid(family, lo, hi), "pairs": per_pair}
    return out


def method_entries(grids: dict[str, dict]) -> list[dict]:
    """The frontier study's variants: one per family and grid value (τ = 0 is plain acc_target)."""
    entries = []
    for family in FAMILIES:
        for value in grids[family.name]["grid"]:
            if family.zero_then_geometric and value == 0:
                entries.append({"name": family.method, "method": family.method, "params": {}})
                continue
            entries.append(
                {
                    "name": f"{family.name}_{value:g}",
                    "method": family.method,
                    "params": {**family.params, family.knob: value},
                }
            )
    return entries


def budget_entries(left: int, top: int) -> list[dict]:
    """The fixed-budget points: the truncated schedule (fixed_same_reset for T = 1 .. left − 1
    epochs per level, the LR cut off where it stands, then the whole `left` epochs of schedule after
    the rewind: the baseline), and budgeted retraining for k = 1 .. top epochs, the LR annealed to 0
    within them, linear (`budgeted_k<k>`) and cosine (`budgeted_cos_k<k>`)."""
    truncated = [
        {"name": f"truncated_T{t}", "method": "fixed_same_reset", "params": {"epochs": t}}
        for t in range(1, left)
    ]
    budgeted = [
        {
            "name": f"budgeted{'_cos' if form == 'cosine' else ''}_k{k}",
            "method": "budgeted",
            "params": {"epochs": k, "form": form},
        }
        for form in ("linear", "cosine")
        for k in range(1, top + 1)
    ]
    baseline = {"name": "fixed_same_reset", "method": "fixed_same_reset", "params": {}}
    return [*truncated, baseline, *budgeted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "studies", nargs="+", type=Path, help="study directories holding diagnostic runs"
    )
    parser.add_argument(
        "--low", type=float, default=0.05, help="quantile of level minima: 'never fires'"
    )
    parser.add_argument(
        "--high", type=float, default=0.95, help="quantile of epoch-1 values: 'fires at epoch 1'"
    )
    parser.add_argument(
        "--left", type=int, default=5, help="epochs of schedule left after the rewind (T − t)"
    )
    parser.add_argument("--top", type=int, default=6, help="largest k of budgeted retraining")
    args = parser.parse_args(argv)
    try:
        grids = derive(find_runs(args.studies), args.low, args.high)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"# grid per family; per pair [q{args.low:g} of level minima, q{args.high:g} of "
        "epoch-1 values]"
    )
    for name, g in grids.items():
        print(f"# {name}: {g['grid']}")
        for p, (lo, hi) in sorted(g["pairs"].items()):
            print(f"#     {p}: [{lo:.3g}, {hi:.3g}]")
    for e in method_entries(grids) + budget_entries(args.left, args.top):
        params = ", ".join(f"{k}: {v}" for k, v in e["params"].items())
        print(f"    - {{name: {e['name']}, method: {e['method']}, params: {{{params}}}}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
