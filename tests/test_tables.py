"""stats.json assembly (pairing by seed, Holm families) and its rendering as tables, on
hand-made inputs."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from infcop.core.costs import Costs
from infcop.foundations.paths import StudyDir
from infcop.engine.records import LevelRow, RunRecord
from infcop.study.analysis import adjust_family, compare
from infcop.study.tables import diagnostic_rows, write_tables

PAIR = "digits/lenet_300_100"


def run(
    method: str, seed: int, test_acc: float, epochs: int, status: str = "complete"
) -> RunRecord:
    """A one-level run: flops and seconds are fixed multiples of its epochs."""
    level = LevelRow(
        level=1,
        density=0.2,
        val_acc=test_acc,
        test_acc=test_acc,
        costs=Costs(epochs=epochs, train_flops=1e9 * epochs, train_seconds=2.0 * epochs),
        stop_reason="accuracy",
        measurements={},
        stopper={},
        lr_start=0.1,
    )
    return RunRecord(
        method=method,
        base_method=method,
        role="infcop" if method == "infcop" else "baseline",
        schedule="geometric",
        dataset="digits",
        model="lenet_300_100",
        seed=seed,
        config_hash="c",
        dense_config_hash="d",
        status=status,
        diagnostic=False,
        method_params={},
        config={},
        provenance={},
        started="",
        finished="",
        wall_seconds=1.0,
        dense={},
        flow_reference=None,
        levels=[level],
    )


def test_compare_pairs_by_seed_and_drops_unpaired_seeds_from_both_sides():
    # seed 0 only for InfCoP, seed 6 only for the competitor, and seed 5 diverged for the
    # competitor: their values are extreme, so any of them leaking in would move every number below
    infcop = {
        s: run("infcop", s, acc, ep)
        for s, acc, ep in [
            (0, 0.10, 1),
            (1, 0.91, 10),
            (2, 0.93, 12),
            (3, 0.90, 8),
            (4, 0.92, 10),
            (5, 0.95, 9),
        ]
    }
    comp = {
        s: run("lth", s, acc, ep)
        for s, acc, ep in [
            (1, 0.92, 30),
            (2, 0.925, 24),
            (3, 0.905, 20),
            (4, 0.90, 40),
            (6, 0.99, 1000),
        ]
    }
    comp[5] = run("lth", 5, 0.20, 500, status="diverged")
    r = compare(infcop, comp, margin=0.01, n_boot=500)

    assert r["seeds"] == [1, 2, 3, 4]
    a, b = [0.91, 0.93, 0.90, 0.92], [0.92, 0.925, 0.905, 0.90]
    acc = r["accuracy"]
    assert acc["n"] == 4 and acc["mean_diff"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert acc["p_two_sided"] == pytest.approx(st.ttest_rel(a, b).pvalue)
    ratios = np.array([30 / 10, 24 / 12, 20 / 8, 40 / 10])
    for cost in ("epochs", "flops", "wall"):
        sp = r["speedup"][cost]
        assert sp["n"] == 4 and sp["geomean"] == pytest.approx(st.gmean(ratios))
        assert sp["p_ttest"] == pytest.approx(
            st.ttest_1samp(np.log(ratios), 0, alternative="greater").pvalue
        )
    assert r["density_infcop"] == pytest.approx(0.2) and r["density_competitor"] == pytest.approx(
        0.2
    )


def family_row(
    p_two: float | None, p_ni: float | None, p_t: dict[str, float | None], p_w: float
) -> dict:
    return {
        "accuracy": {"p_two_sided": p_two, "p_noninferior": p_ni},
        "speedup": {k: {"p_ttest": p, "p_wilcoxon": p_w} for k, p in p_t.items()},
    }


def test_adjust_family_runs_holm_separately_for_each_test():
    rows = [
        family_row(0.5, 0.01, {"epochs": 0.001, "flops": 0.01, "wall": None}, 1 / 32),
        family_row(None, 0.04, {"epochs": 0.002, "flops": 0.01, "wall": 0.3}, 1 / 32),
        family_row(0.02, 0.03, {"epochs": 0.003, "flops": 0.5, "wall": 0.2}, 1 / 32),
    ]
    adjust_family(rows, alpha=0.05)
    expected = {
        # m = 2: 2 x 0.02 = 0.04, max(0.04, 1 x 0.5) = 0.5
        ("accuracy", "p_two_sided"): [0.5, None, 0.04],
        # m = 3: 3 x 0.01 = 0.03, max(0.03, 2 x 0.03) = 0.06, max(0.06, 1 x 0.04) = 0.06
        ("accuracy", "p_noninferior"): [0.03, 0.06, 0.06],
        # 3 x 0.001 = 0.003, 2 x 0.002 = 0.004, max(0.004, 0.003) = 0.004
        ("epochs", "p_ttest"): [0.003, 0.004, 0.004],
        # ties: 3 x 0.01 = 0.03, max(0.03, 2 x 0.01) = 0.03, 0.5
        ("flops", "p_ttest"): [0.03, 0.03, 0.5],
        # m = 2: 2 x 0.2 = 0.4, max(0.4, 0.3) = 0.4
        ("wall", "p_ttest"): [None, 0.4, 0.4],
        # three ties at 1/32: 3/32 throughout
        ("epochs", "p_wilcoxon"): [3 / 32] * 3,
    }
    for (test, key), want in expected.items():
        got = [
            (r["accuracy"] if test == "accuracy" else r["speedup"][test])[f"{key}_adj"]
            for r in rows
        ]
        assert got == pytest.approx(want), (test, key)
    assert [r["noninferior"] for r in rows] == [True, False, False]


def test_adjust_family_keeps_an_exactly_decided_comparison_in_the_family():
    no_cost_test = dict.fromkeys(("epochs", "flops", "wall"))
    rows = [
        family_row(p_two, p_ni, no_cost_test, 1.0)
        for p_two, p_ni in [(0.0, 0.0), (0.01, 0.02), (0.5, None)]
    ]
    adjust_family(rows, alpha=0.05)
    # p_noninferior present: 0.0, 0.02 (m = 2) -> 0.0, 0.02
    assert [r["accuracy"]["p_noninferior_adj"] for r in rows] == pytest.approx([0.0, 0.02, None])
    assert [r["noninferior"] for r in rows] == [True, True, None]


def method_stats(
    role: str, acc: float, delta: float, p_adj: float | None, verdict: bool | None
) -> dict:
    return {
        "role": role,
        "schedule": "geometric",
        "n": 5,
        "n_diverged": 0,
        "final_density": 0.2,
        "test_acc_mean": acc,
        "test_acc_sd": 0.0034,
        "delta_vs_dense": {
            "mean_diff": delta,
            "ci_low": delta - 0.004,
            "ci_high": delta + 0.004,
            "p_noninferior_adj": p_adj,
        },
        "noninferior_to_dense": verdict,
        "total_epochs_mean": 42.0,
        "total_flops_mean": 3.5e9,
        "total_wall_mean": 12.345,
        "stop_share": {"accuracy": 0.25, "flow": 0.75},
    }


def hand_made_stats() -> dict:
    speedup = {
        "epochs": {
            "geomean": 2.0,
            "ci_low": 1.5,
            "ci_high": 2.5,
            "p_ttest_adj": 0.0004,
            "wilcoxon_min_p": 1 / 32,
            "note": "",
        },
        "flops": {
            "geomean": 1.8,
            "ci_low": 1.25,
            "ci_high": 2.75,
            "p_ttest_adj": 0.0123,
            "wilcoxon_min_p": 0.125,
            "note": "",
        },
        "wall": {
            "geomean": 1.234,
            "ci_low": None,
            "ci_high": None,
            "p_ttest_adj": None,
            "wilcoxon_min_p": None,
            "note": "n=2 < 3: no test",
        },
    }
    comparison = {
        "infcop": "infcop",
        "competitor": "lth",
        "role": "baseline",
        "ablation": False,
        "noninferior": True,
        "accuracy": {
            "n": 5,
            "mean_diff": -0.0042,
            "ci_low": -0.01,
            "ci_high": 0.0016,
            "p_noninferior_adj": 0.0123,
        },
        "speedup": speedup,
    }
    diagnostics = {
        "levels": 4,
        "oracle_found_share": 0.75,
        "method": {
            "fired_share": 1.0,
            "mean_epoch": 6.5,
            "mean_lag_vs_oracle": 1.5,
            "early_share": 0.0,
        },
        "criteria": {
            "information_flow": {
                "0.01": {
                    "fired_share": 0.5,
                    "mean_epoch": 4.0,
                    "mean_lag_vs_oracle": -0.25,
                    "early_share": 0.5,
                }
            }
        },
    }
    return {
        "experiment": "tiny",
        "seeds": [0, 1, 2, 3, 4],
        "margin": 0.01,
        "alpha": 0.05,
        "methods": [],
        "pairs": {
            PAIR: {
                "dense": {"test_acc_mean": 0.9554, "test_acc_sd": 0.0021, "n": 5},
                "methods": {
                    "infcop": method_stats("infcop", 0.9512, -0.0042, 0.0123, True),
                    "lth": method_stats("baseline", 0.9554, 0.0, None, None),
                    "random_pruning": method_stats("baseline", 0.9, -0.0554, 0.9, False),
                },
                "comparisons": [comparison],
                "uncompared": {
                    "random_pruning": "no InfCoP variant of the study prunes on its "
                    "schedule (random)"
                },
                "diagnostics": {"infcop": diagnostics},
            }
        },
    }


def test_tables_render_the_hand_made_stats(tmp_path):
    write_tables(hand_made_stats(), StudyDir(tmp_path))

    comps = pd.read_csv(tmp_path / "comparisons.csv")
    (row,) = comps.to_dict("records")
    assert (row["pair"], row["infcop"], row["vs"], row["n"], row["ablation"]) == (
        PAIR,
        "infcop",
        "lth",
        5,
        "no",
    )
    assert (row["Δacc_pp"], row["Δacc_pp_ci_low"], row["Δacc_pp_ci_high"]) == pytest.approx(
        (-0.42, -1.0, 0.16)
    )
    assert row["noninferior"] == "yes" and row["p_noninferior_adj"] == pytest.approx(0.0123)
    assert (row["speedup_epochs"], row["speedup_epochs_ci_low"], row["speedup_epochs_ci_high"]) == (
        2.0,
        1.5,
        2.5,
    )
    assert (
        row["p_adj_epochs"] == pytest.approx(0.0004)
        and row["wilcoxon_reaches_alpha_epochs"] == "yes"
    )
    # 2^-3 > α: the Wilcoxon check cannot reach significance at this n (the markdown's †)
    assert (
        row["p_adj_flops"] == pytest.approx(0.0123) and row["wilcoxon_reaches_alpha_flops"] == "no"
    )
    assert row["speedup_wall"] == pytest.approx(1.234) and np.isnan(row["speedup_wall_ci_low"])
    assert np.isnan(row["p_adj_wall"]) and row["note_wall"] == "n=2 < 3: no test"
    numeric = [c for c in comps.columns if c.startswith(("Δacc", "speedup_", "p_")) or c == "n"]
    assert all(pd.api.types.is_numeric_dtype(comps[c]) for c in numeric), comps.dtypes

    summary = pd.read_csv(tmp_path / "summary.csv").set_index("method")
    assert (
        summary.loc["dense", "test_acc_%"] == pytest.approx(95.54)
        and summary.loc["dense", "density"] == 1.0
    )
    assert summary.loc["dense", "test_acc_sd_%"] == pytest.approx(0.21) and np.isnan(
        summary.loc["dense", "epochs"]
    )
    inf = summary.loc["infcop"]
    assert (inf["test_acc_%"], inf["test_acc_sd_%"]) == pytest.approx((95.12, 0.34))
    assert (
        inf["Δ_vs_dense_pp"],
        inf["Δ_vs_dense_pp_ci_low"],
        inf["Δ_vs_dense_pp_ci_high"],
    ) == pytest.approx((-0.42, -0.82, -0.02))
    assert inf["noninferior_to_dense"] == "yes" and inf["p_noninferior_adj"] == pytest.approx(
        0.0123
    )
    assert pd.isna(summary.loc["lth", "noninferior_to_dense"])
    assert summary.loc["random_pruning", "noninferior_to_dense"] == "no"
    assert (inf["epochs"], inf["GFLOPs"], inf["seconds"]) == pytest.approx((42.0, 3.5, 12.345))
    assert (inf["stop_accuracy_%"], inf["stop_flow_%"], inf["diverged"]) == (25.0, 75.0, 0)
    text = [c for c in ("pair", "role", "noninferior_to_dense")]
    assert all(
        pd.api.types.is_numeric_dtype(summary[c]) for c in summary.columns if c not in text
    ), summary.dtypes

    md = (tmp_path / "summary.md").read_text()
    assert "2.00× [1.50, 2.50]" in md and "-0.42 [-1.00, 0.16]" in md and "95.1 ± 0.3" in md
    notes = md.split("Not in any comparison:", 1)[1]
    assert (
        f"- {PAIR}: `random_pruning`: no InfCoP variant of the study prunes on its "
        "schedule (random)" in notes
    )
    assert "`lth`" not in notes and "`infcop`" not in notes
    assert "non-inferiority margin 1.0 pp, α = 0.05" in md

    ablation = (tmp_path / "ablation.md").read_text()
    assert "(no rows)" in ablation  # lth is no ablation
    assert "method's own rule" in ablation and "IF ε=0.01" in ablation
    lags = {r["criterion"]: r["lag_vs_oracle"] for r in diagnostic_rows(hand_made_stats())}
    assert lags == {"method's own rule": "+1.50", "IF ε=0.01": "-0.25"}
    assert (tmp_path / "summary.tex").read_text().startswith("\\begin{table}")


def test_tables_without_uncompared_methods_have_no_note(tmp_path):
    stats = hand_made_stats()
    stats["pairs"][PAIR]["uncompared"] = {}
    write_tables(stats, StudyDir(tmp_path))
    assert "Not in any comparison" not in (tmp_path / "summary.md").read_text()


def test_frontier_csv_loads_as_numbers(tmp_path):
    from infcop.foundations.paths import study_dir
    from infcop.study.frontier import Point, pair_frontier
    from infcop.study.frontier import write_tables as write_frontier_tables

    def point(name, accs, flops, flow):
        return Point(
            name,
            "flow" if flow else "simple",
            "",
            flow,
            dict(enumerate(accs)),
            dict(enumerate(flops)),
            dict(enumerate(flops)),
        )

    points = [
        point("s", [0.95, 0.96, 0.97], [5.0, 5.5, 5.2], False),
        point("f", [0.90, 0.92, 0.91], [9.0, 10.0, 11.0], True),
    ]
    study = study_dir(tmp_path, "f")
    write_frontier_tables({PAIR: pair_frontier(points, 0.01, 0.05)}, study, 0.01, 0.05, [0, 1, 2])
    table = pd.read_csv(study.frontier("csv")).set_index("point")
    acc = np.array([0.90, 0.92, 0.91]) * 100
    half = st.t.ppf(0.975, 2) * acc.std(ddof=1) / np.sqrt(3)
    assert table.loc["f", "test_acc_%"] == pytest.approx(acc.mean())
    assert (table.loc["f", "acc_ci95_low_%"], table.loc["f", "acc_ci95_high_%"]) == pytest.approx(
        (acc.mean() - half, acc.mean() + half)
    )
    assert (
        table.loc["f", "GFLOPs"] == pytest.approx(1e-8)
        and table.loc["f", "cheapest_as_accurate"] == "s"
    )
    assert table.loc["f", "Δacc_pp (it − flow)"] == pytest.approx(5.0)
    numeric = [
        "n",
        "test_acc_%",
        "acc_ci95_low_%",
        "acc_ci95_high_%",
        "GFLOPs",
        "epochs",
        "Δacc_pp (it − flow)",
        "Δacc_pp_ci_low",
        "Δacc_pp_ci_high",
        "flops_flow/it",
        "flops_flow/it_ci_low",
        "flops_flow/it_ci_high",
        "p_adj_noninferior",
        "p_adj_cheaper",
        "Δacc_pp (that − flow)",
        "p_adj_superior",
    ]
    assert all(pd.api.types.is_numeric_dtype(table[c]) for c in numeric), table.dtypes
