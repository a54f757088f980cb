"""Figures per dataset x model (PNG and PDF): accuracy vs density, epochs per
level, cost vs density.

A method looks the same in every figure of every study: its family (registered base method) fixes
its colour (from its role's palette) and marker by the family's place in the method registry,
which adding a method to a study never changes; the family's own entry is drawn in that colour with
the line style of its role (solid InfCoP, dashed competitor, dash-dot ablation, dotted control), and
a study's variant of it in a shade of that colour and a line style chosen by the variant's name.
Every method must stay visible even when its curve equals another's (infcop_gf firing exactly when
infcop_if does): a series equal to one drawn before it is redrawn with a larger hollow marker and
named in a note under its panel ("coincide: a = b"). Accuracy is shown with the 95% t interval of
the mean over seeds, which is clipped to [0, 100] %; epochs per level with their range over seeds
(with n = 3 a t interval of a count ran from 0 to past the cap, values no run can train); densities
are labelled in percent; the legend sits beside the panels, never over the data.
"""

from __future__ import annotations

import csv
import math
import textwrap
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import stats as st

from infcop.foundations.paths import FIGURE_FORMATS, StudyDir

MARKERS = "osD^vP*Xh<>pd"
# A family's colour comes from its role's palette (InfCoP cool, competitors warm, ablations purple,
# controls grey), picked by the family's place among the registered methods of that role.
ROLE_COLOURS = {
    "infcop": ("#1f77b4", "#2ca02c", "#17becf", "#637939", "#393b79", "#6baed6"),
    "competitor": (
        "#d62728",
        "#ff7f0e",
        "#8c564b",
        "#e377c2",
        "#843c39",
        "#e6ab02",
        "#bc80bd",
        "#fd8d3c",
    ),
    "ablation": (
        "#9467bd",
        "#e7298a",
        "#7570b3",
        "#1b9e77",
        "#a6761d",
        "#bcbd22",
        "#c5b0d5",
        "#66a61e",
    ),
    "control": ("#7f7f7f", "#525252", "#b0b0b0"),
}
ROLE_STYLES = {
    "infcop": "-",
    "competitor": "--",
    "ablation": "-.",
    "control": ":",
}  # a family's own entry
VARIANT_STYLES = (
    (0, (5, 1, 1, 1, 1, 1)),
    (0, (1, 3)),
    (0, (8, 2)),
    (0, (3, 1, 1, 1)),
    (0, (6, 2, 1, 2)),
    (0, (2, 1)),
    (0, (10, 3, 2, 3)),
)  # a study's variants of it
SHADES = (
    -0.45,
    -0.25,
    0.3,
    0.5,
)  # a variant's colour: darker (< 0) or lighter (> 0) than its family's


def _stable(name: str) -> int:
    """A number fixed by `name` alone (Python's hash() changes between processes)."""
    return zlib.crc32(name.encode())


