"""Render stats.json as tables: CSV, GitHub markdown (tabulate) and LaTeX (booktabs).

summary.*      one row per dataset x model x method
comparisons.*  one row per InfCoP variant x competitor: accuracy difference, non-inferiority, speedups
ablation.md    InfCoP against its ablations, plus each criterion's stopping lag from diagnostic runs
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


def _ci(c: dict, scale: float = 1.0, fmt: str = ".2f") -> str:
    if c.get("ci_low") is None:
        return NA
    return f"[{c['ci_low'] * scale:{fmt}}, {c['ci_high'] * scale:{fmt}}]"


def summary_rows(stats: dict) -> list[dict]:
    rows = []
    for pair, ps in stats["pairs"].items():
        dense = ps["dense"]
        rows.append({"pair": pair, "method": "dense", "n": dense["n"], "density": "1.000",
                     "test_acc_%": f"{_pct(dense['test_acc_mean'])} ± {_pct(dense['test_acc_sd'])}"})
        for m, s in ps["methods"].items():
            d = s["delta_vs_dense"]
            rows.append({
                "pair": pair, "method": m, "role": s["role"], "n": s["n"], "density": _num(s["final_density"]),
                "test_acc_%": f"{_pct(s['test_acc_mean'])} ± {_pct(s['test_acc_sd'])}",
                "Δ_vs_dense_pp": f"{_num(d['mean_diff'] * 100, '+.2f')} {_ci(d, 100)}",
                "non-inferior (p_adj)": NA if s["noninferior_to_dense"] is None else
                f"{'yes' if s['noninferior_to_dense'] else 'no'} ({_p(d['p_noninferior_adj'])})",
                "epochs": _num(s["total_epochs_mean"], ".1f"), "GFLOPs": _num(s["total_flops_mean"] / 1e9, ".2f"),
                "seconds": _num(s["total_wall_mean"], ".2f"),
                **{f"stop_{k}_%": _pct(v) for k, v in s["stop_share"].items()},
                "diverged": s["n_diverged"], "collapsed": s.get("n_collapsed", 0),
            })
    return rows


def comparison_rows(stats: dict, ablation_only: bool = False) -> list[dict]:
    rows = []
    for pair, ps in stats["pairs"].items():
        for c in ps["comparisons"]:
            if ablation_only and not c["ablation"]:
                continue
            a = c["accuracy"]
            row = {"pair": pair, "infcop": c["infcop"], "vs": c["competitor"], "n": a["n"],
                   "Δacc_pp": f"{_num(a['mean_diff'] * 100, '+.2f')} {_ci(a, 100)}",
                   "non-inferior (p_adj)": NA if c["noninferior"] is None else
                   f"{'yes' if c['noninferior'] else 'no'} ({_p(a['p_noninferior_adj'])})"}
            for k, sp in c["speedup"].items():
                row[f"speedup_{k}"] = f"{_num(sp['geomean'], '.2f')}× {_ci(sp)}"
                weak = sp.get("wilcoxon_min_p") is not None and sp["wilcoxon_min_p"] > stats["alpha"]
                row[f"p_adj_{k}"] = _p(sp.get("p_ttest_adj"), sp.get("note", "")) + ("†" if weak else "")
            rows.append(row)
    return rows


def diagnostic_rows(stats: dict) -> list[dict]:
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
                rows.append({"pair": pair, "diagnosed": m, "criterion": name, "fired_%": _pct(v["fired_share"]),
                             "mean_epoch": _num(v["mean_epoch"], ".2f"), "lag_vs_oracle": _num(v["mean_lag_vs_oracle"], "+.2f"),
                             "before_oracle_%": _pct(v["early_share"]), "levels": d["levels"],
                             "oracle_found_%": _pct(d["oracle_found_share"])})
    return rows


def uncompared_notes(stats: dict) -> str:
    """Methods of the study that no comparison covers, and why (so none drops out silently)."""
    lines = [f"- {pair}: `{m}`: {why}" for pair, ps in stats["pairs"].items() for m, why in ps.get("uncompared", {}).items()]
    return ("\n\nNot in any comparison:\n\n" + "\n".join(lines)) if lines else ""


def columns(rows: list[dict]) -> list[str]:
    """All keys, in first-seen order (the dense row has fewer columns than the method rows)."""
    return list(dict.fromkeys(k for r in rows for k in r))


def _latex(rows: list[dict], caption: str) -> str:
    if not rows:
        return f"% {caption}: no rows\n"
    body = tabulate(rows, headers="keys", tablefmt="latex_booktabs", disable_numparse=True)
    return f"\\begin{{table}}\n\\centering\n\\caption{{{caption}}}\n\\resizebox{{\\linewidth}}{{!}}{{%\n{body}}}\n\\end{{table}}\n"


def _md(rows: list[dict]) -> str:
    return tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True) if rows else "(no rows)"


def write_tables(stats: dict, study: StudyDir) -> None:
    summary, comps = summary_rows(stats), comparison_rows(stats)
    ablations, diags = comparison_rows(stats, ablation_only=True), diagnostic_rows(stats)
    header = (f"Experiment `{stats['experiment']}`: seeds {stats['seeds']}, non-inferiority margin "
              f"{100 * stats['margin']:.1f} pp, α = {stats['alpha']}. Holm-adjusted p (p_adj) within each dataset × model, "
              f"separately for each test: non-inferiority to the competitor, the speedup t-test for each cost (epochs, "
              f"FLOPs, seconds), and non-inferiority to dense across that pair's methods. "
              f"Speedup = geometric mean over seeds of cost(competitor) / cost(InfCoP) with bootstrap 95% CI; "
              f"FLOPs and seconds count training plus the work each stopping rule needs (validation passes it reads, "
              f"flow measurements and the flow reference). † marks a speedup whose Wilcoxon check cannot "
              f"reach α at this n (smallest attainable one-sided p = 2^-n): more seeds are needed for it.\n")
    atomic_write_csv(study.summary("csv"), summary, columns(summary))
    atomic_write_csv(study.comparisons, comps, columns(comps))
    atomic_write_text(study.summary("md"), f"{header}\n## Methods\n\n{_md(summary)}\n\n## InfCoP vs competitors\n\n"
                      f"{_md(comps)}{uncompared_notes(stats)}\n")
    atomic_write_text(study.summary("tex"), _latex(summary, "Methods: final density, accuracy and training cost") +
                      _latex(comps, "InfCoP against each competitor, paired over seeds"))
    atomic_write_text(study.ablation, f"{header}\n## Where does the speedup come from?\n\n{_md(ablations)}\n\n"
                      f"## Stopping lag against the oracle epoch (diagnostic runs)\n\n{_md(diags)}\n")
