"""Collect a study's records and compute every number its tables show (-> stats.json).

Who is compared with whom follows from what methods declare (infcop.methods.registry): every
InfCoP variant of the study against every other method of the study that prunes on the same
density schedule (so a speedup is a saving "to reach the same final density"), except that an
ablation of one InfCoP method is compared with that method only, and a run that mirrors another (a
budget-matched control) with the run it mirrors only. Comparisons are paired by seed:
both sides at the same seed started from the same dense run. Holm-Bonferroni runs over one
table's family: all comparisons of one dataset x model, separately for each test.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infcop.foundations.config import Config, dense_hash
from infcop.core.costs import COMPARED_COSTS
from infcop.criteria import stop_reasons
from infcop.methods import Role
from infcop.foundations.paths import run_name, study_dir
from infcop.engine.records import DenseRecord, RunRecord
from infcop.engine.spec import RunSpec, mirrored_run, resolve_variant
from infcop.foundations.storage import ConfigMismatch, atomic_write_csv, read_json
from infcop.study.stats import (
    compare_accuracy,
    compare_cost,
    holm,
    holm_level,
    mean_sd,
    seeds_to_decide,
)

log = logging.getLogger("infcop")
RUN_COLUMNS = [
    "dataset",
    "model",
    "method",
    "base_method",
    "role",
    "seed",
    "status",
    "diagnostic",
    "level",
    "density",
    "val_acc",
    "test_acc",
    "epochs",
    "optimizer_steps",
    "cumulative_epochs",
    "cumulative_flops",
    "cumulative_seconds",
    "stop_reason",
    "config_hash",
]


@dataclass
class PairRecords:
    dense: dict[int, DenseRecord] = field(default_factory=dict)
    runs: dict[str, dict[int, RunRecord]] = field(default_factory=dict)
    diagnose: dict[str, dict[int, RunRecord]] = field(default_factory=dict)


def method_names(cfg: Config) -> list[str]:
    return [e.name for e in cfg.study.methods]


def plan_comparisons(cfg: Config) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(InfCoP variant, other method) pairs to compare, in study order, and for every method of the
    study that takes part in no comparison, why not."""
    variants = {name: resolve_variant(cfg, name) for name in method_names(cfg)}
    schedule = {name: v.schedule_for(cfg) for name, v in variants.items()}
    mirrors = {name: mirrored_run(cfg, name) for name in variants}
    pairs = []
    for a, va in variants.items():
        if va.method.role is not Role.INFCOP:
            continue
        for b, vb in variants.items():
            if vb.method.role is Role.INFCOP or schedule[b] != schedule[a]:
                continue
            if vb.method.ablates and va.method.name not in vb.method.ablates:
                continue
            if mirrors.get(b) not in (
                None,
                a,
            ):  # a control is compared with the run it mirrors only
                continue
            pairs.append((a, b))
    compared = {m for p in pairs for m in p}
    infcop = [n for n, v in variants.items() if v.method.role is Role.INFCOP]
    why = {}
    for name in variants:
        if name in compared:
            continue
        if not infcop:
            why[name] = "the study runs no InfCoP variant"
        elif variants[name].method.role is Role.INFCOP:
            why[name] = f"no other method of the study prunes on its schedule ({schedule[name]})"
        else:
            why[name] = f"no InfCoP variant of the study prunes on its schedule ({schedule[name]})"
    return pairs, why


