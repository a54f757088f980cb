"""Is a stopping rule better than simply retraining less? The frontier's points against budgeted
retraining, tuned on held-out pairs, and ranked across pairs.

All three read the frontier's points (frontier.Point: per-seed final test accuracy and total costs)
and compare with the dense-schedule baseline, the point that retrains the whole schedule left after
the rewind (`fixed_same_reset`, = wr). "Non-inferior" is the harness's one test: a one-sided paired
t-test of accuracy − baseline's > −δ, Holm-adjusted over the points of one pair (one family per
pair, docs/statistics.md). Cost is FLOPs (training plus the monitoring each rule needs), as
everywhere.

* Flow points vs budgeted points (per pair): frontier.dominance with only the budgeted family's
  points (k epochs per level, LR annealed to 0) as the simple rules; Holm over the pair's flow
  points.
* Held-out calibration (leave one pair out): for each family and each pair h, the family's knob is
  chosen on the other pairs: among the points non-inferior to the baseline on every calibration
  pair, the one with the smallest geometric-mean FLOPs ratio to the baseline over those pairs (none
  qualifying: no choice, and the family fails on h). The chosen point is then judged on h alone:
  accuracy − baseline's (95% t CI), non-inferiority (Holm over the families judged on h) and its
  FLOPs ratio. Its tuning cost is what choosing it took: the FLOPs of every run of the family on the
  calibration pairs (every knob value, every seed). Each flow family's choice is also compared on h
  with the budgeted family's own held-out choice (paired over seeds).
* Cross-pair summary (one line per point): the geometric mean over pairs of its FLOPs ratio to the
  baseline, a pair where it is not non-inferior counting as failed at ratio 1 + its own ratio (its
  run was wasted and the baseline has to be run after it); the number of pairs it failed on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from infcop.study.frontier import Point, _num, _paired, dominance
from infcop.study.stats import compare_accuracy, compare_cost, holm
from infcop.study.tables import _yes_no

BASELINE = "fixed_same_reset"  # the point that retrains the whole schedule left after the rewind
BUDGETED = "budgeted"  # the base method of the budgeted family


def baseline_of(points: list[Point]) -> Point | None:
    return next((p for p in points if p.name == BASELINE), None)


def is_budgeted(p: Point) -> bool:
    return p.family.split(" ")[0] == BUDGETED


def flops_ratio(p: Point, base: Point) -> float:
    """Geometric mean over paired seeds of cost(p) / cost(baseline)."""
    a, b = _paired(p.flops, base.flops)
    ratios = [x / y for x, y in zip(a, b) if x > 0 and y > 0]
    return float(np.exp(np.mean(np.log(ratios)))) if ratios else math.nan


def noninferior(
    points: list[Point], base: Point, margin: float, alpha: float
) -> dict[str, bool | None]:
    """Per point of one pair: non-inferior to the baseline (Holm over the pair's points); None: no
    test."""
    ps = [compare_accuracy(*_paired(p.acc, base.acc), margin).p_noninferior for p in points]
    return {p.name: None if q is None else bool(q < alpha) for p, q in zip(points, holm(ps))}


# ---------------------------------------------------------------- flow points vs budgeted points
def versus_budgeted(points: list[Point], margin: float, alpha: float) -> list[dict]:
    """Each flow point of one pair against the budgeted points (frontier.dominance, Holm over the
    flow points)."""
    budgeted = [p for p in points if is_budgeted(p)]
    rows = [{"point": p.name, **dominance(p, budgeted, margin)} for p in points if p.flow]
    for key in ("p_noninferior", "p_cheaper", "p_superior"):
        for r, adj in zip(rows, holm([r[key] for r in rows])):
            r[f"{key}_adj"] = adj
    for r in rows:
        by_cheaper = (
            None not in (r["p_noninferior_adj"], r["p_cheaper_adj"])
            and max(r["p_noninferior_adj"], r["p_cheaper_adj"]) < alpha
        )
        by_better = r["p_superior_adj"] is not None and r["p_superior_adj"] < alpha
        tested = any(
            r[f"{k}_adj"] is not None for k in ("p_noninferior", "p_cheaper", "p_superior")
        )
        r["beaten_by_budgeted"] = bool(by_cheaper or by_better) if tested else None
    return rows


# ---------------------------------------------------------------- held-out calibration
@dataclass
class Choice:
    family: str
    held_out: str
    point: str | None  # the knob's point chosen on the calibration pairs (None: none qualified)
    calibration_ratio: float  # its geometric-mean FLOPs ratio over the calibration pairs
    tuning_flops: float  # every run of the family on the calibration pairs


def choose(
    family: str,
    held_out: str,
    by_pair: dict[str, list[Point]],
    ok: dict[str, dict[str, bool | None]],
) -> Choice:
    """The family's point chosen without `held_out` (module doc: the cheapest point non-inferior on
    every calibration pair)."""
    calibration = [pair for pair in by_pair if pair != held_out]
    members = {
        pair: {p.name: p for p in by_pair[pair] if p.family == family} for pair in calibration
    }
    names = set.intersection(*(set(m) for m in members.values())) if members else set()
    base = {pair: baseline_of(by_pair[pair]) for pair in calibration}
    tuning = sum(sum(p.flops.values()) for m in members.values() for p in m.values())
    qualified = {}
    for name in names:
        if all(ok[pair].get(name) for pair in calibration):
            ratios = [flops_ratio(members[pair][name], base[pair]) for pair in calibration]
            qualified[name] = float(np.exp(np.mean(np.log(ratios))))
    if not qualified:
        return Choice(family, held_out, None, math.nan, tuning)
    name = min(sorted(qualified), key=lambda n: qualified[n])
    return Choice(family, held_out, name, qualified[name], tuning)


def held_out(by_pair: dict[str, list[Point]], margin: float, alpha: float) -> list[dict]:
    """Every family x held-out pair: the choice made without that pair and how it does on it."""
    pairs = [pair for pair, pts in by_pair.items() if baseline_of(pts) is not None]
    by_pair = {pair: by_pair[pair] for pair in pairs}
    if len(pairs) < 2:
        return []
    ok = {pair: noninferior(pts, baseline_of(pts), margin, alpha) for pair, pts in by_pair.items()}
    families = list(dict.fromkeys(p.family for pts in by_pair.values() for p in pts))
    rows = []
    for h in pairs:
        base = baseline_of(by_pair[h])
        here = {p.name: p for p in by_pair[h]}
        choices = [choose(f, h, by_pair, ok) for f in families]
        tests = [
            compare_accuracy(*_paired(here[c.point].acc, base.acc), margin)
            if c.point in here
            else None
            for c in choices
        ]
        adjusted = holm([t.p_noninferior if t is not None else None for t in tests])
        budget = next(
            (c for c in choices if c.family == f"{BUDGETED} form=linear" and c.point in here), None
        )
        for c, t, p_adj in zip(choices, tests, adjusted):
            p = here.get(c.point)
            row = {
                "held_out": h,
                "family": c.family,
                "flow": any(x.flow for x in by_pair[h] if x.family == c.family),
                "chosen": c.point,
                "knob": p.knob if p else None,
                "calibration_flops_ratio": c.calibration_ratio,
                "tuning_flops": c.tuning_flops,
                "n": t.n if t else 0,
                "d_acc": t.mean_diff if t else None,
                "d_acc_ci": (t.ci_low, t.ci_high) if t else (None, None),
                "p_noninferior": t.p_noninferior if t else None,
                "p_noninferior_adj": p_adj,
                "flops_ratio": flops_ratio(p, base) if p else None,
                "flops": p.mean("flops") if p else None,
            }
            row["noninferior"] = None if p_adj is None else bool(p_adj < alpha)
            row.update(_against_budget(p, here.get(budget.point) if budget else None, margin))
            rows.append(row)
    return rows


def _against_budget(p: Point | None, b: Point | None, margin: float) -> dict:
    """The family's held-out choice against the budgeted family's, paired over seeds (p − b)."""
    if p is None or b is None or p.name == b.name:
        return {
            "vs_budgeted": None,
            "vs_budgeted_d_acc": None,
            "vs_budgeted_d_acc_ci": (None, None),
            "vs_budgeted_flops_ratio": None,
        }
    acc = compare_accuracy(*_paired(p.acc, b.acc), margin)
    cost = compare_cost(*_paired(b.flops, p.flops))  # cost(p) / cost(b)
    return {
        "vs_budgeted": b.name,
        "vs_budgeted_d_acc": acc.mean_diff,
        "vs_budgeted_d_acc_ci": (acc.ci_low, acc.ci_high),
        "vs_budgeted_flops_ratio": cost.geomean,
    }


# ---------------------------------------------------------------- cross-pair summary
def failed_ratio(ratio: float) -> float:
    """The cost ratio of a pair where the point is not non-inferior: its run, then the baseline."""
    return 1.0 + ratio


def rule_summary(by_pair: dict[str, list[Point]], margin: float, alpha: float) -> list[dict]:
    """One row per point present on every pair that has the baseline, ranked by the geometric-mean
    FLOPs ratio to the baseline across pairs (failures counted as in the module doc)."""
    pairs = {pair: pts for pair, pts in by_pair.items() if baseline_of(pts) is not None}
    if not pairs:
        return []
    ok = {pair: noninferior(pts, baseline_of(pts), margin, alpha) for pair, pts in pairs.items()}
    names = set.intersection(*({p.name for p in pts} for pts in pairs.values()))
    order = list(dict.fromkeys(p.name for pts in pairs.values() for p in pts if p.name in names))
    rows = []
    for name in order:
        ratios, failed, untested = [], [], []
        for pair, pts in pairs.items():
            p = next(x for x in pts if x.name == name)
            r = flops_ratio(p, baseline_of(pts))
            if ok[pair][name] is None:
                untested.append(pair)
            elif not ok[pair][name]:
                failed.append(pair)
            ratios.append(
                math.nan if ok[pair][name] is None else r if ok[pair][name] else failed_ratio(r)
            )
        some = next(x for x in next(iter(pairs.values())) if x.name == name)
        finite = [r for r in ratios if math.isfinite(r) and r > 0]
        rows.append(
            {
                "point": name,
                "family": some.family,
                "knob": some.knob,
                "flow": some.flow,
                "pairs": len(pairs),
                "failed": len(failed),
                "failed_pairs": failed,
                "untested_pairs": untested,
                "geomean_flops_ratio": float(np.exp(np.mean(np.log(finite))))
                if len(finite) == len(ratios)
                else math.nan,
            }
        )
    return sorted(
        rows, key=lambda r: (math.isnan(r["geomean_flops_ratio"]), r["geomean_flops_ratio"])
    )


def _tuned_ratio(row: dict) -> float:
    """A held-out round's cost ratio: no choice counts at 1 (one runs the baseline), a choice that
    is not non-inferior at 1 + its ratio, an untested one (too few seeds) as unknown."""
    if row["chosen"] is None:
        return 1.0
    if row["noninferior"] is None:
        return math.nan
    return row["flops_ratio"] if row["noninferior"] else failed_ratio(row["flops_ratio"])


def tuned_summary(heldout_rows: list[dict]) -> list[dict]:
    """Each family tuned on held-out pairs, summarised across pairs as rule_summary does points."""
    out = []
    for family in dict.fromkeys(r["family"] for r in heldout_rows):
        rows = [r for r in heldout_rows if r["family"] == family]
        ratios = [_tuned_ratio(r) for r in rows]
        failed = [r["held_out"] for r in rows if r["chosen"] is None or r["noninferior"] is False]
        finite = [x for x in ratios if x is not None and math.isfinite(x) and x > 0]
        out.append(
            {
                "family": family,
                "flow": rows[0]["flow"],
                "pairs": len(rows),
                "failed": len(failed),
                "failed_pairs": failed,
                "tuning_flops": sum(r["tuning_flops"] for r in rows),
                "geomean_flops_ratio": float(np.exp(np.mean(np.log(finite))))
                if len(finite) == len(ratios)
                else math.nan,
            }
        )
    return sorted(
        out, key=lambda r: (math.isnan(r["geomean_flops_ratio"]), r["geomean_flops_ratio"])
    )


# ---------------------------------------------------------------- tables
def _pp(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:+.2f}"


def _ci_pp(ci: tuple[float | None, float | None]) -> str:
    return "–" if ci[0] is None else f"[{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]"


def _x(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.2f}×"


def _yes(x: bool | None) -> str:
    return "n/a" if x is None else "yes" if x else "no"


def _pv(p: float | None) -> str:
    return "–" if p is None else "<0.001" if p < 0.001 else f"{p:.3f}"


def budget_tables(results: dict[str, dict], margin: float, alpha: float) -> dict[str, list[dict]]:
    """The three tables (module doc) from frontier.frontier's per-pair results."""
    by_pair = {pair: res["points"] for pair, res in results.items()}
    versus = [
        {"pair": pair, **r}
        for pair, pts in by_pair.items()
        for r in versus_budgeted(pts, margin, alpha)
    ]
    heldout = held_out(by_pair, margin, alpha)
    return {
        "vs_budgeted": versus,
        "heldout": heldout,
        "rules": rule_summary(by_pair, margin, alpha),
        "tuned": tuned_summary(heldout),
    }


