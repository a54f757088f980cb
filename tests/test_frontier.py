"""The frontier study: its variant knobs, threshold grids, Pareto front, dominance
tests and figures."""

import csv
import math

import numpy as np
import pytest
from scipy import stats as st

from infcop.foundations.config import Config, ConfigError, parse_config
from infcop.core.costs import Costs
from infcop.criteria.accuracy import AccuracyTarget
from infcop.engine.imp import run_imp
from infcop.methods import BuildContext, get_method
from infcop.foundations.paths import study_dir
from infcop.engine.records import LevelRow, RunRecord
from infcop.engine.spec import RunSpec, resolve_variant, run_hash
from infcop.study.frontier import (
    Point,
    describe,
    pair_frontier,
    pareto_front,
    points_of,
    write_figures,
    write_tables,
)
from infcop.study.grids import FAMILIES, DiagnosticRun, derive, level_extremes, method_entries


# ---------------------------------------------------------------- variant knobs
def test_new_knobs_keep_existing_hashes():
    """Run ids computed before τ, epochs, epsilon_mode and aggregation became parameters."""
    expected = {
        "acc_target": "8aaff4329b06",
        "fixed_same_reset": "16ac14def887",
        "infcop_if": "fc80bc641b4f",
        "infcop_gf": "7d61be837794",
        "infcop_if_pq": "c3da20592c64",
        "infcop_gf_init": "c7990d4286fd",
    }
    assert {m: run_hash(Config(), m) for m in expected} == expected
    same = parse_config(
        {
            "study": {
                "methods": [{"name": "tau0", "method": "acc_target", "params": {"tolerance": 0.0}}]
            }
        }
    )
    assert run_hash(same, "tau0") == expected["acc_target"]


def test_stopping_parameters_replace_the_run_config_and_enter_the_hash():
    cfg = parse_config(
        {
            "study": {
                "methods": [
                    {
                        "name": "v",
                        "method": "infcop_if",
                        "params": {"aggregation": "absolute", "epsilon_mode": "relative"},
                    }
                ]
            }
        }
    )
    spec = RunSpec.of(cfg, "v", 0)
    assert (spec.cfg.stopping.aggregation, spec.cfg.stopping.epsilon_mode) == (
        "absolute",
        "relative",
    )
    assert cfg.stopping.aggregation == "signed" and spec.hash != run_hash(cfg, "infcop_if")
    with pytest.raises(ConfigError, match="aggregation"):
        resolve_variant(
            parse_config(
                {
                    "study": {
                        "methods": [
                            {"name": "v", "method": "infcop_if", "params": {"aggregation": "mean"}}
                        ]
                    }
                }
            ),
            "v",
        )


def test_accuracy_tolerance_lowers_the_target():
    rule = AccuracyTarget(0.05)

    class Ctx:
        target_val_acc = 0.9

    rule.begin_level(Ctx())
    assert rule.threshold == pytest.approx(0.85) and rule.fires(0.86) and not rule.fires(0.84)


def test_fixed_epochs_parameter_and_its_limit(make_cfg):
    cfg = make_cfg()  # 3 epochs, rewind to 1 epoch: 2 left of the cosine schedule
    ctx = BuildContext(cfg, steps_per_epoch=10, rewind_step=10, output_layer="fc3")
    method = get_method("fixed_same_reset")
    assert method.build(ctx, method.params(epochs=1)).stopper.cap == 1
    assert method.build(ctx, method.params()).stopper.cap == 2
    with pytest.raises(ConfigError, match="epochs"):
        method.build(ctx, method.params(epochs=3))


def test_relative_absolute_aggregation_variant_reaches_reference_and_threshold(make_cfg):
    cfg = make_cfg(
        "pruning.levels=1",
        "training.epochs=2",
        "study.methods=[{name: v, method: infcop_if, params: {aggregation: absolute, "
        "epsilon_mode: relative, epsilon: 3.0}}]",
    )
    rec = run_imp(cfg, "v", 0)
    assert (
        rec.config["stopping"]["aggregation"] == "absolute"
        and rec.config["stopping"]["epsilon_mode"] == "relative"
    )
    floor = rec.flow_reference["information_noise_floor"]
    (criterion,) = [c for c in rec.levels[0].stopper["criteria"] if c["key"] == "if_distance"]
    assert criterion["threshold"] == pytest.approx(3.0 * floor)
    assert describe(rec) == ("infcop_if aggregation=absolute, epsilon_mode=relative", "epsilon=3")