def load_records(pair_cfgs: dict[str, Config]) -> dict[str, PairRecords]:
    """Every record the study's config asks for (each pair x method x seed, dense and diagnostic
    runs included), each checked against that config: its checksum, its config hash (what it was
    trained with) and its levels. A record that is missing or does not match is an error naming
    it, never a row the tables silently drop or report from an old config. A complete run with
    more levels than `pruning.levels` is read up to that level, which is exactly what a run of
    that many levels gives."""
    out: dict[str, PairRecords] = {}
    problems: list[str] = []
    for pair, cfg in pair_cfgs.items():
        ex, (dataset, model) = cfg.experiment, pair.split("/")
        study = study_dir(ex.results_dir, ex.name)
        diagnosed = dataclasses.replace(
            cfg, stopping=dataclasses.replace(cfg.stopping, diagnose=True)
        )
        entry = PairRecords()
        for seed in ex.seeds:
            path = study.dense(dataset, model, seed).record
            dense = _matching(path, DenseRecord, dense_hash(cfg), problems)
            if dense is not None:
                entry.dense[seed] = dense
            for kind, methods, base in (
                ("runs", method_names(cfg), cfg),
                ("diagnose", cfg.study.diagnose, diagnosed),
            ):
                for m in methods:
                    spec = RunSpec.of(base, m, seed)
                    record = _matching(spec.dir.record, RunRecord, spec.hash, problems)
                    if record is not None and _as_configured(
                        record, cfg.pruning.levels, spec.dir.record, problems
                    ):
                        getattr(entry, kind).setdefault(m, {})[seed] = record
        out[pair] = entry
    if problems:
        shown = "\n  ".join(problems[:10]) + (
            f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        )
        raise ConfigMismatch(
            f"{len(problems)} record(s) of the study are missing or do not match its config:\n  "
            f"{shown}\nRun the workflow (snakemake) to compute them, or `infcop run` for one run"
        )
    return out


def _matching(path: Path, kind: type, config_hash: str, problems: list[str]):
    """The record at `path` if it exists and was produced by `config_hash`; else None,
    with the problem."""
    if not path.exists():
        problems.append(f"{path}: missing")
        return None
    record = kind.from_json(read_json(path), str(path))
    if record.unchecked:
        log.warning("%s carries no checksum (written before records did); read unchecked", path)
    if record.config_hash != config_hash:
        problems.append(
            f"{path}: produced by config {record.config_hash}, the study's config gives "
            f"{config_hash}"
        )
        return None
    return record


def _as_configured(record: RunRecord, levels: int, path: Path, problems: list[str]) -> bool:
    """Cut a record to the study's `pruning.levels`; False (with the problem) if it has too few."""
    if (
        record.ended_at_level is not None and record.ended_at_level > levels
    ):  # it ended past the study's levels
        record.status, record.diverged_at_level, record.collapsed_at_level = "complete", None, None
    if record.complete and len(record.levels) < levels:
        problems.append(
            f"{path}: {len(record.levels)} level(s), the study's config asks for {levels}"
        )
        return False
    record.levels = record.levels[:levels]
    return True


def write_runs_csv(records: dict[str, PairRecords], path: Path) -> None:
    rows = []
    for kind in ("runs", "diagnose"):
        for pair in records.values():
            for by_seed in getattr(pair, kind).values():
                for seed, rec in sorted(by_seed.items()):
                    total = dict.fromkeys(COMPARED_COSTS, 0.0)
                    for lv in rec.levels:
                        total = {k: total[k] + f(lv.costs) for k, f in COMPARED_COSTS.items()}
                        rows.append(
                            {
                                "dataset": rec.dataset,
                                "model": rec.model,
                                "method": rec.method,
                                "base_method": rec.base_method,
                                "role": rec.role,
                                "seed": rec.seed,
                                "status": rec.status,
                                "diagnostic": rec.diagnostic,
                                "config_hash": rec.config_hash,
                                "level": lv.level,
                                "density": lv.density,
                                "val_acc": lv.val_acc,
                                "test_acc": lv.test_acc,
                                "epochs": lv.costs.epochs,
                                "optimizer_steps": lv.costs.optimizer_steps,
                                "stop_reason": lv.stop_reason,
                                "cumulative_epochs": total["epochs"],
                                "cumulative_flops": total["flops"],
                                "cumulative_seconds": total["wall"],
                            }
                        )
    atomic_write_csv(path, rows, RUN_COLUMNS)


def _final(rec: RunRecord, key: str) -> float:
    return getattr(rec.final, key) if rec.final is not None else float("nan")


def final_values(rec: RunRecord) -> dict[str, float]:
    """A complete run's final test accuracy and density and its total cost of each compared kind:
    the per-seed values every paired comparison is made of (kept in stats.json for comparisons that
    the tables do not make, such as the claims' competitor-vs-competitor ones)."""
    return {
        "test_acc": _final(rec, "test_acc"),
        "density": _final(rec, "density"),
        **{k: f(rec.totals) for k, f in COMPARED_COSTS.items()},
    }


