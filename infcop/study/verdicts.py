"""A verdict for every claim a study tests: measured from stats.json, judged by the claim's rule.

    python -m infcop.study.verdicts --config <the study's config>   -> results/<study>/claims.{md,csv}

Each check is measured on one pair from the per-seed values in stats.json, with the statistics'
own functions (paired by seed; t CI for accuracies, percentile-bootstrap CI for speedups), and is
one pre-stated test: not adjusted for the number of claims. A check is inconclusive, with the reason,
where a method or pair was not run, where fewer than MIN_N seeds pair up, or where its CI is too wide
to decide. A claim holds where every check holds, does not hold where any check fails, and is
inconclusive otherwise; where the study's setting differs from the published one the verdict is
qualified "at this scaled setting".
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from tabulate import tabulate

from infcop.foundations.config import ConfigError
from infcop.study.claims import QUANTITIES, RULES, Check, Claim, ClaimFile, TestedIn
from infcop.study.stats import MIN_N, compare_accuracy, compare_cost, mean_ci

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
SCALED = "at this scaled setting"


class StatsError(ValueError):
    """stats.json lacks what a verdict needs (written by an older harness)."""


@dataclass(frozen=True)
class Measurement:
    n: int = 0
    value: float = float("nan")
    ci_low: float | None = None
    ci_high: float | None = None
    p_noninferior: float | None = None
    missing: str = ""  # why nothing could be measured


def _per_seed(entry: dict, what: str) -> dict:
    if "per_seed" not in entry:
        raise StatsError(f"stats.json has no per-seed values for {what} (written by an older harness); "
                         "recompute it: snakemake --cores all --forcerun stats")
    return entry["per_seed"]


def measure(check: Check, ps: dict, margin: float, n_boot: int) -> Measurement:
    """The check's quantity on one pair (ps: that pair's entry in stats.json), paired by seed."""
    not_run = [m for m in check.methods if m not in ps["methods"]]
    if not_run:
        return Measurement(missing=f"`{not_run[0]}` not run in this study")
    runs = [_per_seed(ps["methods"][m], m) for m in check.methods]
    dense = _per_seed(ps["dense"], "dense")
    q = check.quantity
    if q == "dense_accuracy":
        n, mean, lo, hi = mean_ci(list(dense.values()))
        return Measurement(n, mean, lo, hi)
    if q.startswith("speedup_"):
        a, b = runs
        seeds = sorted(set(a) & set(b), key=int)
        cost = q.removeprefix("speedup_")
        c = compare_cost([a[s][cost] for s in seeds], [b[s][cost] for s in seeds], n_boot)
        return Measurement(c.n, c.geomean, c.ci_low, c.ci_high)
    a = {s: v["test_acc"] for s, v in runs[0].items()}
    b = {s: v["test_acc"] for s, v in runs[1].items()} if q == "accuracy_diff" else dense
    seeds = sorted(set(a) & set(b), key=int)
    acc = compare_accuracy([a[s] for s in seeds], [b[s] for s in seeds], margin)
    return Measurement(acc.n, acc.mean_diff, acc.ci_low, acc.ci_high, acc.p_noninferior)


def fmt(quantity: str, x: float | None) -> str:
    if x is None or x != x:
        return "–"
    unit = QUANTITIES[quantity].unit
    return {"pp": f"{100 * x:+.2f} pp", "%": f"{100 * x:.2f}%", "x": f"{x:.2f}×"}[unit]


def _ci(quantity: str, m: Measurement) -> str:
    return f"[{fmt(quantity, m.ci_low)}, {fmt(quantity, m.ci_high)}]"


def published(check: Check, margin: float) -> str:
    q, v = check.quantity, check.value
    if check.rule == "noninferior":
        return f"non-inferior at δ = {100 * margin:.1f} pp"
    if check.rule == "overlaps":
        return f"{fmt(q, v[0])} to {fmt(q, v[1])}"
    return f"{'>' if check.rule == 'greater_than' else '<'} {fmt(q, v)}"


def judge(check: Check, m: Measurement, margin: float, alpha: float) -> tuple[str, str]:
    """(holds | does not hold | inconclusive, why) for one measured check."""
    if m.missing:
        return INCONCLUSIVE, m.missing
    if m.n < MIN_N or m.ci_low is None:
        return INCONCLUSIVE, f"n = {m.n} < {MIN_N} seeds"
    q, lo, hi, ci = check.quantity, m.ci_low, m.ci_high, _ci(check.quantity, m)
    if check.rule == "noninferior":
        if m.p_noninferior < alpha:
            return HOLDS, f"non-inferior (p = {m.p_noninferior:.3g})"
        if hi < -margin:
            return FAILS, f"95% CI {ci} lies below −δ"
        return INCONCLUSIVE, f"CI too wide: {ci} reaches below −δ (p = {m.p_noninferior:.3g})"
    if check.rule == "overlaps":
        low, high = check.value
        if hi < low or lo > high:
            return FAILS, f"95% CI {ci} lies {'below' if hi < low else 'above'} {published(check, margin)}"
        if lo < low and hi > high:
            return INCONCLUSIVE, f"CI too wide: {ci} spans {published(check, margin)} and more on both sides"
        return HOLDS, f"95% CI {ci} overlaps {published(check, margin)}"
    x, above = check.value, check.rule == "greater_than"
    if (lo > x) if above else (hi < x):
        return HOLDS, f"95% CI {ci} {published(check, margin)}"
    if (hi <= x) if above else (lo >= x):
        return FAILS, f"95% CI {ci} is not {published(check, margin)}"
    return INCONCLUSIVE, f"CI too wide: {ci} straddles {fmt(q, x)}"


def combine(judged: list[tuple[str, str]]) -> tuple[str, str]:
    """A claim holds where every check holds; one failing check fails it; otherwise it is inconclusive."""
    for status in (FAILS, INCONCLUSIVE):
        reasons = [why for s, why in judged if s == status]
        if reasons:
            return status, "; ".join(reasons)
    return HOLDS, ""


def _label(check: Check) -> str:
    m = check.methods
    if check.quantity == "dense_accuracy":
        return "dense accuracy"
    if check.quantity == "accuracy_vs_dense":
        return f"Δacc {m[0]} − dense"
    if check.quantity == "accuracy_diff":
        return f"Δacc {m[0]} − {m[1]}"
    return f"{check.quantity.removeprefix('speedup_')} speedup of {m[0]} over {m[1]}"


def claim_label(claim: Claim) -> str:
    """The claim's id, with the implementation its checks run where it names one."""
    return f"`{claim.id}`" + (f" ({claim.implementation})" if claim.implementation else "")


