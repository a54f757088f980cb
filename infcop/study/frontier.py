"""The accuracy-cost frontier of a study's stopping rules: is any flow-criterion
setting worth having?

Every method (variant) of the study is a point: final test accuracy, mean and 95% t CI over seeds,
against total cost, FLOPs and epochs, charged as everywhere in the harness (COMPARED_COSTS: training
plus the monitoring and validation passes the rule needs, and the flow reference). A family is one
rule swept over its knob (a flow criterion under one ε mode and aggregation, acc_target's τ,
fixed-epoch T, early-bird's ε); its points differ only in the knob.

* Pareto front, on mean FLOPs and separately on mean epochs: no other point is at least as accurate
  and at most as costly, and better in one of the two.
* Each flow-criterion point f (role infcop) against the simple-rule points s (every other role),
  paired over seeds:
  - the cheapest s whose paired mean accuracy s − f ≥ 0 ("as accurate"): f is dominated by it when
    s is non-inferior at margin δ (one-sided paired t) and significantly cheaper in FLOPs (one-sided
    paired t on log ratios);
  - the most accurate s with mean FLOPs ≤ f's ("no costlier"): f is dominated by it when s is
    significantly more accurate (one-sided paired t of s − f > 0).
  Holm over the family, the pair's flow points, separately for each of the three tests.

    python -m infcop.study.frontier --config results/<study>/config.yaml
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats as st
from tabulate import tabulate

from infcop.foundations.config import Config, ConfigError, read_yaml
from infcop.core.costs import COMPARED_COSTS
from infcop.methods import Role
from infcop.foundations.paths import StudyDir, study_dir
from infcop.engine.records import RunRecord
from infcop.foundations.storage import atomic_write_csv, atomic_write_text
from infcop.study.stats import compare_accuracy, compare_cost, holm

KNOBS = (
    "epsilon",
    "tolerance",
    "epochs",
)  # the swept parameter of a variant, first one its params have


@dataclass
class Point:
    """One method of the study on one pair: per-seed final test accuracy and total costs."""

    name: str
    family: str
    knob: str
    flow: bool
    acc: dict[int, float] = field(default_factory=dict)
    flops: dict[int, float] = field(default_factory=dict)
    epochs: dict[int, float] = field(default_factory=dict)

    def mean(self, what: str) -> float:
        values = [v for v in getattr(self, what).values() if math.isfinite(v)]
        return float(np.mean(values)) if values else math.nan

    def acc_ci(self) -> tuple[float, float]:
        a = np.array([v for v in self.acc.values() if math.isfinite(v)])
        if len(a) < 2:
            return math.nan, math.nan
        half = float(st.t.ppf(0.975, len(a) - 1)) * float(a.std(ddof=1)) / math.sqrt(len(a))
        return float(a.mean()) - half, float(a.mean()) + half


def describe(rec: RunRecord) -> tuple[str, str]:
    """(family, knob) of a run: the base method with its other parameters, and the swept value. A
    unset parameter that names a stopping setting shows the setting the run used."""
    params = dict(rec.method_params)
    stopping = rec.config.get("stopping", {})
    knob = next((k for k in KNOBS if k in params), None)
    value = params.pop(knob, None) if knob else None
    if knob == "epochs" and value is None:
        value = rec.levels[0].stopper.get("cap") if rec.levels else None
    filled = {k: stopping.get(k) if v is None else v for k, v in params.items()}
    others = ", ".join(f"{k}={v}" for k, v in sorted(filled.items()) if v is not None)
    family = f"{rec.base_method} {others}".strip()
    return family, (
        ""
        if knob is None
        else f"{knob}={value:g}"
        if isinstance(value, (int, float))
        else f"{knob}={value}"
    )


def points_of(runs: dict[str, dict[int, RunRecord]]) -> list[Point]:
    out = []
    for name, by_seed in runs.items():
        complete = {s: r for s, r in by_seed.items() if r.complete and r.final is not None}
        if not complete:
            continue
        some = next(iter(complete.values()))
        family, knob = describe(some)
        p = Point(name, family, knob, some.role == Role.INFCOP.value)
        for s, r in complete.items():
            p.acc[s] = r.final.test_acc
            p.flops[s] = COMPARED_COSTS["flops"](r.totals)
            p.epochs[s] = float(COMPARED_COSTS["epochs"](r.totals))
        out.append(p)
    return out


def pareto_front(costs: list[float], accs: list[float]) -> list[bool]:
    """Which points no other point dominates (cost ≤ and accuracy ≥, one strictly);
    NaN is never on it."""
    ok = [math.isfinite(c) and math.isfinite(a) for c, a in zip(costs, accs)]
    front = []
    for i, (c, a) in enumerate(zip(costs, accs)):
        beaten = any(
            ok[j] and costs[j] <= c and accs[j] >= a and (costs[j] < c or accs[j] > a)
            for j in range(len(costs))
            if j != i
        )
        front.append(ok[i] and not beaten)
    return front


def _paired(a: dict[int, float], b: dict[int, float]) -> tuple[list[float], list[float]]:
    seeds = sorted(set(a) & set(b))
    return [a[s] for s in seeds], [b[s] for s in seeds]


def dominance(flow: Point, simple: list[Point], margin: float) -> dict:
    """The two comparisons of one flow point with the simple-rule points (raw
    p-values; see module doc)."""
    out: dict = {
        "as_accurate": None,
        "no_costlier": None,
        "p_noninferior": None,
        "p_cheaper": None,
        "p_superior": None,
        "d_acc": None,
        "d_acc_ci": (None, None),
        "flops_ratio": None,
        "flops_ratio_ci": (None, None),
        "d_acc_superior": None,
    }
    as_accurate = []
    for s in simple:
        sa, fa = _paired(s.acc, flow.acc)
        if sa and np.mean(np.subtract(sa, fa)) >= 0:
            as_accurate.append(s)
    if as_accurate:
        s = min(as_accurate, key=lambda p: p.mean("flops"))
        acc = compare_accuracy(*_paired(s.acc, flow.acc), margin)
        cost = compare_cost(*_paired(s.flops, flow.flops))  # ratio cost(flow) / cost(s), tested > 1
        out.update(
            as_accurate=s.name,
            p_noninferior=acc.p_noninferior,
            p_cheaper=cost.p_ttest,
            d_acc=acc.mean_diff,
            d_acc_ci=(acc.ci_low, acc.ci_high),
            flops_ratio=cost.geomean,
            flops_ratio_ci=(cost.ci_low, cost.ci_high),
        )
    cheaper = [s for s in simple if s.mean("flops") <= flow.mean("flops")]
    if cheaper:
        s = max(cheaper, key=lambda p: p.mean("acc"))
        sup = compare_accuracy(*_paired(s.acc, flow.acc), 0.0)  # one-sided: s − f > 0
        out.update(no_costlier=s.name, p_superior=sup.p_noninferior, d_acc_superior=sup.mean_diff)
    return out


def verdicts(rows: list[dict], alpha: float) -> None:
    """Holm over one pair's flow points for each test, then whether each flow point is dominated."""
    for key in ("p_noninferior", "p_cheaper", "p_superior"):
        for r, adj in zip(rows, holm([r[key] for r in rows])):
            r[f"{key}_adj"] = adj
    for r in rows:
        ps = (r["p_noninferior_adj"], r["p_cheaper_adj"], r["p_superior_adj"])
        by_cheaper = (
            r["p_noninferior_adj"] is not None
            and r["p_cheaper_adj"] is not None
            and r["p_noninferior_adj"] < alpha
            and r["p_cheaper_adj"] < alpha
        )
        by_better = r["p_superior_adj"] is not None and r["p_superior_adj"] < alpha
        r["dominated"] = None if all(p is None for p in ps) else bool(by_cheaper or by_better)


