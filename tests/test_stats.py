import math

import numpy as np
import pytest
from scipy import stats as st

from infcop.study.stats import (
    bootstrap_ci,
    compare_accuracy,
    compare_cost,
    geometric_mean,
    holm,
    holm_level,
    mean_ci,
    mean_sd,
    seeds_to_decide,
)


def test_holm_hand_worked_example():
    # p sorted: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06 by monotonicity), 0.2 (x1 = 0.2)
    assert holm([0.03, 0.2, 0.01, 0.02]) == pytest.approx([0.06, 0.2, 0.04, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([None, 0.01, None]) == [None, 0.01, None]


def test_accuracy_against_scipy_directly():
    a = [0.95, 0.96, 0.94, 0.97, 0.955]
    b = [0.96, 0.955, 0.95, 0.965, 0.95]
    r = compare_accuracy(a, b, margin=0.01)
    d = np.subtract(a, b)
    assert r.mean_diff == pytest.approx(d.mean()) and r.sd_diff == pytest.approx(d.std(ddof=1))
    assert r.p_two_sided == pytest.approx(st.ttest_rel(a, b).pvalue)
    assert r.p_noninferior == pytest.approx(
        st.ttest_rel(np.add(a, 0.01), b, alternative="greater").pvalue
    )
    lo, hi = st.t.interval(0.95, 4, loc=d.mean(), scale=st.sem(d))
    assert (r.ci_low, r.ci_high) == pytest.approx((lo, hi))


def test_cost_speedup_against_scipy_directly():
    infcop = [10.0, 12.0, 8.0, 11.0, 9.0]
    comp = [30.0, 25.0, 24.0, 40.0, 20.0]
    r = compare_cost(infcop, comp, n_boot=2000)
    ratios = np.divide(comp, infcop)
    assert r.geomean == pytest.approx(st.gmean(ratios))
    assert r.p_ttest == pytest.approx(
        st.ttest_1samp(np.log(ratios), 0, alternative="greater").pvalue
    )
    assert r.p_wilcoxon == pytest.approx(st.wilcoxon(np.log(ratios), alternative="greater").pvalue)
    assert r.wilcoxon_min_p == 1 / 32 and r.p_wilcoxon == pytest.approx(1 / 32)  # all ratios > 1
    assert r.ci_low <= r.geomean <= r.ci_high


def test_bootstrap_ci_brackets_and_is_seeded():
    ratios = np.array([1.5, 2.0, 2.5, 3.0, 1.8, 2.2])
    lo, hi = bootstrap_ci(ratios, 4000, seed=1)
    assert lo < geometric_mean(ratios) < hi and (lo, hi) == bootstrap_ci(ratios, 4000, seed=1)
    assert lo >= ratios.min() and hi <= ratios.max()


def test_small_n_reports_no_test():
    r = compare_accuracy([0.9, 0.91], [0.8, 0.85], 0.01)
    assert r.p_two_sided is None and r.p_noninferior is None and "no test" in r.note
    s = compare_cost([1.0, 1.0], [2.0, 3.0])
    assert s.p_ttest is None and "no test" in s.note and s.geomean == pytest.approx(math.sqrt(6))


def test_holm_with_ties_and_missing_values():
    # present: 0.01, 0.01, 0.04 (m = 3) -> 3 x 0.01 = 0.03, max(0.03, 2 x 0.01) = 0.03,
    # max(0.03, 1 x 0.04) = 0.04
    assert holm([0.01, None, 0.01, 0.04, math.nan]) == pytest.approx([0.03, None, 0.03, 0.04, None])
    assert holm([None, math.nan]) == [None, None]
    assert holm([]) == []


def test_holm_leaves_nan_out_of_the_family():
    # present sorted: 0.001, 0.01, 0.02 with m = 3 -> 0.003, 0.02, max(0.02, 1 x 0.02) = 0.02
    assert holm([0.01, math.nan, 0.02, 0.001]) == pytest.approx([0.02, None, 0.02, 0.003])


def test_accuracy_ci_and_pvalues_against_scipy_t_distribution():
    a = np.array([0.912, 0.905, 0.921, 0.899, 0.915, 0.908])
    b = np.array([0.915, 0.910, 0.913, 0.904, 0.917, 0.902])
    margin = 0.005
    r = compare_accuracy(list(a), list(b), margin)
    d = a - b
    n, mean, se = len(d), d.mean(), d.std(ddof=1) / math.sqrt(len(d))
    t = mean / se
    assert r.n == n and r.note == ""
    assert r.p_two_sided == pytest.approx(2 * st.t.sf(abs(t), n - 1))
    assert r.p_noninferior == pytest.approx(st.t.sf((mean + margin) / se, n - 1))
    half = st.t.ppf(0.975, n - 1) * se
    assert (r.ci_low, r.ci_high) == pytest.approx((mean - half, mean + half))


@pytest.mark.parametrize(
    ("diff", "p_two", "p_ni"),
    [
        (-(2**-7), 0.0, 0.0),  # -0.78 pp, inside the 1 pp margin: non-inferior
        (-(2**-6), 0.0, 1.0),  # -1.56 pp, beyond the margin: not
        (0.0, 1.0, 0.0),  # no difference at all
    ],
)
def test_accuracy_same_difference_in_every_seed_is_decided_exactly(diff, p_two, p_ni):
    a = [0.5, 0.75, 0.625, 0.875]  # dyadic, so every difference is exactly `diff`
    r = compare_accuracy(a, [x - diff for x in a], margin=0.01)
    assert (r.n, r.mean_diff, r.sd_diff) == (4, diff, 0.0)
    assert (r.ci_low, r.ci_high) == (diff, diff)
    assert (r.p_two_sided, r.p_noninferior) == (p_two, p_ni)
    assert r.note == "same difference in every seed: decided exactly (d vs −δ), no t-test"


def test_accuracy_identical_differences_not_exact_in_the_mean_are_still_exact():
    # the same difference 0.1 in every seed, but the mean of three copies of 0.1 is off by an ulp
    assert np.mean([0.1] * 3) != 0.1
    r = compare_accuracy([0.1] * 3, [0.0] * 3, margin=0.01)
    assert (r.mean_diff, r.sd_diff, r.p_two_sided, r.p_noninferior) == (0.1, 0.0, 0.0, 0.0)
    assert holm([r.p_noninferior, 0.04]) == pytest.approx(
        [0.0, 0.04]
    )  # it stays in the Holm family


def test_accuracy_drops_seeds_without_a_finite_difference():
    a = [0.91, math.nan, 0.93, 0.90, None]
    b = [0.90, 0.92, 0.925, 0.905, 0.91]
    r = compare_accuracy(a, b, margin=0.01)
    kept_a, kept_b = [0.91, 0.93, 0.90], [0.90, 0.925, 0.905]
    d = np.subtract(kept_a, kept_b)
    assert (
        r.n == 3
        and r.mean_diff == pytest.approx(d.mean())
        and r.sd_diff == pytest.approx(d.std(ddof=1))
    )
    assert r.p_two_sided == pytest.approx(st.ttest_rel(kept_a, kept_b).pvalue)
    assert r.p_noninferior == pytest.approx(
        st.ttest_rel(np.add(kept_a, 0.01), kept_b, alternative="greater").pvalue
    )


def test_accuracy_with_too_few_finite_pairs_reports_no_test():
    r = compare_accuracy([0.9, math.nan, 0.91], [0.8, 0.8, math.nan], 0.01)
    assert r.n == 1 and r.mean_diff == pytest.approx(0.1) and math.isnan(r.sd_diff)
    assert r.p_two_sided is None and r.p_noninferior is None and r.note == "n=1 < 3: no test"


@pytest.mark.parametrize(("factor", "p"), [(2.0, 0.0), (1.0, 1.0), (0.5, 1.0)])
def test_cost_same_ratio_in_every_seed_is_decided_exactly(factor, p):
    infcop = [1.0, 2.0, 4.0, 8.0]
    r = compare_cost(infcop, [factor * x for x in infcop], n_boot=500)
    assert r.n == 4 and r.geomean == pytest.approx(factor)
    assert r.p_ttest == p and r.note == "same ratio in every seed: decided exactly"
    assert (r.ci_low, r.ci_high) == pytest.approx((factor, factor))


def test_cost_drops_missing_and_nonpositive_costs():
    infcop = [10.0, math.nan, 8.0, 0.0, 11.0, 9.0, None]
    comp = [30.0, 25.0, 24.0, 40.0, math.inf, 18.0, 20.0]
    r = compare_cost(infcop, comp, n_boot=500)
    ratios = np.array([30 / 10, 24 / 8, 18 / 9])
    assert r.n == 3 and r.geomean == pytest.approx(st.gmean(ratios))
    assert r.p_ttest == pytest.approx(
        st.ttest_1samp(np.log(ratios), 0, alternative="greater").pvalue
    )
    assert compare_cost([math.nan, 1.0], [2.0, math.nan]).note == "no paired costs"


def test_bootstrap_ci_of_compare_cost_contains_the_geometric_mean():
    infcop = [10.0, 12.0, 8.0, 11.0, 9.0, 10.0, 7.0]
    comp = [14.0, 30.0, 9.0, 25.0, 12.0, 11.0, 20.0]
    r = compare_cost(infcop, comp, n_boot=3000)
    gm = math.exp(np.mean(np.log(np.divide(comp, infcop))))
    assert r.geomean == pytest.approx(gm) and r.ci_low < gm < r.ci_high


def test_wilcoxon_smallest_p_is_two_to_the_minus_n():
    # six seeds, one with ratio exactly 1 (a zero log-ratio carries no sign): n = 5 signed ratios
    infcop = [1.0] * 6
    comp = [2.0, 3.0, 1.0, 4.0, 1.5, 2.5]
    r = compare_cost(infcop, comp, n_boot=500)
    assert r.wilcoxon_min_p == 2.0**-5
    assert r.p_wilcoxon == pytest.approx(2.0**-5)  # every signed ratio > 1 reaches the minimum
    worse = compare_cost(infcop, [2.0, 3.0, 1.0, 4.0, 1.5, 0.5], n_boot=500)
    assert worse.wilcoxon_min_p == 2.0**-5 and worse.p_wilcoxon > 2.0**-5


def test_mean_sd_skips_missing_values():
    assert mean_sd([0.9, math.nan, 0.8, None]) == pytest.approx((0.85, math.sqrt(0.005)))
    m, sd = mean_sd([0.7, math.nan])
    assert m == pytest.approx(0.7) and math.isnan(sd)
    assert all(math.isnan(x) for x in mean_sd([math.nan, None])) and all(
        math.isnan(x) for x in mean_sd([])
    )


def test_mean_ci_is_the_t_interval_and_needs_three_values():
    x = [0.981, 0.983, 0.9805, 0.984]
    n, mean, lo, hi = mean_ci(x + [None, float("nan")])  # missing values are skipped
    assert (n, mean) == (4, pytest.approx(np.mean(x)))
    assert (lo, hi) == pytest.approx(st.t.interval(0.95, 3, loc=np.mean(x), scale=st.sem(x)))
    assert mean_ci([0.98, 0.99]) == (2, pytest.approx(0.985), None, None)


# ---------------------------------------------------------------- seeds to decide
def _power(n: int, shift: float, sd: float, alpha: float) -> float:
    """Power of the one-sided one-sample t-test, written from its definition with scipy's nct."""
    df = n - 1
    return float(st.nct.sf(st.t.ppf(1 - alpha, df), df, shift / (sd / np.sqrt(n))))


@pytest.mark.parametrize(
    "shift, sd, alpha", [(0.5, 1.0, 0.05), (0.004, 0.006, 0.05 / 6), (1.0, 0.4, 0.025)]
)
def test_seeds_to_decide_is_the_smallest_n_with_80_percent_power(shift, sd, alpha):
    n = seeds_to_decide(shift, sd, alpha)
    assert _power(n, shift, sd, alpha) >= 0.8
    assert n == 3 or _power(n - 1, shift, sd, alpha) < 0.8


def test_seeds_to_decide_matches_the_textbook_value_and_a_simulation():
    # Cohen's d = 0.5, one-sided α = 0.05, power 0.8: a one-sample (paired) t-test needs n = 27
    # (G*Power's "means: difference from constant" gives 27, actual power 0.812)
    assert seeds_to_decide(0.5, 1.0, 0.05) == 27
    rng = np.random.default_rng(0)
    x = rng.normal(0.5, 1.0, size=(20_000, 27))
    t = x.mean(axis=1) / (x.std(axis=1, ddof=1) / np.sqrt(27))
    assert np.mean(t > st.t.ppf(0.95, 26)) == pytest.approx(0.812, abs=0.012)


def test_seeds_to_decide_where_no_number_of_seeds_would():
    assert seeds_to_decide(-0.01, 0.01, 0.05) is None  # the estimate lies on the null side
    assert seeds_to_decide(0.0, 0.01, 0.05) is None
    assert seeds_to_decide(1e-6, 1.0, 0.05) is None  # beyond MAX_SEEDS
    assert seeds_to_decide(0.01, 0.0, 0.05) == 3  # no noise: decided as soon as a test is run
    assert holm_level(0.05, 4) == 0.0125 and holm_level(0.05, 0) == 0.05


def test_undecided_comparisons_carry_seeds_to_decide_at_holms_strictest_level():
    from infcop.study.analysis import add_seeds_to_decide

    def test(p, adj, mean, sd):
        return {
            "p_noninferior": p,
            "p_noninferior_adj": adj,
            "mean_diff": mean,
            "sd_diff": sd,
            "margin": 0.01,
        }

    tests = [
        test(0.2, 0.4, -0.004, 0.01),
        test(0.001, 0.002, 0.0, 0.001),
        test(0.6, 0.6, -0.03, 0.01),
    ]
    add_seeds_to_decide(tests, alpha=0.05)
    want = next(n for n in range(3, 1000) if _power(n, 0.006, 0.01, 0.05 / 3) >= 0.8)
    # the second is decided; the third lies beyond −δ, so no number of seeds would show it
    assert [t["seeds_to_decide"] for t in tests] == [want, None, None]


def test_comparison_cells_show_the_unadjusted_p_where_it_disagrees_and_the_seeds_to_decide():
    from infcop.study.tables import comparison_rows

    def row(p, adj, seeds):
        acc = {
            "n": 3,
            "mean_diff": -0.004,
            "ci_low": -0.02,
            "ci_high": 0.01,
            "p_noninferior": p,
            "p_noninferior_adj": adj,
            "seeds_to_decide": seeds,
        }
        return {
            "infcop": "a",
            "competitor": "b",
            "ablation": False,
            "accuracy": acc,
            "noninferior": adj < 0.05,
            "speedup": {},
        }

    rows = [row(0.039, 0.28, 9), row(0.2, 0.4, None), row(0.001, 0.003, None)]
    stats = {"alpha": 0.05, "pairs": {"p": {"comparisons": rows}}}
    cells = [r["non-inferior (p_adj)"] for r in comparison_rows(stats)]
    assert cells == ["no (0.280; unadjusted 0.039; n→9)", "no (0.400; n→∞)", "yes (0.003)"]