def versus_rows(rows: list[dict]) -> list[dict]:
    return [
        {
            "pair": r["pair"],
            "flow point": r["point"],
            "cheapest budgeted as accurate": r["as_accurate"] or "none",
            "Δacc_pp (it − flow)": f"{_pp(r['d_acc'])} {_ci_pp(r['d_acc_ci'])}",
            "FLOPs flow/it": _x(r["flops_ratio"]),
            "p_adj non-inferior": _pv(r["p_noninferior_adj"]),
            "p_adj cheaper": _pv(r["p_cheaper_adj"]),
            "most accurate budgeted no costlier": r["no_costlier"] or "none",
            "Δacc_pp (that − flow)": _pp(r["d_acc_superior"]),
            "p_adj superior": _pv(r["p_superior_adj"]),
            "beaten by budgeted": _yes(r["beaten_by_budgeted"]),
        }
        for r in rows
    ]


def heldout_rows(rows: list[dict]) -> list[dict]:
    return [
        {
            "held-out pair": r["held_out"],
            "family": r["family"],
            "rule": "flow" if r["flow"] else "simple",
            "chosen on the other pairs": r["chosen"] or "none qualifies",
            "n": r["n"],
            "Δacc_pp vs baseline": f"{_pp(r['d_acc'])} {_ci_pp(r['d_acc_ci'])}",
            "non-inferior (p_adj)": f"{_yes(r['noninferior'])} ({_pv(r['p_noninferior_adj'])})",
            "FLOPs ratio to baseline": _x(r["flops_ratio"]),
            "GFLOPs": _g(r["flops"]),
            "tuning GFLOPs": _g(r["tuning_flops"]),
            "vs tuned budgeted": r["vs_budgeted"] or "–",
            "Δacc_pp vs it": f"{_pp(r['vs_budgeted_d_acc'])} {_ci_pp(r['vs_budgeted_d_acc_ci'])}",
            "FLOPs vs it": _x(r["vs_budgeted_flops_ratio"]),
        }
        for r in rows
    ]


