"""Render stats.json as tables: CSV, GitHub markdown (tabulate) and LaTeX (booktabs).

summary.*      one row per dataset x model x method
comparisons.*  one row per InfCoP variant x competitor: accuracy difference, non-inferiority,
               speedups
ablation.md    InfCoP against its ablations, plus each criterion's stopping lag from diagnostic runs

The markdown and LaTeX tables show formatted cells ("95.1 ± 0.3", "2.00× [1.50, 2.50]"); the CSVs
(and the W&B tables) hold the same quantities as plain numbers, one per column (CI bounds, n and
p values in columns of their own; an empty cell where there is no value), in the unit the column
name gives (`_%`: percent, `_pp`: percentage points, `speedup_*`: a ratio).
"""

from __future__ import annotations

from tabulate import tabulate

from infcop.criteria import CRITERIA
from infcop.foundations.paths import StudyDir
from infcop.foundations.storage import atomic_write_csv, atomic_write_text

NA = "–"


def _num(x: float | None, fmt: str = ".3f") -> str:
    return NA if x is None or x != x else format(x, fmt)


def _pct(x: float | None) -> str:
    return NA if x is None or x != x else f"{100 * x:.1f}"


def _p(p: float | None, note: str = "") -> str:
    if p is None:
        return f"n/a ({note})" if note else NA
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _raw(test: dict, alpha: float) -> str:
    """'; unadjusted 0.039' where the unadjusted p falls on the other side of α than p_adj."""
    p, adj = test.get("p_noninferior"), test.get("p_noninferior_adj")
    if p is None or adj is None or (p < alpha) == (adj < alpha):
        return ""
    return f"; unadjusted {_p(p)}"


def _seeds(test: dict, alpha: float) -> str:
    """For a test that did not reject at α: '; n→9', the seeds that would give it 80% power at the
    observed mean and sd (analysis.add_seeds_to_decide), or '; n→∞' where no number would."""
    p = test.get("p_noninferior_adj", test.get("p_ttest_adj"))
    if "seeds_to_decide" not in test or p is None or p < alpha:
        return ""
    n = test["seeds_to_decide"]
    return f"; n→{'∞' if n is None else n}"


def _ci(c: dict, scale: float = 1.0, fmt: str = ".2f") -> str:
    if c.get("ci_low") is None:
        return NA
    return f"[{c['ci_low'] * scale:{fmt}}, {c['ci_high'] * scale:{fmt}}]"


def summary_rows(stats: dict) -> list[dict]:
    rows = []
    for pair, ps in stats["pairs"].items():
        dense = ps["dense"]
        rows.append(
            {
                "pair": pair,
                "method": "dense",
                "n": dense["n"],
                "density": "1.000",
                "test_acc_%": f"{_pct(dense['test_acc_mean'])} ± {_pct(dense['test_acc_sd'])}",
            }
        )
        for m, s in ps["methods"].items():
            d = s["delta_vs_dense"]
            rows.append(
                {
                    "pair": pair,
                    "method": m,
                    "role": s["role"],
                    "n": s["n"],
                    "density": _num(s["final_density"]),
                    "test_acc_%": f"{_pct(s['test_acc_mean'])} ± {_pct(s['test_acc_sd'])}",
                    "Δ_vs_dense_pp": f"{_num(d['mean_diff'] * 100, '+.2f')} {_ci(d, 100)}",
                    "non-inferior (p_adj)": NA
                    if s["noninferior_to_dense"] is None
                    else f"{'yes' if s['noninferior_to_dense'] else 'no'} "
                    f"({_p(d['p_noninferior_adj'])}"
                    f"{_raw(d, stats['alpha'])}{_seeds(d, stats['alpha'])})",
                    "epochs": _num(s["total_epochs_mean"], ".1f"),
                    "GFLOPs": _num(s["total_flops_mean"] / 1e9, ".2f"),
                    "seconds": _num(s["total_wall_mean"], ".2f"),
                    **{f"stop_{k}_%": _pct(v) for k, v in s["stop_share"].items()},
                    "diverged": s["n_diverged"],
                    "collapsed": s.get("n_collapsed", 0),
                }
            )
    return rows


