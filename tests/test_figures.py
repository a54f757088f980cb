"""Figure styling: a method looks the same in every figure and study; intervals stay in range."""

import numpy as np
import pytest
from scipy import stats as st

from infcop.methods import load_methods
from infcop.study.figures import family_styles, mean_ci, mean_range, method_style, method_styles


def test_every_registered_method_has_its_own_look():
    methods = load_methods()
    looks = {name: method_style(name, name, m.role.value) for name, m in methods.items()}
    assert len({s["color"] for s in looks.values()}) == len(methods)  # a colour of its own, too
    assert len({(s["color"], s["marker"]) for s in looks.values()}) == len(methods)


def test_a_methods_style_does_not_depend_on_the_study():
    family = {
        "lth": "lth",
        "infcop_if": "infcop_if",
        "eps05": "infcop_if",
        "sap": "sap",
        "wr": "wr",
    }
    roles = {
        "lth": "competitor",
        "infcop_if": "infcop",
        "eps05": "infcop",
        "sap": "competitor",
        "wr": "competitor",
    }
    small = method_styles(["lth", "eps05"], family, roles)
    large = method_styles(["wr", "sap", "infcop_if", "eps05", "lth"], family, roles)
    assert small == {m: large[m] for m in small}
    # a variant keeps its family's marker, in a shade of its colour and a line style of its own
    assert large["eps05"]["marker"] == large["infcop_if"]["marker"]
    assert large["eps05"]["color"] != large["infcop_if"]["color"] and large["eps05"]["ls"] != "-"
    assert (large["lth"]["ls"], large["infcop_if"]["ls"]) == ("--", "-")
    # the frontier's families take their base method's colour and marker
    frontier = family_styles(
        ["lth", "infcop_if aggregation=signed"],
        {"lth": False, "infcop_if aggregation=signed": True},
    )
    assert frontier["lth"]["color"] == large["lth"]["color"] and frontier["lth"]["ls"] == "--"
    assert frontier["infcop_if aggregation=signed"]["marker"] == large["infcop_if"]["marker"]


def test_accuracy_interval_is_the_t_interval_of_the_mean_clipped_to_the_range():
    accs = [0.99, 1.0, 0.90]
    a = np.array(accs) * 100
    half = st.t.ppf(0.975, 2) * a.std(ddof=1) / np.sqrt(3)
    mean, lo, hi = mean_ci(accs)
    assert mean == pytest.approx(a.mean()) and lo == pytest.approx(a.mean() - half)
    assert a.mean() + half > 100 and hi == 100.0
    assert mean_ci([0.5]) == (50.0, 50.0, 50.0)


def test_epochs_are_shown_with_their_range_over_seeds():
    assert mean_range([2.0, 6.0, 4.0]) == (4.0, 2.0, 6.0)  # a t interval: -0.97 to 8.97


def test_log_axis_labels_are_plain_numbers():
    from infcop.study.figures import plain_number

    assert [plain_number(v) for v in (0.05, 0.5, 2, 30, 500, 1000, 2000, 12345, 2e6)] == [
        "0.05",
        "0.5",
        "2",
        "30",
        "500",
        "1,000",
        "2,000",
        "12,300",
        "2,000,000",
    ]
