import math

import numpy as np
import pytest
from scipy import stats as st

from infcop.stats import bootstrap_ci, compare_accuracy, compare_cost, geometric_mean, holm


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
    assert r.p_noninferior == pytest.approx(st.ttest_rel(np.add(a, 0.01), b, alternative="greater").pvalue)
    lo, hi = st.t.interval(0.95, 4, loc=d.mean(), scale=st.sem(d))
    assert (r.ci_low, r.ci_high) == pytest.approx((lo, hi))


def test_cost_speedup_against_scipy_directly():
    infcop = [10.0, 12.0, 8.0, 11.0, 9.0]
    comp = [30.0, 25.0, 24.0, 40.0, 20.0]
    r = compare_cost(infcop, comp, n_boot=2000)
    ratios = np.divide(comp, infcop)
    assert r.geomean == pytest.approx(st.gmean(ratios))
    assert r.p_ttest == pytest.approx(st.ttest_1samp(np.log(ratios), 0, alternative="greater").pvalue)
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
