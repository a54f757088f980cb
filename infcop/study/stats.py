"""The statistics protocol (docs/method.md): paired over seeds, Holm-Bonferroni within each family
(one dataset x model, separately for each test: see analysis.adjust_family).

Accuracy: the InfCoP-minus-competitor difference per seed; non-inferiority at margin δ is a
one-sided paired t-test of H0: mean difference ≤ −δ; a two-sided paired t-test and a 95% t CI
accompany it. Speedup: per-seed cost ratios competitor / InfCoP; their geometric mean with a
percentile-bootstrap 95% CI; a one-sided t-test of mean log ratio > 0, with the Wilcoxon
signed-rank test as a non-parametric check (its smallest attainable one-sided p is 2^-n).
When every seed gives the same difference (or ratio) there is no sampling noise to test against:
the verdict is decided exactly and its p-value is 0 or 1, so it still takes part in Holm.
A seed whose value is missing or not finite is dropped from its pair.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as st

MIN_N = 3  # below this no test is reported


@dataclass
class AccuracyComparison:
    n: int
    mean_diff: float
    sd_diff: float
    ci_low: float | None
    ci_high: float | None
    p_two_sided: float | None
    p_noninferior: float | None
    margin: float
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SpeedupComparison:
    n: int
    geomean: float
    ci_low: float | None
    ci_high: float | None
    p_ttest: float | None
    p_wilcoxon: float | None
    wilcoxon_min_p: float | None
    note: str = ""
    sd_log: float | None = None  # sample sd of the per-seed log ratios (what seeds_to_decide needs)

    def as_dict(self) -> dict:
        return asdict(self)


def _finite(a: np.ndarray) -> np.ndarray:
    return a[np.isfinite(a)]


def compare_accuracy(
    infcop: list[float | None], competitor: list[float | None], margin: float
) -> AccuracyComparison:
    """Paired accuracy difference infcop − competitor (fractions), seed by seed."""
    d = _finite(np.asarray(infcop, float) - np.asarray(competitor, float))
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    if n < MIN_N:
        return AccuracyComparison(
            n, mean, sd, None, None, None, None, margin, f"n={n} < {MIN_N}: no test"
        )
    # Compared exactly, not via sd == 0: the mean of identical floats can be off by an ulp.
    if np.all(d == d[0]):
        d0 = float(d[0])
        p_two, p_ni = (0.0 if d0 != 0 else 1.0), (0.0 if d0 > -margin else 1.0)
        return AccuracyComparison(
            n,
            d0,
            0.0,
            d0,
            d0,
            p_two,
            p_ni,
            margin,
            "same difference in every seed: decided exactly (d vs −δ), no t-test",
        )
    half = t_half_width(sd, n)
    p_two = float(st.ttest_1samp(d, 0.0).pvalue)
    p_ni = float(st.ttest_1samp(d + margin, 0.0, alternative="greater").pvalue)
    return AccuracyComparison(n, mean, sd, mean - half, mean + half, p_two, p_ni, margin)


def t_half_width(sd: float, n: int) -> float:
    """Half width of the two-sided 95% t confidence interval of a mean of n
    values with sample sd."""
    return float(st.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def mean_ci(values: list[float | None]) -> tuple[int, float, float | None, float | None]:
    """n, mean and 95% t CI of the finite values; no CI where n < MIN_N (as no
    test is run there)."""
    a = _finite(np.asarray(values, float))
    n = len(a)
    mean = float(a.mean()) if n else float("nan")
    if n < MIN_N:
        return n, mean, None, None
    half = t_half_width(float(a.std(ddof=1)), n)
    return n, mean, mean - half, mean + half


def geometric_mean(ratios: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(ratios))))


def bootstrap_ci(ratios: np.ndarray, n_boot: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95% CI of the geometric mean, resampling seeds (pairs)
    with replacement."""
    logs = np.log(ratios)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(logs), size=(n_boot, len(logs)))
    means = np.exp(logs[idx].mean(axis=1))
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def compare_cost(
    infcop: list[float], competitor: list[float], n_boot: int = 10_000, seed: int = 0
) -> SpeedupComparison:
    """Speedup of InfCoP over a competitor: per-seed ratios cost(competitor) / cost(InfCoP)."""
    a, b = np.asarray(infcop, float), np.asarray(competitor, float)
    ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    r = b[ok] / a[ok]
    n = len(r)
    if n == 0:
        return SpeedupComparison(0, float("nan"), None, None, None, None, None, "no paired costs")
    gm = geometric_mean(r)
    if n < MIN_N:
        return SpeedupComparison(n, gm, None, None, None, None, None, f"n={n} < {MIN_N}: no test")
    lo, hi = bootstrap_ci(r, n_boot, seed)
    logs = np.log(r)
    if np.all(logs == logs[0]):
        p_t, note = (0.0 if logs[0] > 0 else 1.0), "same ratio in every seed: decided exactly"
    else:
        p_t, note = float(st.ttest_1samp(logs, 0.0, alternative="greater").pvalue), ""
    nonzero = logs[logs != 0]
    p_w = float(st.wilcoxon(nonzero, alternative="greater").pvalue) if len(nonzero) else 1.0
    min_p = 0.5 ** len(nonzero) if len(nonzero) else None
    return SpeedupComparison(n, gm, lo, hi, p_t, p_w, min_p, note, float(logs.std(ddof=1)))


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1). A None or NaN p-value
    is missing: it is left out of the family (m counts only the finite ones) and comes back None."""
    present = [(p, i) for i, p in enumerate(pvalues) if p is not None and math.isfinite(p)]
    m = len(present)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


POWER = 0.8  # the power "seeds to decide" asks for
MAX_SEEDS = 1000  # beyond this a count is reported as not reachable


def seeds_to_decide(shift: float, sd: float, alpha: float, power: float = POWER) -> int | None:
    """Seeds a one-sided paired t-test at level `alpha` needs to reject with probability `power`
    when the true mean lies `shift` beyond the null value and the per-seed values have sd `sd` (the
    observed ones): the smallest n ≥ MIN_N with P(T > t_{1−α, n−1}) ≥ power, T noncentral t with
    n − 1 degrees of freedom and noncentrality shift·√n / sd. None where no n ≤ MAX_SEEDS does:
    the estimate lies on the null side (shift ≤ 0) or too close to it."""
    if not (shift > 0 and math.isfinite(sd)):
        return None
    if sd == 0:
        return MIN_N  # no noise: decided exactly as soon as a test is run
    for n in range(MIN_N, MAX_SEEDS + 1):
        critical = st.t.ppf(1 - alpha, n - 1)
        if st.nct.sf(critical, n - 1, shift * math.sqrt(n) / sd) >= power:
            return n
    return None


def holm_level(alpha: float, family: int) -> float:
    """The level Holm's first (strictest) step tests at: α / m for a family of m tests. "Seeds to
    decide" uses it, so the count suffices wherever the test falls in the step-down order."""
    return alpha / max(family, 1)


def mean_sd(values: list[float | None]) -> tuple[float, float]:
    """Mean and sample sd of the finite values (None and NaN are skipped); NaN where undefined."""
    a = _finite(np.asarray(values, float))
    mean = float(a.mean()) if len(a) else float("nan")
    sd = float(a.std(ddof=1)) if len(a) > 1 else float("nan")
    return mean, sd