def comparison_rows(stats: dict, ablation_only: bool = False) -> list[dict]:
    rows = []
    for pair, ps in stats["pairs"].items():
        for c in ps["comparisons"]:
            if ablation_only and not c["ablation"]:
                continue
            a = c["accuracy"]
            row = {
                "pair": pair,
                "infcop": c["infcop"],
                "vs": c["competitor"],
                "n": a["n"],
                "Δacc_pp": f"{_num(a['mean_diff'] * 100, '+.2f')} {_ci(a, 100)}",
                "non-inferior (p_adj)": NA
                if c["noninferior"] is None
                else f"{'yes' if c['noninferior'] else 'no'} ({_p(a['p_noninferior_adj'])}"
                f"{_raw(a, stats['alpha'])}{_seeds(a, stats['alpha'])})",
            }
            for k, sp in c["speedup"].items():
                row[f"speedup_{k}"] = f"{_num(sp['geomean'], '.2f')}× {_ci(sp)}"
                weak = (
                    sp.get("wilcoxon_min_p") is not None and sp["wilcoxon_min_p"] > stats["alpha"]
                )
                p = _p(sp.get("p_ttest_adj"), sp.get("note", ""))
                row[f"p_adj_{k}"] = p + ("†" if weak else "") + _seeds(sp, stats["alpha"])
            rows.append(row)
    return rows


def diagnostic_records(stats: dict) -> list[dict]:
    """Per diagnosed method and criterion (threshold): shares in percent and epochs, as numbers."""
    rows = []
    for pair, ps in stats["pairs"].items():
        for m, d in ps["diagnostics"].items():
            if not d:
                continue
            entries = [("method's own rule", d["method"])]
            for name, sweep in d["criteria"].items():
                label = CRITERIA[name].label if name in CRITERIA else name
                entries += [(f"{label} ε={t}", v) for t, v in sweep.items()]
            for name, v in entries:
                rows.append(
                    {
                        "pair": pair,
                        "diagnosed": m,
                        "criterion": name,
                        "fired_%": _times(v["fired_share"], 100),
                        "mean_epoch": v["mean_epoch"],
                        "lag_vs_oracle": v["mean_lag_vs_oracle"],
                        "before_oracle_%": _times(v["early_share"], 100),
                        "levels": d["levels"],
                        "oracle_found_%": _times(d["oracle_found_share"], 100),
                    }
                )
    return rows


def diagnostic_rows(stats: dict) -> list[dict]:
    formats = {
        "fired_%": ".1f",
        "mean_epoch": ".2f",
        "lag_vs_oracle": "+.2f",
        "before_oracle_%": ".1f",
        "oracle_found_%": ".1f",
    }
    return [
        {k: _num(v, formats[k]) if k in formats else v for k, v in r.items()}
        for r in diagnostic_records(stats)
    ]


def _yes_no(verdict: bool | None) -> str | None:
    return None if verdict is None else "yes" if verdict else "no"


def _times(x: float | None, scale: float) -> float | None:
    return None if x is None or x != x else x * scale


def summary_records(stats: dict) -> list[dict]:
    """summary.csv: the numbers of the summary table, one per column."""
    rows = []
    for pair, ps in stats["pairs"].items():
        dense = ps["dense"]
        rows.append(
            {
                "pair": pair,
                "method": "dense",
                "n": dense["n"],
                "density": 1.0,
                "test_acc_%": _times(dense["test_acc_mean"], 100),
                "test_acc_sd_%": _times(dense["test_acc_sd"], 100),
            }
        )
        for m, s in ps["methods"].items():
            d = s["delta_vs_dense"]
            rows.append(
                {
                    "pair": pair,
                    "method": m,
                    "role": s["role"],
                    "n": s["n"],
                    "density": s["final_density"],
                    "test_acc_%": _times(s["test_acc_mean"], 100),
                    "test_acc_sd_%": _times(s["test_acc_sd"], 100),
                    "Δ_vs_dense_pp": _times(d["mean_diff"], 100),
                    "Δ_vs_dense_pp_ci_low": _times(d.get("ci_low"), 100),
                    "Δ_vs_dense_pp_ci_high": _times(d.get("ci_high"), 100),
                    "noninferior_to_dense": _yes_no(s["noninferior_to_dense"]),
                    "p_noninferior_adj": d["p_noninferior_adj"],
                    "epochs": s["total_epochs_mean"],
                    "GFLOPs": _times(s["total_flops_mean"], 1e-9),
                    "seconds": s["total_wall_mean"],
                    **{f"stop_{k}_%": _times(v, 100) for k, v in s["stop_share"].items()},
                    "diverged": s["n_diverged"],
                }
            )
    return rows


