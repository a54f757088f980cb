"""Figures per dataset x model (PNG and PDF): accuracy vs density, epochs per level, cost vs density.

Every method must stay visible even when its curve equals another's (infcop_gf firing exactly when
infcop_if does, lth and random training the same epochs): each family (registered base method) has
its own marker, its first variant the line style of its role (solid InfCoP, dashed competitor,
dash-dot ablation, dotted control) and further variants their own, every method its own colour,
and a series equal to one drawn before it is redrawn with a larger hollow marker and named in a
note under its panel ("coincide: a = b").
"""
from __future__ import annotations

import csv
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

from infcop.foundations.paths import FIGURE_FORMATS, StudyDir

MARKERS = "osD^vP*Xh<>pd8H"
ROLE_STYLES = {"infcop": "-", "competitor": "--", "ablation": "-.", "control": ":"}  # a family's first variant
VARIANT_STYLES = ((0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)), (0, (3, 1, 1, 1)), (0, (6, 2, 1, 2)),
                  (0, (2, 1)), (0, (10, 3, 2, 3)))  # its further variants


def _palette(n: int) -> list:
    import matplotlib.pyplot as plt

    colours = [plt.cm.tab20(i) for i in range(20)] + [plt.cm.tab20b(i) for i in range(20)]
    return [colours[i % len(colours)] for i in range(n)]


def method_styles(methods: list[str], family: dict[str, str], roles: dict[str, str]) -> dict[str, dict]:
    """Per method: a colour of its own, its family's marker, and a line style of its own within the family
    (the first variant's follows its role: solid InfCoP, dashed competitor, dash-dot ablation, dotted control)."""
    families = list(dict.fromkeys(family[m] for m in methods))
    seen: dict[str, int] = defaultdict(int)
    styles = {}
    for m, colour in zip(methods, _palette(len(methods))):
        f, k = family[m], seen[family[m]]
        ls = ROLE_STYLES.get(roles[m], "-") if k == 0 else VARIANT_STYLES[(k - 1) % len(VARIANT_STYLES)]
        styles[m] = {"color": colour, "marker": MARKERS[families.index(f) % len(MARKERS)], "ls": ls}
        seen[f] += 1
    return styles


def family_styles(families: list[str], is_flow: dict[str, bool]) -> dict[str, dict]:
    """Per family of the frontier figure: its own colour and marker; flow criteria solid, simple rules dashed."""
    return {f: {"color": c, "marker": MARKERS[i % len(MARKERS)], "ls": "-" if is_flow[f] else "--"}
            for i, (f, c) in enumerate(zip(families, _palette(len(families))))}


def coinciding(series: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[list[str]]:
    """Groups (in input order) of names whose (x, y) series are equal: same length, equal within 1e-9 relative."""
    groups: list[list[str]] = []
    for name, (x, y) in series.items():
        for g in groups:
            gx, gy = series[g[0]]
            if len(gx) == len(x) and np.allclose(gx, x, rtol=1e-9, atol=0) and np.allclose(gy, y, rtol=1e-9, atol=0):
                g.append(name)
                break
        else:
            groups.append([name])
    return [g for g in groups if len(g) > 1]


def coincidence_note(groups: list[list[str]]) -> str:
    return "; ".join("coincide: " + " = ".join(g) for g in groups)


def save_figure(fig, path_for: Callable[[str], Path]) -> list[Path]:
    """Write `fig` once per format to `path_for(ext)`, each through a temporary sibling, and close it."""
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


def layout_with_notes(fig, notes: dict[str, str]) -> None:
    """Tight layout that leaves room at the bottom for the panels' coincidence notes, wrapped."""
    lines = [line for title, note in notes.items() if note
             for line in textwrap.wrap(f"{title}: {note}", 230, subsequent_indent="    ")]
    bottom = 0.02 + 0.028 * len(lines) if lines else 0.0
    if lines:
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=6, va="bottom", family="monospace")
    fig.tight_layout(rect=(0, bottom, 1, 1))


def _load(runs_csv: Path) -> tuple[dict, dict[str, str], dict[str, str]]:
    """{pair: {method: {level: {"density": [...], "test_acc": [...], "epochs": [...], "cumulative_flops": [...]}}}},
    {method: role} and {method: base method}."""
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


def _series(levels: dict, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ks = sorted(levels)
    x = np.array([np.mean(levels[k]["density"]) for k in ks])
    y = np.array([np.mean(levels[k][key]) for k in ks])
    sd = np.array([np.std(levels[k][key], ddof=1) if len(levels[k][key]) > 1 else 0.0 for k in ks])
    return np.array(ks), x, y, sd


def _draw(ax, series: dict[str, tuple[np.ndarray, np.ndarray]], styles: dict[str, dict], errors: dict | None = None) -> str:
    """Plot every series; a repeat of an earlier one gets a larger hollow marker. Returns the panel's note."""
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
    for pair, methods in data.items():
        names = sorted(methods, key=lambda m: (family[m], m))
        styles = method_styles(names, family, roles)
        acc, epochs, cost, epoch_sd = {}, {}, {}, {}
        fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
        for m in names:
            ks, x, a, a_sd = _series(methods[m], "test_acc")
            acc[m] = (x, 100 * a)
            axes[0].fill_between(x, 100 * (a - a_sd), 100 * (a + a_sd), color=styles[m]["color"], alpha=0.10)
            _, _, ep, ep_sd = _series(methods[m], "epochs")
            epochs[m], epoch_sd[m] = (ks, ep), ep_sd
            cost[m] = (x, _series(methods[m], "cumulative_flops")[2] / 1e9)
        notes = [_draw(axes[0], acc, styles), _draw(axes[1], epochs, styles, epoch_sd), _draw(axes[2], cost, styles)]
        if pair in dense_acc:
            axes[0].axhline(100 * dense_acc[pair], color="black", lw=0.8, ls=":", label="dense")
        axes[0].set(xscale="log", xlabel="density", ylabel="test accuracy (%)", title="accuracy vs density (mean ± sd)")
        axes[1].set(xlabel="level", ylabel="epochs", title="retraining epochs per level (mean ± sd)")
        axes[2].set(xscale="log", yscale="log", xlabel="density", ylabel="cumulative GFLOPs (train + monitoring)",
                    title="cumulative training cost")
        for ax in (axes[0], axes[2]):
            ax.invert_xaxis()
        axes[2].legend(fontsize=6, ncol=2, loc="best")
        fig.suptitle(f"{pair}  (marker: method family; line style: variant within it; hollow: equal to another curve)")
        layout_with_notes(fig, {ax.get_title(): note for ax, note in zip(axes, notes)})
        written += save_figure(fig, lambda ext: study.figure(pair, ext))
    return written