# ---------------------------------------------------------------- grids
def _run(levels, seed=0, aggregation="signed", floor=0.01):
    return DiagnosticRun(
        "a/b", seed, aggregation, None, {"if_distance": floor, "gf_distance": 1.0}, levels
    )


LEVELS = [
    {"if_distance": [0.5, 0.2, 0.1], "val_gap": [0.1, 0.0, -0.01]},
    {"if_distance": [0.05, 0.02, 0.004], "val_gap": [0.3, 0.2, 0.1]},
]


def test_grid_spans_epoch_one_to_never():
    fams = {f.name: f for f in FAMILIES}
    grids = derive([_run(LEVELS)], low=0.0, high=1.0)
    # level minima 0.1, 0.004; epoch-1 values 0.5, 0.05: geometric 0.004 .. 0.5 in
    # 4 points is x5 apart
    assert grids["if_signed_abs"]["grid"] == [0.004, 0.02, 0.1, 0.5]
    assert grids["if_signed_rel"]["grid"] == [0.4, 2.0, 10.0, 50.0]  # / noise floor 0.01
    assert grids["if_absagg_abs"]["grid"] == []  # no run measured absolute aggregation
    # τ: 0, then geometric from 0.3 / 20 to the largest epoch-1 gap 0.3
    assert grids["acc_tau"]["grid"] == [0.0, 0.015, 0.067, 0.3]
    assert (
        len(level_extremes(fams["if_signed_abs"], [_run(LEVELS), _run(LEVELS)])["a/b"][0]) == 2
    )  # same seed once
    assert (
        len(level_extremes(fams["if_signed_abs"], [_run(LEVELS), _run(LEVELS, seed=1)])["a/b"][0])
        == 4
    )
    names = [e["name"] for e in method_entries(grids)]
    assert "acc_target" in names and "if_signed_rel_2" in names and len(names) == len(set(names))


# ---------------------------------------------------------------- front and dominance
def test_pareto_front():
    costs = [5.0, 19.0, 10.0, 6.0, 25.0, 6.0, math.nan]
    accs = [0.85, 0.96, 0.81, 0.9767, 0.90, 0.9767, 0.99]
    # 6.0/0.9767 twice: neither beats the other, both on the front; NaN never
    assert pareto_front(costs, accs) == [True, False, False, True, False, True, False]


def _point(name, acc, flops, flow):
    return Point(
        name,
        "f" if flow else "s",
        "",
        flow,
        dict(enumerate(acc)),
        dict(enumerate(flops)),
        dict(enumerate(flops)),
    )


def _scenario():
    return [
        _point("s_cheap", [0.85, 0.86, 0.84], [5.0, 5.5, 5.2], False),
        _point("s_exp", [0.95, 0.96, 0.97], [18.0, 19.0, 20.0], False),
        _point("F", [0.80, 0.82, 0.81], [10.0, 10.0, 10.0], True),
        _point("G", [0.97, 0.975, 0.985], [6.0, 6.0, 6.0], True),
        _point("H", [0.90, 0.91, 0.89], [25.0, 25.0, 25.0], True),
    ]


def _holm(ps):
    order = np.argsort(ps)
    out, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        out[i] = running
    return out