def claim_rows(f: ClaimFile, claim: Claim, tested: TestedIn, stats: dict,
               n_boot: int) -> tuple[list[dict], list[dict]]:
    """The claim's markdown rows (one per pair) and CSV rows (one per pair x check)."""
    margin, alpha = stats["margin"], stats["alpha"]
    md, csv = [], []
    for pair in tested.pairs:
        ps = stats["pairs"].get(pair)
        results = []
        for check in claim.checks:
            m = measure(check, ps, margin, n_boot) if ps else Measurement(missing=f"pair {pair} not run in this study")
            results.append((check, m, judge(check, m, margin, alpha)))
        status, why = combine([j for _, _, j in results])
        verdict = f"**{status}**" + (f" {SCALED}" if tested.differs and status != INCONCLUSIVE else "")
        n = min((m.n for _, m, _ in results if not m.missing), default=0)
        md.append({"claim": f"{claim_label(claim)}: {claim.words}",
                   "source": f"{f.source}, {claim.where}",
                   "tested (pair, n seeds)": f"{pair}, n = {n}",
                   "measured (95% CI)": "; ".join(f"{_label(c)}: {fmt(c.quantity, m.value)} {_ci(c.quantity, m)}"
                                                 for c, m, _ in results if not m.missing),
                   "published / rule": "; ".join(published(c, margin) for c in claim.checks),
                   "setting here vs published": tested.differs or "as published",
                   "verdict": verdict + (f": {why}" if why else "")})
        for i, (c, m, (s, w)) in enumerate(results):
            csv.append({"claim": claim.id, "implementation": claim.implementation,
                        "source": f.source, "where": claim.where, "words": claim.words,
                        "published_setting": claim.setting, "differs": tested.differs, "pair": pair,
                        "check": i, "quantity": c.quantity, "methods": " ".join(c.methods), "n": m.n,
                        "value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high, "p_noninferior": m.p_noninferior,
                        "rule": c.rule, "published": published(c, margin), "check_verdict": s, "check_reason": w,
                        "verdict": status, "scaled": bool(tested.differs)})
    return md, csv