def pair_frontier(points: list[Point], margin: float, alpha: float) -> dict:
    """The front on each cost and the flow points' dominance rows for one pair."""
    accs = [p.mean("acc") for p in points]
    fronts = {
        cost: pareto_front([p.mean(cost) for p in points], accs) for cost in ("flops", "epochs")
    }
    simple = [p for p in points if not p.flow]
    rows = [{"point": p.name, **dominance(p, simple, margin)} for p in points if p.flow]
    verdicts(rows, alpha)
    return {"points": points, "front": fronts, "flow": rows}


# ---------------------------------------------------------------- tables
def _f(x: float | None, fmt: str) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _p(p: float | None) -> str:
    return "–" if p is None else "<0.001" if p < 0.001 else f"{p:.3f}"


def point_rows(pair: str, result: dict) -> list[dict]:
    rows = []
    flow = {r["point"]: r for r in result["flow"]}
    for i, p in enumerate(result["points"]):
        lo, hi = p.acc_ci()
        row = {
            "pair": pair,
            "point": p.name,
            "family": p.family,
            "knob": p.knob,
            "rule": "flow" if p.flow else "simple",
            "n": len([v for v in p.acc.values() if math.isfinite(v)]),
            "test_acc_%": _f(100 * p.mean("acc"), ".1f"),
            "acc_ci95_%": f"[{_f(100 * lo, '.1f')}, {_f(100 * hi, '.1f')}]",
            "GFLOPs": _f(p.mean("flops") / 1e9, ".3g"),
            "epochs": _f(p.mean("epochs"), ".1f"),
            "front_flops": "yes" if result["front"]["flops"][i] else "",
            "front_epochs": "yes" if result["front"]["epochs"][i] else "",
        }
        r = flow.get(p.name)
        if r is not None:
            dom = "n/a" if r["dominated"] is None else "yes" if r["dominated"] else "no"
            d_acc = (
                f"{_f(None if r['d_acc'] is None else 100 * r['d_acc'], '+.2f')} "
                f"[{_f(None if r['d_acc_ci'][0] is None else 100 * r['d_acc_ci'][0], '.2f')}, "
                f"{_f(None if r['d_acc_ci'][1] is None else 100 * r['d_acc_ci'][1], '.2f')}]"
            )
            row.update(
                {
                    "cheapest_as_accurate": r["as_accurate"] or "none",
                    "Δacc_pp (it − flow)": d_acc,
                    "flops_flow/it": f"{_f(r['flops_ratio'], '.2f')}× "
                    f"[{_f(r['flops_ratio_ci'][0], '.2f')}, {_f(r['flops_ratio_ci'][1], '.2f')}]",
                    "p_adj_noninferior": _p(r["p_noninferior_adj"]),
                    "p_adj_cheaper": _p(r["p_cheaper_adj"]),
                    "most_accurate_no_costlier": r["no_costlier"] or "none",
                    "Δacc_pp (that − flow)": _f(
                        None if r["d_acc_superior"] is None else 100 * r["d_acc_superior"], "+.2f"
                    ),
                    "p_adj_superior": _p(r["p_superior_adj"]),
                    "dominated": dom,
                }
            )
        rows.append(row)
    return rows


