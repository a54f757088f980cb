"""A verdict for every claim a study tests: measured from stats.json, judged by the claim's rule.

    python -m infcop.study.verdicts --config <the study's config>
        -> results/<study>/claims.{md,csv}

Each check is measured on one pair from the per-seed values in stats.json, with the statistics' own
functions (paired by seed; t CI for accuracies, percentile-bootstrap CI for speedups).

Multiplicity (one policy for claims and the comparison tables, docs/statistics.md): a decision made
by a p-value uses the Holm-adjusted p of its family, one dataset x model and one test. A claim
check that asks a question the tables answer (InfCoP vs a competitor, a method vs dense) takes the
tables' adjusted p, so both give one answer; the checks the tables do not make (e.g. competitor vs
competitor) form their own family per pair. Where adjusted and unadjusted p fall on different sides
of α both are shown. Rules that read a CI use the unadjusted 95% CI. Every quantity is better when
higher: a CI entirely above a claimed range "exceeds" the claim, which is no refutation; the
claim's other checks decide.

A check is inconclusive, with what the data show, where a method or pair was not run, where fewer
than MIN_N seeds pair up, or where the CI leaves the rule undecided; it then states the seeds that
would give 80% power to decide it (stats.seeds_to_decide). A claim does not hold where any check
fails, is inconclusive where any check is, exceeds where every check holds or exceeds and one
exceeds, and holds otherwise; where the study's setting differs from the published one the verdict
is qualified "at this scaled setting".
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import dataclass, replace

from tabulate import tabulate

from infcop.foundations.config import ConfigError
from infcop.study.claims import QUANTITIES, RULES, Check, Claim, ClaimFile, TestedIn
from infcop.study.stats import (
    MIN_N,
    compare_accuracy,
    compare_cost,
    holm,
    holm_level,
    mean_ci,
    seeds_to_decide,
)

HOLDS, FAILS, INCONCLUSIVE, EXCEEDS = "holds", "does not hold", "inconclusive", "exceeds"
CI_SIDE = 0.025  # one side of the 95% CI a CI rule reads: the level "seeds to decide" uses for it
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
    sd: float | None = None  # sd of the per-seed values (differences; log ratios for speedups)
    p_adj: float | None = None  # p_noninferior adjusted by Holm over its family (policy above)
    family: int = 1  # the size of that family

    @property
    def p_decisive(self) -> float | None:
        return self.p_noninferior if self.p_adj is None else self.p_adj


def _per_seed(entry: dict, what: str) -> dict:
    if "per_seed" not in entry:
        raise StatsError(
            f"stats.json has no per-seed values for {what} (written by an older harness); "
            "recompute it: snakemake --cores all --forcerun stats"
        )
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
        return Measurement(n, mean, lo, hi, sd=_sd(list(dense.values())))
    if q.startswith("speedup_"):
        a, b = runs
        seeds = sorted(set(a) & set(b), key=int)
        cost = q.removeprefix("speedup_")
        c = compare_cost([a[s][cost] for s in seeds], [b[s][cost] for s in seeds], n_boot)
        return Measurement(c.n, c.geomean, c.ci_low, c.ci_high, sd=c.sd_log)
    a = {s: v["test_acc"] for s, v in runs[0].items()}
    b = {s: v["test_acc"] for s, v in runs[1].items()} if q == "accuracy_diff" else dense
    seeds = sorted(set(a) & set(b), key=int)
    acc = compare_accuracy([a[s] for s in seeds], [b[s] for s in seeds], margin)
    return Measurement(
        acc.n, acc.mean_diff, acc.ci_low, acc.ci_high, acc.p_noninferior, sd=acc.sd_diff
    )


def _sd(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.stdev(finite) if len(finite) > 1 else None


def tables_test(check: Check, ps: dict) -> dict | None:
    """The comparison tables' entry for the question `check` asks (InfCoP vs competitor, method vs
    dense), with its Holm-adjusted p, or None where the tables do not ask it."""
    if check.rule != "noninferior":
        return None
    if check.quantity == "accuracy_vs_dense":
        return ps["methods"][check.methods[0]].get("delta_vs_dense")
    a, b = check.methods
    rows = ps.get("comparisons", [])
    return next((c["accuracy"] for c in rows if (c["infcop"], c["competitor"]) == (a, b)), None)


def adjust(checks: list[tuple[Check, Measurement]], ps: dict) -> list[Measurement]:
    """Each measurement of one pair with its Holm-adjusted p under the study's one policy: the
    tables' own where they ask the same question, else Holm over the pair's other claim checks (one
    per question)."""
    out, own = [], {}
    for check, m in checks:
        if m.missing or m.p_noninferior is None:
            out.append(m)
            continue
        t = tables_test(check, ps)
        if t is not None and t.get("p_noninferior_adj") is not None:
            family = [c["accuracy"] if "accuracy" in c else c for c in _family(check, ps)]
            out.append(
                replace(
                    m,
                    p_adj=t["p_noninferior_adj"],
                    family=sum(f.get("p_noninferior") is not None for f in family),
                )
            )
        else:
            own.setdefault((check.quantity, check.methods), m.p_noninferior)
            out.append(m)
    adjusted = dict(zip(own, holm(list(own.values()))))
    return [
        replace(m, p_adj=adjusted[(c.quantity, c.methods)], family=len(own))
        if (c.quantity, c.methods) in adjusted and m.p_adj is None
        else m
        for (c, _), m in zip(checks, out)
    ]


def _family(check: Check, ps: dict) -> list[dict]:
    if check.quantity == "accuracy_vs_dense":
        return [m["delta_vs_dense"] for m in ps["methods"].values() if "delta_vs_dense" in m]
    return ps.get("comparisons", [])


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
    """(holds | exceeds | does not hold | inconclusive, what the data show) for one measured check;
    an inconclusive one ends with the seeds that would decide it."""
    if m.missing:
        return INCONCLUSIVE, m.missing
    if m.n < MIN_N or m.ci_low is None:
        return INCONCLUSIVE, f"n = {m.n} < {MIN_N} seeds"
    status, why = _judge_ci(check, m, margin, alpha)
    if status == INCONCLUSIVE:
        why += f"; {_seeds_note(check, m, margin, alpha)}"
    return status, why


def _judge_ci(check: Check, m: Measurement, margin: float, alpha: float) -> tuple[str, str]:
    q, lo, hi, ci = check.quantity, m.ci_low, m.ci_high, _ci(check.quantity, m)
    if check.rule == "noninferior":
        p = _p_text(m, alpha)
        if m.p_decisive < alpha:
            return HOLDS, f"non-inferior at δ ({p})"
        if hi < -margin:
            return FAILS, f"inferior beyond δ: 95% CI {ci} lies below −δ"
        if hi < 0:
            return INCONCLUSIVE, (
                f"worse, not shown inferior beyond δ: 95% CI {ci} lies below 0 and reaches −δ ({p})"
            )
        if lo > -margin:
            return INCONCLUSIVE, f"95% CI {ci} lies above −δ, but not significant after Holm ({p})"
        return INCONCLUSIVE, f"not shown non-inferior: 95% CI {ci} reaches below −δ ({p})"
    if check.rule == "overlaps":
        low, high = check.value
        if lo > high:
            return EXCEEDS, (
                f"95% CI {ci} lies above {published(check, margin)}: beyond the "
                "claim, in its direction"
            )
        if hi < low:
            return FAILS, f"95% CI {ci} lies below {published(check, margin)}"
        if lo < low and hi > high:
            return INCONCLUSIVE, (
                f"95% CI {ci} contains all of {published(check, margin)} and more on both sides"
            )
        return HOLDS, f"95% CI {ci} overlaps {published(check, margin)}"
    x, above = check.value, check.rule == "greater_than"
    if (lo > x) if above else (hi < x):
        return HOLDS, f"95% CI {ci} {published(check, margin)}"
    if (hi <= x) if above else (lo >= x):
        return FAILS, f"95% CI {ci} is not {published(check, margin)}"
    return INCONCLUSIVE, f"95% CI {ci} contains {fmt(q, x)}"


def _p_text(m: Measurement, alpha: float) -> str:
    """The adjusted p, and the unadjusted one beside it where they fall on different sides of α."""
    text = f"Holm p_adj = {m.p_decisive:.3g}, family of {m.family}"
    if m.p_adj is not None and (m.p_adj < alpha) != (m.p_noninferior < alpha):
        text += f"; unadjusted p = {m.p_noninferior:.3g}"
    return text


def decision_shift(check: Check, m: Measurement, margin: float) -> float:
    """How far the estimate lies beyond the value its test must reject (log scale for ratios); ≤ 0
    where it lies on the null side. A range is decided once its CI excludes the end farther from the
    estimate."""
    log = QUANTITIES[check.quantity].unit == "x"
    f = (lambda v: math.log(v) if v > 0 else -math.inf) if log else (lambda v: v)  # noqa: E731
    est = f(m.value)
    if check.rule == "noninferior":
        return est + margin
    if check.rule == "overlaps":
        low, high = (f(v) for v in check.value)
        return max(est - low, high - est)
    return est - f(check.value) if check.rule == "greater_than" else f(check.value) - est


def seeds_needed(check: Check, m: Measurement, margin: float, alpha: float) -> int | None:
    """Seeds for 80% power to decide the check at its observed mean and sd: a p-value rule at Holm's
    strictest level for its family (α / m), a CI rule at the one-sided level its 95% CI reads
    (2.5%)."""
    level = holm_level(alpha, m.family) if check.rule == "noninferior" else CI_SIDE
    sd = m.sd if m.sd is not None else math.nan
    return seeds_to_decide(decision_shift(check, m, margin), sd, level)


def _seeds_note(check: Check, m: Measurement, margin: float, alpha: float) -> str:
    n = seeds_needed(check, m, margin, alpha)
    if n is None:
        return (
            "seeds to decide: none (the estimate lies on the null side, or too close to it for "
            "any number)"
        )
    return f"seeds to decide: {n} (80% power at the observed mean and sd)"


def _seeds_column(
    check: Check, m: Measurement, status: str, margin: float, alpha: float
) -> int | None:
    undecided = status == INCONCLUSIVE and not m.missing and m.ci_low is not None
    return seeds_needed(check, m, margin, alpha) if undecided else None


def combine(judged: list[tuple[str, str]]) -> tuple[str, str]:
    """One failing check fails a claim; else one inconclusive check leaves it inconclusive; else it
    exceeds where a check exceeds the claimed range, and holds where every check holds."""
    for status in (FAILS, INCONCLUSIVE, EXCEEDS):
        reasons = [why for s, why in judged if s == status]
        if reasons:
            return status, "; ".join(
                dict.fromkeys(reasons)
            )  # two checks of one missing run: said once
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


Measured = dict[tuple[str, Check], Measurement]


def measure_all(checks: list[tuple[str, Check]], stats: dict, n_boot: int) -> Measured:
    """Every (pair, check) measured and adjusted for multiplicity, pair by pair (module doc)."""
    out: Measured = {}
    for pair in dict.fromkeys(p for p, _ in checks):
        ps = stats["pairs"].get(pair)
        mine = list(dict.fromkeys(c for p, c in checks if p == pair))
        if not ps:
            missing = Measurement(missing=f"pair {pair} not run in this study")
            out.update({(pair, c): missing for c in mine})
            continue
        measured = [(c, measure(c, ps, stats["margin"], n_boot)) for c in mine]
        out.update({(pair, c): m for c, m in zip(mine, adjust(measured, ps))})
    return out


def claim_rows(
    f: ClaimFile,
    claim: Claim,
    tested: TestedIn,
    stats: dict,
    n_boot: int,
    measured: Measured | None = None,
) -> tuple[list[dict], list[dict]]:
    """The claim's markdown rows (one per pair) and CSV rows (one per pair x check). `measured`: the
    study's claim checks, measured and adjusted together (verdict_tables); by default this
    claim's."""
    margin, alpha = stats["margin"], stats["alpha"]
    if measured is None:
        measured = measure_all([(p, c) for p in tested.pairs for c in claim.checks], stats, n_boot)
    md, csv = [], []
    for pair in tested.pairs:
        results = []
        for check in claim.checks:
            m = measured[(pair, check)]
            results.append((check, m, judge(check, m, margin, alpha)))
        status, why = combine([j for _, _, j in results])
        verdict = f"**{status}**" + (
            f" {SCALED}" if tested.differs and status != INCONCLUSIVE else ""
        )
        n = min((m.n for _, m, _ in results if not m.missing), default=0)
        md.append(
            {
                "claim": f"{claim_label(claim)}: {claim.words}",
                "source": f"{f.source}, {claim.where}",
                "tested (pair, n seeds)": f"{pair}, n = {n}",
                "measured (95% CI)": "; ".join(
                    f"{_label(c)}: {fmt(c.quantity, m.value)} {_ci(c.quantity, m)}"
                    for c, m, _ in results
                    if not m.missing
                ),
                "published / rule": "; ".join(published(c, margin) for c in claim.checks),
                "setting here vs published": tested.differs or "as published",
                "verdict": verdict + (f": {why}" if why else ""),
            }
        )
        for i, (c, m, (s, w)) in enumerate(results):
            csv.append(
                {
                    "claim": claim.id,
                    "implementation": claim.implementation,
                    "source": f.source,
                    "where": claim.where,
                    "words": claim.words,
                    "published_setting": claim.setting,
                    "differs": tested.differs,
                    "pair": pair,
                    "check": i,
                    "quantity": c.quantity,
                    "methods": " ".join(c.methods),
                    "n": m.n,
                    "value": m.value,
                    "ci_low": m.ci_low,
                    "ci_high": m.ci_high,
                    "p_noninferior": m.p_noninferior,
                    "p_noninferior_adj": m.p_adj,
                    "holm_family": m.family if m.p_adj is not None else None,
                    "seeds_to_decide": _seeds_column(c, m, s, margin, alpha),
                    "rule": c.rule,
                    "published": published(c, margin),
                    "check_verdict": s,
                    "check_reason": w,
                    "verdict": status,
                    "scaled": bool(tested.differs),
                }
            )
    return md, csv