def family_look(family: str, role: str) -> tuple[str, str]:
    """(colour, marker) of a family, by its place in the method registry (overall for the marker,
    among its role's methods for the colour); a family the registry lacks by its name."""
    from infcop.methods import load_methods

    methods = load_methods()
    if family not in methods:
        k = _stable(family)
        palette = ROLE_COLOURS.get(role, ROLE_COLOURS["control"])
        return palette[k % len(palette)], MARKERS[k % len(MARKERS)]
    role = methods[family].role.value
    same_role = [n for n, m in methods.items() if m.role.value == role]
    palette = ROLE_COLOURS.get(role, ROLE_COLOURS["control"])
    i = same_role.index(family)
    colour = palette[i % len(palette)]
    if i >= len(palette):  # more methods of this role than colours: a shade of one, per round
        colour = _shade(colour, SHADES[(i // len(palette) - 1) % len(SHADES)])
    return colour, MARKERS[list(methods).index(family) % len(MARKERS)]


def family_index(family: str) -> int:
    """The family's place in the method registry (the figures' order); unregistered ones last."""
    from infcop.methods import load_methods

    names = list(load_methods())
    return names.index(family) if family in names else len(names) + _stable(family) % 997


def _shade(colour: str, amount: float) -> tuple[float, float, float]:
    import matplotlib.colors as mcolors

    rgb = np.array(mcolors.to_rgb(colour))
    return tuple(rgb + (1 - rgb) * amount if amount > 0 else rgb * (1 + amount))


def method_style(name: str, family: str, role: str) -> dict:
    """Colour, marker and line style of one method (or variant), the same in every
    figure and study."""
    colour, marker = family_look(family, role)
    if name == family:
        return {"color": colour, "marker": marker, "ls": ROLE_STYLES.get(role, "-")}
    k = _stable(name) % (len(SHADES) * len(VARIANT_STYLES))  # coprime lengths: 28 distinct looks
    return {
        "color": _shade(colour, SHADES[k % len(SHADES)]),
        "marker": marker,
        "ls": VARIANT_STYLES[k % len(VARIANT_STYLES)],
    }


def method_styles(
    methods: list[str], family: dict[str, str], roles: dict[str, str]
) -> dict[str, dict]:
    return {m: method_style(m, family[m], roles[m]) for m in methods}


def family_styles(families: list[str], is_flow: dict[str, bool]) -> dict[str, dict]:
    """Per family of the frontier figure ('<base method> <settings>'): its base method's colour and
    marker (a shade of it when settings follow); flow criteria solid, simple rules dashed."""
    out = {}
    for f in families:
        style = method_style(f, f.split(" ")[0], "")
        out[f] = {**style, "ls": "-" if is_flow[f] else "--"}
    return out


def mean_ci(
    values: list[float], scale: float = 100.0, bounds: tuple[float, float] = (0.0, 100.0)
) -> tuple[float, float, float]:
    """Mean and 95% t interval of the mean, scaled and clipped to `bounds` (one
    value: no interval)."""
    a = np.asarray(values, dtype=float) * scale
    mean = float(a.mean())
    if len(a) < 2:
        return mean, mean, mean
    half = float(st.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a)))
    return mean, max(bounds[0], mean - half), min(bounds[1], mean + half)


def mean_range(values: list[float]) -> tuple[float, float, float]:
    """Mean, smallest and largest value."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.min()), float(a.max())


def percent_density_axis(ax) -> None:
    """A log density axis labelled in percent at 1-2-3-5-7 steps, dense (100 %) on the left."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0, 7.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{100 * x:.3g}%"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if not ax.xaxis_inverted():
        ax.invert_xaxis()


def plain_log_axis(axis) -> None:
    """Log ticks at 1-2-3-5 steps written as plain numbers (0.5, 1, 2), not powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(plain_number))
    axis.set_minor_formatter(NullFormatter())


def plain_number(v: float, _=None) -> str:
    """A tick label without exponent: 0.05, 2, 1,000, 20,000 (three significant digits)."""
    return f"{float(f'{v:.3g}'):,.0f}" if v >= 100 else f"{v:.3g}"


def integer_axis(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def legend_beside(fig, ax, right: float) -> None:
    """One legend for the figure, right of the panels (which `layout_with_notes` keeps
    left of `right`)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="center left", bbox_to_anchor=(right, 0.5), fontsize=7, frameon=False
    )


def coinciding(series: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[list[str]]:
    """Groups (in input order) of names whose (x, y) series are equal: same length, equal
    within 1e-9 relative."""
    groups: list[list[str]] = []
    for name, (x, y) in series.items():
        for g in groups:
            gx, gy = series[g[0]]
            if (
                len(gx) == len(x)
                and np.allclose(gx, x, rtol=1e-9, atol=0)
                and np.allclose(gy, y, rtol=1e-9, atol=0)
            ):
                g.append(name)
                break
        else:
            groups.append([name])
    return [g for g in groups if len(g) > 1]


def coincidence_note(groups: list[list[str]]) -> str:
    return "; ".join("coincide: " + " = ".join(g) for g in groups)


def save_figure(fig, path_for: Callable[[str], Path]) -> list[Path]:
    """Write `fig` once per format to `path_for(ext)`, each through a temporary
    sibling, and close it."""
    import matplotlib.pyplot as plt

    paths = []
    for ext in FIGURE_FORMATS:
        path = path_for(ext)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.{ext}")
        fig.savefig(tmp, dpi=110)
        tmp.replace(path)
        paths.append(path)
    plt.close(fig)
    return paths


def layout_with_notes(fig, notes: dict[str, str], right: float = 1.0) -> None:
    """Tight layout that leaves room at the bottom for the panels' coincidence notes, wrapped, and
    right of `right` for a legend."""
    lines = [
        line
        for title, note in notes.items()
        if note
        for line in textwrap.wrap(f"{title}: {note}", 230, subsequent_indent="    ")
    ]
    bottom = 0.02 + 0.028 * len(lines) if lines else 0.0
    if lines:
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=6, va="bottom", family="monospace")
    fig.tight_layout(rect=(0, bottom, right, 1))


