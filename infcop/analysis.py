"""Collect a study's records and compute every number its tables show (-> stats.json).

Comparisons are paired by seed: InfCoP variant vs competitor at the same seed started from the
same dense run. Each InfCoP variant is compared only with methods that prune on the same
density schedule (magnitude-20% vs lth/wr/lrr/...; PQ-index vs sap), so a speedup is a saving
"to reach the same final density". Holm-Bonferroni runs over one table's family: all comparisons
of one dataset x model, separately for each test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from infcop.config import Config
from infcop.costs import COMPARED_COSTS
from infcop.imp import run_name
from infcop.records import atomic_write_csv, dense_dir, experiment_dir, read_json, run_dir
from infcop.stats import compare_accuracy, compare_cost, holm, mean_sd

MAGNITUDE_COMPETITORS = ("lth", "wr", "lrr", "finetune", "early_bird", "random", "acc_target", "fixed_same_reset")
COMPETITORS = {
    "infcop_if": MAGNITUDE_COMPETITORS + ("infcop_if_init",),
    "infcop_gf": MAGNITUDE_COMPETITORS + ("infcop_gf_init",),
    "infcop_if_pq": ("sap",),
    "infcop_gf_pq": ("sap",),
}
ABLATIONS = ("acc_target", "fixed_same_reset", "infcop_if_init", "infcop_gf_init")
STOP_REASONS = ("flow", "accuracy", "mask", "cap")
RUN_COLUMNS = ["dataset", "model", "method", "seed", "status", "diagnostic", "level", "density", "val_acc", "test_acc",
               "epochs", "optimizer_steps", "cumulative_epochs", "cumulative_flops", "cumulative_seconds", "stop_reason",
               "config_hash"]


def comparisons(methods: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(i, c) for i in methods if i in COMPETITORS for c in COMPETITORS[i] if c in methods]


def load_records(cfg: Config) -> dict[str, dict]:
    """{pair: {"dense": {seed: record}, "runs": {method: {seed: record}}, "diagnose": {method: {seed: record}}}}."""
    ex = cfg.experiment
    out: dict[str, dict] = {}
    for pair in cfg.study.pairs:
        dataset, model = pair.split("/")
        entry: dict = {"dense": {}, "runs": {}, "diagnose": {}}
        for seed in ex.seeds:
            p = dense_dir(ex.results_dir, ex.name, dataset, model, seed) / "record.json"
            if p.exists():
                entry["dense"][seed] = read_json(p)
            for kind, methods, diag in (("runs", cfg.study.methods, False), ("diagnose", cfg.study.diagnose, True)):
                for m in methods:
                    p = run_dir(ex.results_dir, ex.name, dataset, model, run_name(m, diag), seed) / "record.json"
                    if p.exists():
                        entry[kind].setdefault(m, {})[seed] = read_json(p)
        out[pair] = entry
    return out


def write_runs_csv(records: dict[str, dict], path: Path) -> None:
    rows = []
    for kind in ("runs", "diagnose"):
        for pair in records.values():
            for method, by_seed in pair[kind].items():
                for seed, rec in sorted(by_seed.items()):
                    total = dict.fromkeys(COMPARED_COSTS, 0.0)
                    for lv in rec["levels"]:
                        total = {k: total[k] + f(lv) for k, f in COMPARED_COSTS.items()}
                        rows.append({**{k: rec[k] for k in ("dataset", "model", "method", "seed", "status", "diagnostic",
                                                            "config_hash")},
                                     **{k: lv[k] for k in ("level", "density", "val_acc", "test_acc", "epochs",
                                                           "optimizer_steps", "stop_reason")},
                                     "cumulative_epochs": total["epochs"], "cumulative_flops": total["flops"],
                                     "cumulative_seconds": total["wall"]})
    atomic_write_csv(path, rows, RUN_COLUMNS)


def _final(rec: dict, key: str) -> float:
    return rec["levels"][-1][key] if rec["status"] == "complete" and rec["levels"] else float("nan")


def method_summary(by_seed: dict[int, dict], dense: dict[int, dict], margin: float) -> dict:
    complete = {s: r for s, r in by_seed.items() if r["status"] == "complete"}
    seeds = sorted(s for s in complete if s in dense)
    acc_m, acc_sd = mean_sd([_final(complete[s], "test_acc") for s in seeds])
    levels = [lv for r in complete.values() for lv in r["levels"]]
    vs_dense = compare_accuracy([_final(complete[s], "test_acc") for s in seeds], [dense[s]["test_acc"] for s in seeds],
                                margin)
    return {
        "n": len(seeds), "n_diverged": sum(r["status"] == "diverged" for r in by_seed.values()),
        "final_density": mean_sd([_final(r, "density") for r in complete.values()])[0],
        "test_acc_mean": acc_m, "test_acc_sd": acc_sd,
        "delta_vs_dense": vs_dense.as_dict(),
        **{f"total_{k}_mean": mean_sd([f(r["totals"]) for r in complete.values()])[0] for k, f in COMPARED_COSTS.items()},
        "stop_share": {k: (sum(lv["stop_reason"] == k for lv in levels) / len(levels) if levels else None)
                       for k in STOP_REASONS},
    }


def compare(infcop: dict[int, dict], comp: dict[int, dict], margin: float, n_boot: int) -> dict:
    seeds = sorted(s for s in infcop if s in comp and infcop[s]["status"] == comp[s]["status"] == "complete")
    a, b = [infcop[s] for s in seeds], [comp[s] for s in seeds]
    return {
        "seeds": seeds,
        "density_infcop": mean_sd([_final(r, "density") for r in a])[0],
        "density_competitor": mean_sd([_final(r, "density") for r in b])[0],
        "accuracy": compare_accuracy([_final(r, "test_acc") for r in a], [_final(r, "test_acc") for r in b], margin).as_dict(),
        "speedup": {k: compare_cost([f(r["totals"]) for r in a], [f(r["totals"]) for r in b], n_boot).as_dict()
                    for k, f in COMPARED_COSTS.items()},
    }


def adjust_family(rows: list[dict], alpha: float) -> None:
    """Holm within one table for each test; adds *_adj keys and the non-inferiority verdict."""
    for getter in (lambda r: r["accuracy"], *[lambda r, k=k: r["speedup"][k] for k in COMPARED_COSTS]):
        keys = [k for k in ("p_two_sided", "p_noninferior", "p_ttest", "p_wilcoxon") if k in getter(rows[0])] if rows else []
        for key in keys:
            for r, adj in zip(rows, holm([getter(r)[key] for r in rows])):
                getter(r)[f"{key}_adj"] = adj
    for r in rows:
        p = r["accuracy"].get("p_noninferior_adj")
        r["noninferior"] = None if p is None else bool(p < alpha)


def diagnostics(by_seed: dict[int, dict]) -> dict:
    """Stopping lag of each criterion against the oracle epoch, and the ε sweep, over levels and seeds."""
    per_level = [lv["diagnosis"] for r in by_seed.values() for lv in r["levels"] if "diagnosis" in lv]
    caps = [lv["epochs"] for r in by_seed.values() for lv in r["levels"] if "diagnosis" in lv]
    if not per_level:
        return {}

    def summarise(epochs: list[int | None]) -> dict:
        fired = [(e, d["oracle_epoch"], cap) for e, d, cap in zip(epochs, per_level, caps) if e is not None]
        lags = [e - o for e, o, _ in fired if o is not None]
        return {"fired_share": len(fired) / len(per_level),
                "mean_epoch": float(np.mean([e for e, _, _ in fired])) if fired else None,
                "mean_lag_vs_oracle": float(np.mean(lags)) if lags else None,
                "early_share": float(np.mean([lag < 0 for lag in lags])) if lags else None}

    out = {"levels": len(per_level),
           "oracle_found_share": float(np.mean([d["oracle_epoch"] is not None for d in per_level])),
           "method": summarise([d["method_epoch"] for d in per_level]),
           "mask_stability": summarise([d["mask_stability"] for d in per_level])}
    for crit in ("information_flow", "gradient_flow"):
        out[crit] = {eps: summarise([d[crit][eps] for d in per_level]) for eps in per_level[0][crit]}
    return out


def study_stats(cfg: Config, records: dict[str, dict]) -> dict:
    st = cfg.study
    out = {"experiment": cfg.experiment.name, "seeds": list(cfg.experiment.seeds), "margin": st.margin,
           "alpha": st.alpha, "methods": list(st.methods), "pairs": {}}
    for pair, rec in records.items():
        dense = {s: r for s, r in rec["dense"].items() if r["status"] == "complete"}
        rows = []
        for infcop, comp in comparisons(st.methods):
            if infcop in rec["runs"] and comp in rec["runs"]:
                rows.append({"infcop": infcop, "competitor": comp, "ablation": comp in ABLATIONS,
                             **compare(rec["runs"][infcop], rec["runs"][comp], st.margin, st.bootstrap)})
        adjust_family(rows, st.alpha)
        methods = {m: method_summary(by_seed, dense, st.margin) for m, by_seed in rec["runs"].items()}
        for summary, adj in zip(methods.values(), holm([m["delta_vs_dense"]["p_noninferior"] for m in methods.values()])):
            summary["delta_vs_dense"]["p_noninferior_adj"] = adj
            summary["noninferior_to_dense"] = None if adj is None else bool(adj < st.alpha)
        out["pairs"][pair] = {
            "dense": dict(zip(("test_acc_mean", "test_acc_sd"), mean_sd([r["test_acc"] for r in dense.values()])),
                          n=len(dense), best_val_acc_mean=mean_sd([r["best_val_acc"] for r in dense.values()])[0]),
            "methods": methods,
            "comparisons": rows,
            "diagnostics": {m: diagnostics(by_seed) for m, by_seed in rec["diagnose"].items()},
        }
    return out


def stats_path(cfg: Config) -> Path:
    return experiment_dir(cfg.experiment.results_dir, cfg.experiment.name) / "stats.json"


def runs_csv_path(cfg: Config) -> Path:
    return experiment_dir(cfg.experiment.results_dir, cfg.experiment.name) / "runs.csv"