def verdict_tables(
    files: list[ClaimFile], stats: dict, n_boot: int
) -> tuple[list[dict], list[dict], list[str]]:
    """Markdown rows, CSV rows, and a note for each named claim that this study does not test."""
    study = stats["experiment"]
    md, csv, untested = [], [], []
    checks = [
        (pair, check)
        for f in files
        for c in f.claims
        if study in c.tested_in
        for pair in c.tested_in[study].pairs
        for check in c.checks
    ]
    measured = measure_all(checks, stats, n_boot)
    for f in files:
        for claim in f.claims:
            tested = claim.tested_in.get(study)
            if tested is None:
                untested.append(
                    f"`{claim.id}` ({f.path}): tested in {', '.join(sorted(claim.tested_in))}"
                )
                continue
            rows, checks = claim_rows(f, claim, tested, stats, n_boot, measured)
            md += rows
            csv += checks
    return md, csv, untested


def matrix_rows(csv: list[dict]) -> list[dict]:
    """Claim x pair: each claim's verdict on each pair it is tested on (`*`: at
    this scaled setting)."""
    pairs = list(dict.fromkeys(r["pair"] for r in csv))
    rows: dict[str, dict] = {}
    for r in csv:
        label = f"`{r['claim']}`" + (f" ({r['implementation']})" if r["implementation"] else "")
        row = rows.setdefault(r["claim"], {"claim": label, **dict.fromkeys(pairs, "·")})
        row[r["pair"]] = r["verdict"] + (
            "*" if r["scaled"] and r["verdict"] != INCONCLUSIVE else ""
        )
    return list(rows.values())