def _num(x: float | None, scale: float = 1.0) -> float | None:
    return None if x is None or not math.isfinite(x) else x * scale


def point_records(pair: str, result: dict) -> list[dict]:
    """frontier.csv: the numbers of point_rows, one per column (CI bounds of their own, p
    values as numbers)."""
    rows = []
    flow = {r["point"]: r for r in result["flow"]}
    for i, p in enumerate(result["points"]):
        lo, hi = p.acc_ci()
        row = {
            "pair": pair,
            "point": p.name,
            "family": p.family,
            "knob": p.knob,
            "rule": "flow" if p.flow else "simple",
            "n": len([v for v in p.acc.values() if math.isfinite(v)]),
            "test_acc_%": _num(p.mean("acc"), 100),
            "acc_ci95_low_%": _num(lo, 100),
            "acc_ci95_high_%": _num(hi, 100),
            "GFLOPs": _num(p.mean("flops"), 1e-9),
            "epochs": _num(p.mean("epochs")),
            "front_flops": "yes" if result["front"]["flops"][i] else "",
            "front_epochs": "yes" if result["front"]["epochs"][i] else "",
        }
        r = flow.get(p.name)
        if r is not None:
            row.update(
                {
                    "cheapest_as_accurate": r["as_accurate"] or "none",
                    "Δacc_pp (it − flow)": _num(r["d_acc"], 100),
                    "Δacc_pp_ci_low": _num(r["d_acc_ci"][0], 100),
                    "Δacc_pp_ci_high": _num(r["d_acc_ci"][1], 100),
                    "flops_flow/it": _num(r["flops_ratio"]),
                    "flops_flow/it_ci_low": _num(r["flops_ratio_ci"][0]),
                    "flops_flow/it_ci_high": _num(r["flops_ratio_ci"][1]),
                    "p_adj_noninferior": r["p_noninferior_adj"],
                    "p_adj_cheaper": r["p_cheaper_adj"],
                    "most_accurate_no_costlier": r["no_costlier"] or "none",
                    "Δacc_pp (that − flow)": _num(r["d_acc_superior"], 100),
                    "p_adj_superior": r["p_superior_adj"],
                    "dominated": (
                        "n/a" if r["dominated"] is None else "yes" if r["dominated"] else "no"
                    ),
                }
            )
        rows.append(row)
    return rows