def test_dominance_against_independent_tests():
    pts = _scenario()
    res = pair_frontier(pts, margin=0.01, alpha=0.05)
    rows = {r["point"]: r for r in res["flow"]}
    assert res["front"]["flops"] == [True, False, False, True, False]
    assert (rows["F"]["as_accurate"], rows["F"]["no_costlier"]) == ("s_cheap", "s_cheap")
    assert (rows["G"]["as_accurate"], rows["G"]["no_costlier"]) == (None, "s_cheap")
    assert (rows["H"]["as_accurate"], rows["H"]["no_costlier"]) == ("s_exp", "s_exp")
    acc = {p.name: np.array(list(p.acc.values())) for p in pts}
    flops = {p.name: np.array(list(p.flops.values())) for p in pts}
    ni = {
        "F": st.ttest_1samp(acc["s_cheap"] - acc["F"] + 0.01, 0, alternative="greater").pvalue,
        "H": st.ttest_1samp(acc["s_exp"] - acc["H"] + 0.01, 0, alternative="greater").pvalue,
    }
    cheaper = {
        "F": st.ttest_1samp(np.log(flops["F"] / flops["s_cheap"]), 0, alternative="greater").pvalue,
        "H": st.ttest_1samp(np.log(flops["H"] / flops["s_exp"]), 0, alternative="greater").pvalue,
    }
    sup = {
        f: st.ttest_1samp(acc[s] - acc[f], 0, alternative="greater").pvalue
        for f, s in (("F", "s_cheap"), ("G", "s_cheap"), ("H", "s_exp"))
    }
    for key, raw in (("p_noninferior", ni), ("p_cheaper", cheaper), ("p_superior", sup)):
        names = sorted(raw)
        expected = dict(zip(names, _holm([raw[n] for n in names])))
        for n in ("F", "G", "H"):
            assert rows[n][f"{key}_adj"] == (pytest.approx(expected[n]) if n in expected else None)
    assert rows["F"]["d_acc"] == pytest.approx(0.04) and rows["F"]["flops_ratio"] == pytest.approx(
        math.exp(np.mean(np.log(flops["F"] / flops["s_cheap"])))
    )
    assert [rows[n]["dominated"] for n in ("F", "G", "H")] == [True, False, True]


def test_frontier_outputs(tmp_path):
    study = study_dir(tmp_path, "f")
    results = {"a/b": pair_frontier(_scenario(), 0.01, 0.05)}
    write_tables(results, study, 0.01, 0.05, [0, 1, 2])
    with open(study.frontier("csv")) as f:
        rows = {r["point"]: r for r in csv.DictReader(f)}
    assert [rows[n]["front_flops"] for n in ("s_cheap", "s_exp", "F", "G", "H")] == [
        "yes",
        "",
        "",
        "yes",
        "",
    ]
    assert [rows[n]["dominated"] for n in ("F", "G", "H")] == ["yes", "no", "yes"]
    assert "Flow points on the FLOPs front: G." in study.frontier("md").read_text()
    assert all(p.stat().st_size > 0 for p in write_figures(results, study))


def test_points_from_records():
    def rec(method, base, role, params, seed, acc, flops):
        lv = LevelRow(
            1,
            0.8,
            acc,
            acc,
            Costs(epochs=2, train_flops=flops, monitor_flops=1.0),
            "cap",
            {},
            {"cap": 5},
            0.1,
        )
        return RunRecord(
            method,
            base,
            role,
            "",
            "d",
            "m",
            seed,
            "h",
            "dh",
            "complete",
            False,
            params,
            {"stopping": {"epsilon_mode": "absolute"}},
            {},
            "",
            "",
            0.0,
            {},
            None,
            [lv],
        )

    runs = {
        "T2": {
            s: rec("T2", "fixed_same_reset", "ablation", {"epochs": 2}, s, 0.9, 10.0)
            for s in (0, 1)
        },
        "g": {
            0: rec("g", "infcop_gf", "infcop", {"epsilon": 0.5, "epsilon_mode": None}, 0, 0.7, 3.0)
        },
    }
    (t2, g) = points_of(runs)
    assert (t2.family, t2.knob, t2.flow, t2.flops, t2.epochs) == (
        "fixed_same_reset",
        "epochs=2",
        False,
        {0: 11.0, 1: 11.0},
        {0: 2.0, 1: 2.0},
    )
    assert (g.family, g.knob, g.flow) == ("infcop_gf epsilon_mode=absolute", "epsilon=0.5", True)