HEADER = """Each check is measured on one pair, paired by seed; 95% CIs are t intervals for
accuracies and percentile-bootstrap intervals for speedups (a over b = cost(b) / cost(a)).
Rules: {rules}. Multiplicity, as in the comparison tables: a p-value decides after Holm within \
its pair and test (a
check the tables also make takes their adjusted p; the others form the pair's claim family); the
unadjusted p is shown beside it where the two disagree. A claim holds where all its checks hold,
exceeds where they hold or exceed a claimed range (a CI above it, in the claim's direction) and at
least one exceeds, does not hold where any check fails. Inconclusive: n < {min_n} seeds, a CI that
leaves the rule undecided (with the seeds that would give 80% power to decide it), or a method or
pair the study did not run. "{scaled}": the setting differs from the published one as the row
says."""


def _para(text: str) -> str:
    return " ".join(text.split())


def render(md: list[dict], csv: list[dict], untested: list[str], stats: dict) -> str:
    rules = "; ".join(f"`{k}`: {v}" for k, v in RULES.items())
    header = (
        f"Claims tested by study `{stats['experiment']}`: seeds {stats['seeds']}, margin δ = "
        f"{100 * stats['margin']:.1f} pp, α = {stats['alpha']}. "
        + _para(HEADER).format(rules=rules, min_n=MIN_N, scaled=SCALED)
        + "\n"
    )
    if not md:
        return f"{header}\n(no claims tested)\n"
    table = lambda rows: tabulate(  # noqa: E731
        rows, headers="keys", tablefmt="github", disable_numparse=True
    )
    notes = (
        ("\n\nNamed but not tested in this study:\n\n" + "\n".join(f"- {u}" for u in untested))
        if untested
        else ""
    )
    return (
        f"{header}\n## Verdicts\n\n`*`: {SCALED}; `·`: not tested on that "
        f"pair.\n\n{table(matrix_rows(csv))}\n\n"
        f"## Measurements\n\n{table(md)}{notes}\n"
    )


CSV_COLUMNS = [
    "claim",
    "implementation",
    "source",
    "where",
    "words",
    "published_setting",
    "differs",
    "pair",
    "check",
    "quantity",
    "methods",
    "n",
    "value",
    "ci_low",
    "ci_high",
    "p_noninferior",
    "p_noninferior_adj",
    "holm_family",
    "seeds_to_decide",
    "rule",
    "published",
    "check_verdict",
    "check_reason",
    "verdict",
    "scaled",
]


def main(argv: list[str] | None = None) -> int:
    from infcop.foundations.config import read_yaml
    from infcop.foundations.paths import study_dir
    from infcop.engine.spec import study_configs
    from infcop.foundations.storage import atomic_write_csv, atomic_write_text, read_json
    from infcop.study.claims import study_claims

    parser = argparse.ArgumentParser(
        prog="python -m infcop.study.verdicts", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--config", required=True, help="the study's config (Snakemake passes the resolved one)"
    )
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