def rules_rows(rows: list[dict]) -> list[dict]:
    return [
        {
            "rank": i + 1,
            "point": r["point"],
            "family": r["family"],
            "rule": "flow" if r["flow"] else "simple",
            "geomean FLOPs ratio (failures as 1 + ratio)": _x(r["geomean_flops_ratio"]),
            "failed pairs": f"{r['failed']}/{r['pairs']}"
            + (f" ({', '.join(r['failed_pairs'])})" if r["failed_pairs"] else ""),
        }
        for i, r in enumerate(rows)
    ]


def tuned_rows(rows: list[dict]) -> list[dict]:
    return [
        {
            "rank": i + 1,
            "family (knob tuned on the other pairs)": r["family"],
            "rule": "flow" if r["flow"] else "simple",
            "geomean FLOPs ratio (failures as 1 + ratio)": _x(r["geomean_flops_ratio"]),
            "failed held-out pairs": f"{r['failed']}/{r['pairs']}",
            "tuning GFLOPs (all held-out rounds)": _g(r["tuning_flops"]),
        }
        for i, r in enumerate(rows)
    ]


def _g(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x / 1e9:.3g}"


INTRO = """Seeds {seeds}, margin δ = {margin:.1f} pp, α = {alpha}. Baseline: `{base}` (the whole
schedule left after the rewind). Budgeted points (`{budgeted}`): k epochs per level, the LR
annealed to 0 within them. Non-inferior: one-sided paired t-test at δ, Holm over the points of a
pair (docs/statistics.md). Cost: FLOPs of training plus the monitoring each rule needs."""
VERSUS = """A flow point is beaten when the cheapest budgeted point as accurate (paired mean) is
non-inferior and significantly cheaper, or the most accurate budgeted point that costs no more is
significantly more accurate (Holm over the pair's flow points for each test)."""
HELD_OUT = """Each family's knob is chosen on the other pairs: among the points non-inferior to the
baseline on every one of them, the one with the smallest geometric-mean FLOPs ratio to the baseline
(none: the family fails on the held-out pair). The held-out pair then judges it alone (Holm over
the families judged on that pair). Tuning GFLOPs: every run of the family on the calibration pairs,
every knob value and seed. 'vs tuned budgeted': the choice against the budgeted (linear) family's
own held-out choice on the same pair, paired over seeds (Δacc: this − budgeted; FLOPs: this /
budgeted)."""
ACROSS = """Per point, the geometric mean over pairs of its FLOPs ratio to the baseline; a pair
where it is not non-inferior counts as failed at 1 + its ratio (the run was wasted and the baseline
has to be run after it). Ranked, cheapest first."""
TUNED = """Tuned on held-out pairs (the family's held-out choices, failures counted the same way; a
family with no qualifying knob counts at 1, the baseline one runs instead):"""