def verdict_tables(files: list[ClaimFile], stats: dict, n_boot: int) -> tuple[list[dict], list[dict], list[str]]:
    """Markdown rows, CSV rows, and a note for each named claim that this study does not test."""
    study = stats["experiment"]
    md, csv, untested = [], [], []
    for f in files:
        for claim in f.claims:
            tested = claim.tested_in.get(study)
            if tested is None:
                untested.append(f"`{claim.id}` ({f.path}): tested in {', '.join(sorted(claim.tested_in))}")
                continue
            rows, checks = claim_rows(f, claim, tested, stats, n_boot)
            md += rows
            csv += checks
    return md, csv, untested


def matrix_rows(csv: list[dict]) -> list[dict]:
    """Claim x pair: each claim's verdict on each pair it is tested on (`*`: at this scaled setting)."""
    pairs = list(dict.fromkeys(r["pair"] for r in csv))
    rows: dict[str, dict] = {}
    for r in csv:
        label = f"`{r['claim']}`" + (f" ({r['implementation']})" if r["implementation"] else "")
        row = rows.setdefault(r["claim"], {"claim": label, **dict.fromkeys(pairs, "·")})
        row[r["pair"]] = r["verdict"] + ("*" if r["scaled"] and r["verdict"] != INCONCLUSIVE else "")
    return list(rows.values())


def render(md: list[dict], csv: list[dict], untested: list[str], stats: dict) -> str:
    rules = "; ".join(f"`{k}`: {v}" for k, v in RULES.items())
    header = (f"Claims tested by study `{stats['experiment']}`: seeds {stats['seeds']}, margin δ = "
              f"{100 * stats['margin']:.1f} pp, α = {stats['alpha']}. Each check is one pre-stated test on one pair, "
              f"paired by seed and not adjusted for the number of claims; 95% CIs are t intervals for accuracies "
              f"and percentile-bootstrap intervals for speedups (a over b = cost(b) / cost(a)). Rules: {rules}. "
              f"A claim holds where all its checks hold; inconclusive means n < {MIN_N} seeds, a CI too wide to "
              f"decide, or a method or pair the study did not run. \"{SCALED}\": the setting differs from the "
              f"published one as the row says.\n")
    if not md:
        return f"{header}\n(no claims tested)\n"
    table = lambda rows: tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True)  # noqa: E731
    notes = ("\n\nNamed but not tested in this study:\n\n" + "\n".join(f"- {u}" for u in untested)) if untested else ""
    return (f"{header}\n## Verdicts\n\n`*`: {SCALED}; `·`: not tested on that pair.\n\n{table(matrix_rows(csv))}\n\n"
            f"## Measurements\n\n{table(md)}{notes}\n")


CSV_COLUMNS = ["claim", "implementation", "source", "where", "words", "published_setting",
               "differs", "pair", "check", "quantity", "methods", "n", "value", "ci_low", "ci_high",
               "p_noninferior", "rule", "published", "check_verdict", "check_reason", "verdict",
               "scaled"]


def main(argv: list[str] | None = None) -> int:
    from infcop.foundations.config import read_yaml
    from infcop.foundations.paths import study_dir
    from infcop.engine.spec import study_configs
    from infcop.foundations.storage import atomic_write_csv, atomic_write_text, read_json
    from infcop.study.claims import study_claims

    parser = argparse.ArgumentParser(prog="python -m infcop.study.verdicts", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="the study's config (Snakemake passes the resolved one)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    try:
        cfg = next(iter(study_configs(read_yaml(args.config), args.overrides).values()))
        study = study_dir(cfg.experiment.results_dir, cfg.experiment.name)
        stats = read_json(study.stats)
        md, csv, untested = verdict_tables(study_claims(cfg), stats, cfg.study.bootstrap)
    except (ConfigError, StatsError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    atomic_write_csv(study.claims("csv"), csv, CSV_COLUMNS)
    atomic_write_text(study.claims("md"), render(md, csv, untested, stats))
    print(f"wrote {study.claims('md')} and {study.claims('csv')}: {len(md)} verdicts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