def comparison_records(stats: dict) -> list[dict]:
    """comparisons.csv: the numbers of the comparison table, one per column.
    `wilcoxon_reaches_alpha_<cost>` is "no" where the Wilcoxon check cannot reach α at this
    n (the table's †)."""
    rows = []
    for pair, ps in stats["pairs"].items():
        for c in ps["comparisons"]:
            a = c["accuracy"]
            row = {
                "pair": pair,
                "infcop": c["infcop"],
                "vs": c["competitor"],
                "ablation": _yes_no(c["ablation"]),
                "n": a["n"],
                "Δacc_pp": _times(a["mean_diff"], 100),
                "Δacc_pp_ci_low": _times(a.get("ci_low"), 100),
                "Δacc_pp_ci_high": _times(a.get("ci_high"), 100),
                "noninferior": _yes_no(c["noninferior"]),
                "p_noninferior": a.get("p_noninferior"),
                "p_noninferior_adj": a["p_noninferior_adj"],
                "seeds_to_decide_accuracy": a.get("seeds_to_decide"),
            }
            for k, sp in c["speedup"].items():
                wmin = sp.get("wilcoxon_min_p")
                row.update(
                    {
                        f"speedup_{k}": sp["geomean"],
                        f"speedup_{k}_ci_low": sp.get("ci_low"),
                        f"speedup_{k}_ci_high": sp.get("ci_high"),
                        f"p_{k}": sp.get("p_ttest"),
                        f"p_adj_{k}": sp.get("p_ttest_adj"),
                        f"seeds_to_decide_{k}": sp.get("seeds_to_decide"),
                        f"wilcoxon_reaches_alpha_{k}": (
                            None if wmin is None else _yes_no(wmin <= stats["alpha"])
                        ),
                        f"note_{k}": sp.get("note") or None,
                    }
                )
            rows.append(row)
    return rows


def uncompared_notes(stats: dict) -> str:
    """Methods of the study that no comparison covers, and why (so none drops out silently)."""
    lines = [
        f"- {pair}: `{m}`: {why}"
        for pair, ps in stats["pairs"].items()
        for m, why in ps.get("uncompared", {}).items()
    ]
    return ("\n\nNot in any comparison:\n\n" + "\n".join(lines)) if lines else ""


def columns(rows: list[dict]) -> list[str]:
    """All keys, in first-seen order (the dense row has fewer columns than the method rows)."""
    return list(dict.fromkeys(k for r in rows for k in r))


def _latex(rows: list[dict], caption: str) -> str:
    if not rows:
        return f"% {caption}: no rows\n"
    body = tabulate(rows, headers="keys", tablefmt="latex_booktabs", disable_numparse=True)
    return (
        "\\begin{table}\n\\centering\n"
        f"\\caption{{{caption}}}\n"
        "\\resizebox{\\linewidth}{!}{%\n"
        f"{body}}}\n"
        "\\end{table}\n"
    )


def _md(rows: list[dict]) -> str:
    return (
        tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True)
        if rows
        else "(no rows)"
    )


def write_tables(stats: dict, study: StudyDir) -> None:
    summary, comps = summary_rows(stats), comparison_rows(stats)
    ablations, diags = comparison_rows(stats, ablation_only=True), diagnostic_rows(stats)
    header = (
        f"Experiment `{stats['experiment']}`: seeds {stats['seeds']}, non-inferiority margin "
        f"{100 * stats['margin']:.1f} pp, α = {stats['alpha']}. Holm-adjusted p (p_adj) within "
        "each dataset × model, separately for each test: non-inferiority to the competitor, the "
        "speedup t-test for each cost (epochs, FLOPs, seconds), and non-inferiority to dense "
        "across that pair's methods. Speedup = geometric mean over seeds of cost(competitor) / "
        "cost(InfCoP) with bootstrap 95% CI; FLOPs and seconds count training plus the work each "
        "stopping rule needs (validation passes it reads, flow measurements and the flow "
        "reference). † marks a speedup whose Wilcoxon check cannot reach α at this n (smallest "
        "attainable one-sided p = 2^-n): more seeds are needed for it. Where the unadjusted p "
        "falls on the other side of α it is shown beside p_adj. n→N after an undecided test: the "
        "seeds that would give it 80% power at the observed mean and paired sd, at Holm's "
        "strictest level α / m (∞: none would; docs/statistics.md).\n"
    )
    summary_csv, comps_csv = summary_records(stats), comparison_records(stats)
    atomic_write_csv(study.summary("csv"), summary_csv, columns(summary_csv))
    atomic_write_csv(study.comparisons, comps_csv, columns(comps_csv))
    atomic_write_text(
        study.summary("md"),
        f"{header}\n## Methods\n\n{_md(summary)}\n\n## InfCoP vs competitors\n\n"
        f"{_md(comps)}{uncompared_notes(stats)}\n",
    )
    atomic_write_text(
        study.summary("tex"),
        _latex(summary, "Methods: final density, accuracy and training cost")
        + _latex(comps, "InfCoP against each competitor, paired over seeds"),
    )
    atomic_write_text(
        study.ablation,
        f"{header}\n## Where does the speedup come from?\n\n{_md(ablations)}\n\n"
        f"## Stopping lag against the oracle epoch (diagnostic runs)\n\n{_md(diags)}\n",
    )