def method_summary(
    by_seed: dict[int, RunRecord], dense: dict[int, DenseRecord], margin: float
) -> dict:
    complete = {s: r for s, r in by_seed.items() if r.complete}
    seeds = sorted(s for s in complete if s in dense)
    some = next(iter(by_seed.values()))
    acc_m, acc_sd = mean_sd([_final(complete[s], "test_acc") for s in seeds])
    levels = [lv for r in complete.values() for lv in r.levels]
    vs_dense = compare_accuracy(
        [_final(complete[s], "test_acc") for s in seeds], [dense[s].test_acc for s in seeds], margin
    )
    return {
        "role": some.role,
        "schedule": some.schedule,
        "n": len(seeds),
        "n_diverged": sum(r.status == "diverged" for r in by_seed.values()),
        "n_collapsed": sum(r.status == "collapsed" for r in by_seed.values()),
        "final_density": mean_sd([_final(r, "density") for r in complete.values()])[0],
        "test_acc_mean": acc_m,
        "test_acc_sd": acc_sd,
        "delta_vs_dense": vs_dense.as_dict(),
        **{
            f"total_{k}_mean": mean_sd([f(r.totals) for r in complete.values()])[0]
            for k, f in COMPARED_COSTS.items()
        },
        "stop_share": {
            k: (sum(lv.stop_reason == k for lv in levels) / len(levels) if levels else None)
            for k in stop_reasons()
        },
        "per_seed": {str(s): final_values(r) for s, r in sorted(complete.items())},
    }


def compare(
    infcop: dict[int, RunRecord], comp: dict[int, RunRecord], margin: float, n_boot: int
) -> dict:
    seeds = sorted(s for s in infcop if s in comp and infcop[s].complete and comp[s].complete)
    a, b = [infcop[s] for s in seeds], [comp[s] for s in seeds]
    return {
        "seeds": seeds,
        "density_infcop": mean_sd([_final(r, "density") for r in a])[0],
        "density_competitor": mean_sd([_final(r, "density") for r in b])[0],
        "accuracy": compare_accuracy(
            [_final(r, "test_acc") for r in a], [_final(r, "test_acc") for r in b], margin
        ).as_dict(),
        "speedup": {
            k: compare_cost([f(r.totals) for r in a], [f(r.totals) for r in b], n_boot).as_dict()
            for k, f in COMPARED_COSTS.items()
        },
    }


def adjust_family(rows: list[dict], alpha: float) -> None:
    """Holm within one table for each test; adds *_adj keys and the non-inferiority verdict."""
    for getter in (
        lambda r: r["accuracy"],
        *[lambda r, k=k: r["speedup"][k] for k in COMPARED_COSTS],
    ):
        keys = (
            [
                k
                for k in ("p_two_sided", "p_noninferior", "p_ttest", "p_wilcoxon")
                if k in getter(rows[0])
            ]
            if rows
            else []
        )
        for key in keys:
            for r, adj in zip(rows, holm([getter(r)[key] for r in rows])):
                getter(r)[f"{key}_adj"] = adj
    for r in rows:
        p = r["accuracy"].get("p_noninferior_adj")
        r["noninferior"] = None if p is None else bool(p < alpha)
    add_seeds_to_decide([r["accuracy"] for r in rows], alpha)
    for k in COMPARED_COSTS:
        add_seeds_to_decide([r["speedup"][k] for r in rows], alpha)