# ---------------------------------------------------------------- figures
def test_coinciding_series_are_detected_and_noted():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from infcop.study.figures import _draw, coinciding, method_styles

    x = np.array([1.0, 0.8, 0.64])
    series = {
        "infcop_if": (x, np.array([1.0, 2.0, 3.0])),
        "infcop_gf": (x, np.array([1.0, 2.0, 3.0])),
        "lth": (x, np.array([6.0, 12.0, 18.0])),
        "random": (x, np.array([6.0, 12.0, 18.0])),
        "acc_target": (x, np.array([6.0, 12.0, 18.5])),
        "short": (x[:2], np.array([1.0, 2.0])),
    }
    assert coinciding(series) == [["infcop_if", "infcop_gf"], ["lth", "random"]]
    family = {m: m for m in series}
    roles = dict.fromkeys(series, "competitor")
    styles = method_styles(list(series), family, roles)
    assert len({(s["color"], s["marker"]) for s in styles.values()}) == len(series)
    fig, ax = plt.subplots()
    note = _draw(ax, series, styles)
    assert note == "coincide: infcop_if = infcop_gf; coincide: lth = random"
    hollow = [line.get_label() for line in ax.lines if line.get_markerfacecolor() == "none"]
    assert hollow == ["infcop_gf", "random"]
    plt.close(fig)
    variants = method_styles(
        ["a", "b"], {"a": "infcop_if", "b": "infcop_if"}, {"a": "infcop", "b": "infcop"}
    )
    assert variants["a"]["marker"] == variants["b"]["marker"]
    assert (variants["a"]["color"], variants["a"]["ls"]) != (
        variants["b"]["color"],
        variants["b"]["ls"],
    )


# ---------------------------------------------------------------- against budgeted retraining
BASE_ACC = [0.90, 0.91, 0.92]
FAMILY = {
    "f1": "f",
    "f2": "f",
    "k1": "budgeted form=linear",
    "k2": "budgeted form=linear",
    "fixed_same_reset": "fixed_same_reset",
}
FLOPS = {"f1": 3.0, "f2": 6.0, "k1": 2.0, "k2": 4.0, "fixed_same_reset": 10.0}
# which points lose 3 pp (inferior beyond δ = 1 pp) on which pair; the others lose 0.5 pp in every
# seed, so every test is decided exactly (p = 0 or 1) and the expectations below follow by hand
INFERIOR = {"a": {"k1"}, "b": set(), "c": {"f1"}}


def _budget_scenario():
    out = {}
    for pair, bad in INFERIOR.items():
        pts = []
        for name, family in FAMILY.items():
            drop = 0.0 if name == "fixed_same_reset" else 0.03 if name in bad else 0.005
            pts.append(
                Point(
                    name,
                    family,
                    f"k={name}",
                    family == "f",
                    {s: a - drop for s, a in enumerate(BASE_ACC)},
                    dict.fromkeys(range(3), FLOPS[name]),
                    dict.fromkeys(range(3), FLOPS[name]),
                )
            )
        out[pair] = pts
    return out


def test_held_out_choice_is_the_cheapest_non_inferior_on_the_other_pairs_judged_alone():
    from infcop.study.heldout import held_out

    rows = {
        (r["held_out"], r["family"]): r
        for r in held_out(_budget_scenario(), margin=0.01, alpha=0.05)
    }
    budget = "budgeted form=linear"
    want = {
        ("a", "f"): ("f2", True),
        ("b", "f"): ("f2", True),
        ("c", "f"): ("f1", False),
        ("a", budget): ("k1", False),
        ("b", budget): ("k2", True),
        ("c", budget): ("k2", True),
        ("a", "fixed_same_reset"): ("fixed_same_reset", True),
    }
    assert {k: (rows[k]["chosen"], rows[k]["noninferior"]) for k in want} == want
    assert rows[("a", "f")]["flops_ratio"] == pytest.approx(0.6)
    assert rows[("c", "f")]["calibration_flops_ratio"] == pytest.approx(0.3)
    assert rows[("a", "f")]["tuning_flops"] == pytest.approx(
        2 * 3 * (3.0 + 6.0)
    )  # pairs b, c x seeds x points
    assert rows[("b", "f")]["vs_budgeted"] == "k2" and rows[("b", "f")][
        "vs_budgeted_d_acc"
    ] == pytest.approx(0.0)
    assert rows[("b", "f")]["vs_budgeted_flops_ratio"] == pytest.approx(6.0 / 4.0)