def _para(text: str) -> str:
    return " ".join(text.split())


def render(tables: dict[str, list[dict]], margin: float, alpha: float, seeds: list[int]) -> str:
    from tabulate import tabulate

    def md(rows: list[dict]) -> str:
        return (
            tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True)
            if rows
            else "(no rows)"
        )

    beaten = {}
    for r in tables["vs_budgeted"]:
        beaten.setdefault(r["pair"], []).append(r)
    intro = _para(INTRO).format(
        seeds=seeds, margin=100 * margin, alpha=alpha, base=BASELINE, budgeted=BUDGETED
    )
    lines = [
        "# The frontier against budgeted retraining\n",
        intro + "\n",
        "## Flow points against budgeted points, per pair\n",
        _para(VERSUS) + "\n",
    ]
    for pair, rows in beaten.items():
        unbeaten = ", ".join(r["point"] for r in rows if r["beaten_by_budgeted"] is False)
        lines.append(f"- {pair}: flow points not beaten by a budgeted point: {unbeaten or 'none'}.")
    lines += [
        "",
        md(versus_rows(tables["vs_budgeted"])),
        "",
        "## Held-out calibration (leave one pair out)\n",
        _para(HELD_OUT) + "\n",
        md(heldout_rows(tables["heldout"])),
        "",
        "## Stopping rules across pairs\n",
        _para(ACROSS) + "\n",
        md(rules_rows(tables["rules"])),
        "",
        _para(TUNED) + "\n",
        md(tuned_rows(tables["tuned"])),
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------ numeric CSVs (the md's columns, as numbers)
def versus_csv(rows: list[dict]) -> list[dict]:
    return [
        {
            "pair": r["pair"],
            "flow_point": r["point"],
            "cheapest_budgeted_as_accurate": r["as_accurate"],
            "Δacc_pp (it − flow)": _num(r["d_acc"], 100),
            "Δacc_pp_ci_low": _num(r["d_acc_ci"][0], 100),
            "Δacc_pp_ci_high": _num(r["d_acc_ci"][1], 100),
            "flops_flow/it": _num(r["flops_ratio"]),
            "p_adj_noninferior": r["p_noninferior_adj"],
            "p_adj_cheaper": r["p_cheaper_adj"],
            "most_accurate_budgeted_no_costlier": r["no_costlier"],
            "Δacc_pp (that − flow)": _num(r["d_acc_superior"], 100),
            "p_adj_superior": r["p_superior_adj"],
            "beaten_by_budgeted": _yes_no(r["beaten_by_budgeted"]),
        }
        for r in rows
    ]


def heldout_csv(rows: list[dict]) -> list[dict]:
    return [
        {
            "held_out_pair": r["held_out"],
            "family": r["family"],
            "rule": "flow" if r["flow"] else "simple",
            "chosen": r["chosen"],
            "n": r["n"],
            "Δacc_pp_vs_baseline": _num(r["d_acc"], 100),
            "Δacc_pp_ci_low": _num(r["d_acc_ci"][0], 100),
            "Δacc_pp_ci_high": _num(r["d_acc_ci"][1], 100),
            "noninferior": _yes_no(r["noninferior"]),
            "p_adj_noninferior": r["p_noninferior_adj"],
            "flops_ratio_to_baseline": _num(r["flops_ratio"]),
            "GFLOPs": _num(r["flops"], 1e-9),
            "tuning_GFLOPs": _num(r["tuning_flops"], 1e-9),
            "vs_tuned_budgeted": r["vs_budgeted"],
            "Δacc_pp_vs_it": _num(r["vs_budgeted_d_acc"], 100),
            "Δacc_pp_vs_it_ci_low": _num(r["vs_budgeted_d_acc_ci"][0], 100),
            "Δacc_pp_vs_it_ci_high": _num(r["vs_budgeted_d_acc_ci"][1], 100),
            "flops_vs_it": _num(r["vs_budgeted_flops_ratio"]),
        }
        for r in rows
    ]


def rules_csv(rows: list[dict]) -> list[dict]:
    return [
        {
            "rank": i + 1,
            "point": r["point"],
            "family": r["family"],
            "rule": "flow" if r["flow"] else "simple",
            "geomean_flops_ratio": _num(r["geomean_flops_ratio"]),
            "failed": r["failed"],
            "pairs": r["pairs"],
            "failed_pairs": " ".join(r["failed_pairs"]),
        }
        for i, r in enumerate(rows)
    ]


def write_budget_tables(
    results: dict[str, dict], study, margin: float, alpha: float, seeds: list[int]
) -> list:
    from infcop.foundations.storage import atomic_write_csv, atomic_write_text

    tables = budget_tables(results, margin, alpha)
    written = []
    for name, rows in (
        ("vs_budgeted", versus_csv(tables["vs_budgeted"])),
        ("heldout", heldout_csv(tables["heldout"])),
        ("rules", rules_csv(tables["rules"])),
    ):
        atomic_write_csv(
            study.frontier_budgeted(name), rows, list(dict.fromkeys(k for r in rows for k in r))
        )
        written.append(study.frontier_budgeted(name))
    atomic_write_text(study.frontier_budgeted(), render(tables, margin, alpha, seeds))
    return [study.frontier_budgeted(), *written]