def write_tables(
    results: dict[str, dict], study: StudyDir, margin: float, alpha: float, seeds: list[int]
) -> None:
    records = [r for pair, res in results.items() for r in point_records(pair, res)]
    atomic_write_csv(
        study.frontier("csv"), records, list(dict.fromkeys(k for r in records for k in r))
    )
    point_cols = [
        "point",
        "family",
        "knob",
        "n",
        "test_acc_%",
        "acc_ci95_%",
        "GFLOPs",
        "epochs",
        "front_flops",
        "front_epochs",
    ]
    flow_cols = [
        "point",
        "cheapest_as_accurate",
        "Δacc_pp (it − flow)",
        "flops_flow/it",
        "p_adj_noninferior",
        "p_adj_cheaper",
        "most_accurate_no_costlier",
        "Δacc_pp (that − flow)",
        "p_adj_superior",
        "dominated",
    ]
    parts = [
        f"Accuracy-cost frontier: seeds {seeds}, margin δ = {100 * margin:.1f} pp, α = {alpha}. "
        "Test accuracy: mean and 95% t CI over seeds. Cost: FLOPs of training plus the monitoring "
        "and validation each rule needs (and the flow reference), and epochs, summed over levels. "
        "A point is on a front when no other point is at least as accurate at no higher mean cost "
        "(better in one). A flow point is dominated when the cheapest simple-rule point that is as "
        "accurate (paired mean) is non-inferior at δ and significantly cheaper in FLOPs, or when "
        "the most accurate simple-rule point that costs no more is significantly more accurate "
        "(paired one-sided t-tests, Holm over the pair's flow points for each test).\n"
    ]
    for pair, res in results.items():
        rows = point_rows(pair, res)
        on_front = [r["point"] for r in rows if r["rule"] == "flow" and r["front_flops"]]
        undominated = [r["point"] for r in rows if r.get("dominated") == "no"]
        parts += [
            f"## {pair}\n",
            f"Flow points on the FLOPs front: {', '.join(on_front) or 'none'}. "
            f"Flow points not dominated: {', '.join(undominated) or 'none'}.\n",
            tabulate(
                [{k: r.get(k, "") for k in point_cols} for r in rows],
                headers="keys",
                tablefmt="github",
                disable_numparse=True,
            )
            + "\n",
            tabulate(
                [{k: r[k] for k in flow_cols} for r in rows if r["rule"] == "flow"],
                headers="keys",
                tablefmt="github",
                disable_numparse=True,
            )
            + "\n",
        ]
    atomic_write_text(study.frontier("md"), "\n".join(parts))