def test_cross_pair_summary_counts_a_failed_pair_at_one_plus_its_ratio():
    from infcop.study.heldout import held_out, rule_summary, tuned_summary

    rows = {r["point"]: r for r in rule_summary(_budget_scenario(), margin=0.01, alpha=0.05)}
    want = {
        "f1": (0.3 * 0.3 * 1.3) ** (1 / 3),
        "f2": 0.6,
        "k1": (1.2 * 0.2 * 0.2) ** (1 / 3),
        "k2": 0.4,
        "fixed_same_reset": 1.0,
    }
    assert {n: r["geomean_flops_ratio"] for n, r in rows.items()} == pytest.approx(want)
    assert (rows["f1"]["failed"], rows["f1"]["failed_pairs"], rows["k2"]["failed"]) == (1, ["c"], 0)
    ranked = [r["point"] for r in rule_summary(_budget_scenario(), 0.01, 0.05)]
    assert ranked == sorted(want, key=want.get)
    tuned = {r["family"]: r for r in tuned_summary(held_out(_budget_scenario(), 0.01, 0.05))}
    assert tuned["f"]["geomean_flops_ratio"] == pytest.approx((0.6 * 0.6 * 1.3) ** (1 / 3))
    assert tuned["budgeted form=linear"]["geomean_flops_ratio"] == pytest.approx(
        (1.2 * 0.4 * 0.4) ** (1 / 3)
    )


def test_flow_points_against_budgeted_points_and_the_written_tables(tmp_path):
    from infcop.study.heldout import versus_budgeted, write_budget_tables

    pts = _budget_scenario()["b"]
    rows = {r["point"]: r for r in versus_budgeted(pts, margin=0.01, alpha=0.05)}
    assert set(rows) == {"f1", "f2"}  # flow points only, against budgeted points only
    assert (
        rows["f1"]["as_accurate"] == "k1" and rows["f2"]["as_accurate"] == "k1"
    )  # cheapest as accurate
    study = study_dir(tmp_path, "f")
    results = {pair: {"points": p} for pair, p in _budget_scenario().items()}
    written = write_budget_tables(results, study, 0.01, 0.05, [0, 1, 2])
    assert all(p.stat().st_size > 0 for p in written)
    md = study.frontier_budgeted().read_text()
    assert (
        "## Held-out calibration (leave one pair out)" in md
        and "## Stopping rules across pairs" in md
    )
    with open(study.frontier_budgeted("heldout")) as f:
        assert len(list(csv.DictReader(f))) == 3 * 3  # held-out pairs x families
    # the CSVs hold numbers (the md holds the formatted text): pandas reads numeric columns
    import pandas as pd

    versus = pd.read_csv(study.frontier_budgeted("vs_budgeted")).set_index(["pair", "flow_point"])
    assert (
        versus["Δacc_pp (it − flow)"].dtype.kind == "f"
        and versus["flops_flow/it"].dtype.kind == "f"
    )
    f1 = rows["f1"]
    assert versus.loc[("b", "f1"), "Δacc_pp (it − flow)"] == pytest.approx(100 * f1["d_acc"])
    assert versus.loc[("b", "f1"), "flops_flow/it"] == pytest.approx(f1["flops_ratio"])
    heldout = pd.read_csv(study.frontier_budgeted("heldout"))
    assert {c for c in heldout if c.startswith(("Δacc", "flops", "p_adj", "tuning"))} <= set(
        heldout.select_dtypes("number")
    )
    ranked = pd.read_csv(study.frontier_budgeted("rules")).set_index("point")
    assert ranked.loc["k2", "geomean_flops_ratio"] == pytest.approx(0.4)
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))


def test_too_few_seeds_leave_the_summaries_undecided_not_failed():
    from infcop.study.heldout import held_out, rule_summary, tuned_summary

    two = {
        pair: [
            Point(
                p.name,
                p.family,
                p.knob,
                p.flow,
                {s: p.acc[s] for s in (0, 1)},
                {s: p.flops[s] for s in (0, 1)},
                {s: p.epochs[s] for s in (0, 1)},
            )
            for p in pts
        ]
        for pair, pts in _budget_scenario().items()
    }  # n = 2 < 3: no test anywhere
    rows = rule_summary(two, 0.01, 0.05)
    assert all(r["failed"] == 0 and math.isnan(r["geomean_flops_ratio"]) for r in rows)
    assert all(r["chosen"] is None for r in held_out(two, 0.01, 0.05))  # nothing shown non-inferior
    tuned = tuned_summary(held_out(two, 0.01, 0.05))
    assert all(r["geomean_flops_ratio"] == pytest.approx(1.0) for r in tuned)  # the baseline is run