def _load(runs_csv: Path) -> tuple[dict, dict[str, str], dict[str, str]]:
    """{pair: {method: {level: {"density": [...], "test_acc": [...], "epochs": [...],
    "cumulative_flops": [...]}}}}, {method: role} and {method: base method}."""
    data: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    roles: dict[str, str] = {}
    family: dict[str, str] = {}
    with open(runs_csv) as f:
        for r in csv.DictReader(f):
            if r["diagnostic"] == "True" or r["status"] != "complete":
                continue
            roles[r["method"]] = r["role"]
            family[r["method"]] = r.get("base_method") or r["method"]
            slot = data[f"{r['dataset']}/{r['model']}"][r["method"]][int(r["level"])]
            for k in ("density", "test_acc", "epochs", "cumulative_flops"):
                slot[k].append(float(r[k]))
    return data, roles, family


def _series(
    levels: dict, key: str, scale: float = 1.0, bounds: tuple[float, float] = (-math.inf, math.inf)
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per level: the level, mean density, and the mean of `key` with its clipped 95% interval."""
    ks = sorted(levels)
    x = np.array([np.mean(levels[k]["density"]) for k in ks])
    y, lo, hi = np.array([mean_ci(levels[k][key], scale, bounds) for k in ks]).T
    return np.array(ks), x, y, lo, hi


def _draw(
    ax,
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    styles: dict[str, dict],
    errors: dict | None = None,
) -> str:
    """Plot every series; a repeat of an earlier one gets a larger hollow marker. Returns
    the panel's note."""
    groups = coinciding(series)
    repeats = {m for g in groups for m in g[1:]}
    for m, (x, y) in series.items():
        style = {**styles[m], "label": m, "ms": 4, "alpha": 0.9}
        if m in repeats:
            style.update(ms=9, mfc="none", mew=1.2)
        if errors is not None:
            ax.errorbar(x, y, yerr=errors[m], capsize=2, **style)
        else:
            ax.plot(x, y, **style)
    return coincidence_note(groups)


def write_figures(study: StudyDir, dense_acc: dict[str, float]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    data, roles, family = _load(study.runs_csv)
    right = 0.85  # the legend's column
    for pair, methods in data.items():
        names = sorted(methods, key=lambda m: (family_index(family[m]), m))
        styles = method_styles(names, family, roles)
        acc, epochs, cost, epoch_err = {}, {}, {}, {}
        fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
        for m in names:
            ks, x, a, lo, hi = _series(methods[m], "test_acc", scale=100.0, bounds=(0.0, 100.0))
            acc[m] = (x, a)
            axes[0].fill_between(x, lo, hi, color=styles[m]["color"], alpha=0.12, lw=0)
            ep, ep_lo, ep_hi = np.array([mean_range(methods[m][k]["epochs"]) for k in ks]).T
            epochs[m], epoch_err[m] = (ks, ep), np.array([ep - ep_lo, ep_hi - ep])
            cost[m] = (x, _series(methods[m], "cumulative_flops", scale=1e-9)[2])
        notes = [
            _draw(axes[0], acc, styles),
            _draw(axes[1], epochs, styles, epoch_err),
            _draw(axes[2], cost, styles),
        ]
        if pair in dense_acc:
            axes[0].axhline(100 * dense_acc[pair], color="black", lw=0.8, ls=":", label="dense")
        axes[0].set(
            xlabel="density (share of weights left)",
            ylabel="test accuracy (%)",
            title="accuracy vs density (mean, 95% CI)",
        )
        axes[1].set(
            xlabel="level", ylabel="epochs", title="retraining epochs per level (mean, range)"
        )
        axes[2].set(
            yscale="log",
            xlabel="density (share of weights left)",
            ylabel="cumulative GFLOPs (train + monitoring)",
            title="cumulative training cost (mean)",
        )
        for ax in (axes[0], axes[2]):
            percent_density_axis(ax)
        plain_log_axis(axes[2].yaxis)
        integer_axis(axes[1].xaxis)
        integer_axis(axes[1].yaxis)
        legend_beside(fig, axes[0], right)
        fig.suptitle(
            f"{pair}  (colour and marker: method family; line style: role or variant; "
            "hollow: equal to another curve)"
        )
        layout_with_notes(fig, {ax.get_title(): note for ax, note in zip(axes, notes)}, right=right)
        written += save_figure(fig, lambda ext: study.figure(pair, ext))
    return written