# ---------------------------------------------------------------- figures
def write_figures(results: dict[str, dict], study: StudyDir) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from infcop.study.figures import (
        coincidence_note,
        coinciding,
        family_styles,
        layout_with_notes,
        legend_beside,
        plain_log_axis,
        save_figure,
    )

    written = []
    right = 0.78  # the legend's column: family names are long
    for pair, res in results.items():
        points = res["points"]
        families = list(dict.fromkeys(p.family for p in points))
        styles = family_styles(families, {p.family: p.flow for p in points})
        fig, axes = plt.subplots(1, 2, figsize=(17, 6))
        notes = {}
        for ax, cost, scale, label in (
            (axes[0], "flops", 1e9, "total GFLOPs (train + monitoring + validation it needs)"),
            (axes[1], "epochs", 1.0, "total retraining epochs"),
        ):
            for family in families:
                members = sorted(
                    (p for p in points if p.family == family), key=lambda p: p.mean(cost)
                )
                x = np.array([p.mean(cost) / scale for p in members])
                y = np.array([100 * p.mean("acc") for p in members])
                ci = np.clip(
                    np.array([p.acc_ci() for p in members]) * 100, 0.0, 100.0
                )  # a CI cannot pass 100 %
                err = np.nan_to_num(np.abs(ci.T - y), nan=0.0) if len(members) else None
                ax.errorbar(x, y, yerr=err, capsize=2, ms=6, label=family, **styles[family])
                for p, xi, yi in zip(members, x, y):
                    ax.annotate(
                        p.knob.split("=")[-1],
                        (xi, yi),
                        textcoords="offset points",
                        xytext=(3, 3),
                        fontsize=6,
                    )
            at = {
                p.name: (np.array([p.mean(cost) / scale]), np.array([100 * p.mean("acc")]))
                for p in points
            }
            groups = coinciding(at)
            for g in (
                groups
            ):  # equal points: the later ones ringed in their family's colour, and named below
                for name in g[1:]:
                    fam = next(p.family for p in points if p.name == name)
                    ax.scatter(
                        *at[name],
                        s=90 + 40 * g.index(name),
                        facecolors="none",
                        edgecolors=[styles[fam]["color"]],
                        lw=1.2,
                    )
            notes[ax] = coincidence_note(groups)
            front = [
                (p.mean(cost) / scale, 100 * p.mean("acc"))
                for p, on in zip(points, res["front"][cost])
                if on
            ]
            front.sort()
            if front:
                fx, fy = zip(*front)
                ax.step(
                    fx, fy, where="post", color="black", lw=1.2, alpha=0.6, label="Pareto front"
                )
                ax.scatter(fx, fy, s=160, facecolors="none", edgecolors="black", lw=1.2)
            ax.set(xscale="log", xlabel=label, ylabel="final test accuracy (%, mean, 95% CI)")
            plain_log_axis(ax.xaxis)  # 2, 5, 10, 20 epochs: whole numbers
        axes[0].set_title("accuracy vs FLOPs (front circled)")
        axes[1].set_title("accuracy vs epochs (front circled)")
        legend_beside(fig, axes[1], right)
        fig.suptitle(
            f"{pair}: stopping rules swept over their knobs (labels: knob value; rings: "
            "equal points)"
        )
        layout_with_notes(fig, {ax.get_title(): note for ax, note in notes.items()}, right=right)
        written += save_figure(fig, lambda ext: study.frontier_figure(pair, ext))
    return written


# ---------------------------------------------------------------- entry point
def frontier(pair_cfgs: dict[str, Config]) -> tuple[dict[str, dict], StudyDir]:
    from infcop.study.analysis import load_records

    cfg = next(iter(pair_cfgs.values()))
    results = {
        pair: pair_frontier(points_of(rec.runs), cfg.study.margin, cfg.study.alpha)
        for pair, rec in load_records(pair_cfgs).items()
    }
    return results, study_dir(cfg.experiment.results_dir, cfg.experiment.name)


def write_frontier(pair_cfgs: dict[str, Config]) -> list[Path]:
    cfg = next(iter(pair_cfgs.values()))
    results, study = frontier(pair_cfgs)
    write_tables(results, study, cfg.study.margin, cfg.study.alpha, list(cfg.experiment.seeds))
    from infcop.study.heldout import write_budget_tables  # it builds on this module

    against_budgets = write_budget_tables(
        results, study, cfg.study.margin, cfg.study.alpha, list(cfg.experiment.seeds)
    )
    return [
        study.frontier("md"),
        study.frontier("csv"),
        *against_budgets,
        *write_figures(results, study),
    ]


def main(argv: list[str] | None = None) -> int:
    from infcop.engine.spec import study_configs

    parser = argparse.ArgumentParser(
        description="accuracy-cost frontier of a study's stopping rules"
    )
    parser.add_argument(
        "--config", required=True, help="the study config (results/<study>/config.yaml)"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    try:
        written = write_frontier(study_configs(read_yaml(args.config), args.overrides))
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