def add_seeds_to_decide(tests: list[dict], alpha: float) -> None:
    """`seeds_to_decide` for each test of one Holm family that did not reject at α: the seeds that
    would give 80% power at the observed mean and paired sd, at Holm's strictest level α / m. A
    non-inferiority test is about the distance to −δ (mean + δ); a speedup test about the mean log
    ratio."""
    key = "p_noninferior" if tests and "p_noninferior" in tests[0] else "p_ttest"
    level = holm_level(alpha, sum(t.get(key) is not None for t in tests))
    for t in tests:
        p = t.get(f"{key}_adj")
        if p is None or p < alpha:
            t["seeds_to_decide"] = None
        elif key == "p_noninferior":
            shift = t.get("mean_diff", math.nan) + t.get("margin", math.nan)
            t["seeds_to_decide"] = seeds_to_decide(shift, t.get("sd_diff", math.nan), level)
        else:
            shift = math.log(t["geomean"]) if t.get("geomean", 0) > 0 else math.nan
            t["seeds_to_decide"] = seeds_to_decide(shift, t.get("sd_log") or math.nan, level)


def diagnostics(by_seed: dict[int, RunRecord]) -> dict:
    """Stopping lag of each criterion against the oracle epoch, per threshold, over
    levels and seeds."""
    per_level = [
        lv.diagnosis for r in by_seed.values() for lv in r.levels if lv.diagnosis is not None
    ]
    if not per_level:
        return {}

    def summarise(epochs: list[int | None]) -> dict:
        fired = [(e, d["oracle_epoch"]) for e, d in zip(epochs, per_level) if e is not None]
        lags = [e - o for e, o in fired if o is not None]
        return {
            "fired_share": len(fired) / len(per_level),
            "mean_epoch": float(np.mean([e for e, _ in fired])) if fired else None,
            "mean_lag_vs_oracle": float(np.mean(lags)) if lags else None,
            "early_share": float(np.mean([lag < 0 for lag in lags])) if lags else None,
        }

    return {
        "levels": len(per_level),
        "oracle_found_share": float(np.mean([d["oracle_epoch"] is not None for d in per_level])),
        "method": summarise([d["method_epoch"] for d in per_level]),
        "criteria": {
            name: {t: summarise([d["criteria"][name][t] for d in per_level]) for t in sweep}
            for name, sweep in per_level[0]["criteria"].items()
        },
    }


def study_stats(pair_cfgs: dict[str, Config], records: dict[str, PairRecords]) -> dict:
    cfg = next(iter(pair_cfgs.values()))
    st = cfg.study
    out = {
        "experiment": cfg.experiment.name,
        "seeds": list(cfg.experiment.seeds),
        "margin": st.margin,
        "alpha": st.alpha,
        "methods": method_names(cfg),
        "pairs": {},
    }
    for pair, rec in records.items():
        dense = {s: r for s, r in rec.dense.items() if r.complete}
        planned, uncompared = plan_comparisons(pair_cfgs[pair])
        rows = []
        for infcop, comp in planned:
            if infcop in rec.runs and comp in rec.runs:
                role = next(iter(rec.runs[comp].values())).role
                rows.append(
                    {
                        "infcop": infcop,
                        "competitor": comp,
                        "role": role,
                        "ablation": role == Role.ABLATION.value,
                        **compare(rec.runs[infcop], rec.runs[comp], st.margin, st.bootstrap),
                    }
                )
        adjust_family(rows, st.alpha)
        methods = {m: method_summary(by_seed, dense, st.margin) for m, by_seed in rec.runs.items()}
        for summary, adj in zip(
            methods.values(), holm([m["delta_vs_dense"]["p_noninferior"] for m in methods.values()])
        ):
            summary["delta_vs_dense"]["p_noninferior_adj"] = adj
            summary["noninferior_to_dense"] = None if adj is None else bool(adj < st.alpha)
        add_seeds_to_decide([m["delta_vs_dense"] for m in methods.values()], st.alpha)
        out["pairs"][pair] = {
            "dense": dict(
                zip(
                    ("test_acc_mean", "test_acc_sd"), mean_sd([r.test_acc for r in dense.values()])
                ),
                n=len(dense),
                best_val_acc_mean=mean_sd([r.best_val_acc for r in dense.values()])[0],
                per_seed={str(s): r.test_acc for s, r in sorted(dense.items())},
            ),
            "methods": methods,
            "comparisons": rows,
            "uncompared": uncompared,
            "diagnostics": {m: diagnostics(by_seed) for m, by_seed in rec.diagnose.items()},
        }
    return out
