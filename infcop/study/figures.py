"""Figures per dataset x model (PNG and PDF): accuracy vs density, epochs per level, cost vs density.

Line style follows the method's declared role (solid: InfCoP variants, dashed: competitors,
dash-dot: ablations, dotted: controls) and every method has its own colour and marker, so
methods whose curves coincide stay distinguishable.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from infcop.paths import FIGURE_FORMATS, StudyDir

LINE_STYLES = {"infcop": "-", "competitor": "--", "ablation": "-.", "control": ":"}
MARKERS = "osD^vP*Xh<>p"


def _load(runs_csv: Path) -> dict:
    """{pair: {method: {level: {"density": [...], "test_acc": [...], "epochs": [...], "cumulative_flops": [...]}}}}
    and {method: role}."""
    data: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    roles: dict[str, str] = {}
    with open(runs_csv) as f:
        for r in csv.DictReader(f):
            if r["diagnostic"] == "True" or r["status"] != "complete":
                continue
            roles[r["method"]] = r["role"]
            slot = data[f"{r['dataset']}/{r['model']}"][r["method"]][int(r["level"])]
            for k in ("density", "test_acc", "epochs", "cumulative_flops"):
                slot[k].append(float(r[k]))
    return data, roles


def _series(levels: dict, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ks = sorted(levels)
    x = np.array([np.mean(levels[k]["density"]) for k in ks])
    y = np.array([np.mean(levels[k][key]) for k in ks])
    sd = np.array([np.std(levels[k][key], ddof=1) if len(levels[k][key]) > 1 else 0.0 for k in ks])
    return np.array(ks), x, y, sd


def write_figures(study: StudyDir, dense_acc: dict[str, float]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    data, roles = _load(study.runs_csv)
    for pair, methods in data.items():
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
        for i, (method, levels) in enumerate(sorted(methods.items())):
            style = {"color": plt.cm.tab20(i % 20), "label": method, "marker": MARKERS[i % len(MARKERS)], "ms": 4,
                     "ls": LINE_STYLES.get(roles[method], "-"), "alpha": 0.9}
            ks, x, acc, acc_sd = _series(levels, "test_acc")
            axes[0].plot(x, 100 * acc, **style)
            axes[0].fill_between(x, 100 * (acc - acc_sd), 100 * (acc + acc_sd), color=style["color"], alpha=0.12)
            _, _, ep, ep_sd = _series(levels, "epochs")
            axes[1].errorbar(ks, ep, yerr=ep_sd, capsize=2, **style)
            _, _, cost, _ = _series(levels, "cumulative_flops")
            axes[2].plot(x, cost / 1e9, **style)
        if pair in dense_acc:
            axes[0].axhline(100 * dense_acc[pair], color="black", lw=0.8, ls=":", label="dense")
        axes[0].set(xscale="log", xlabel="density", ylabel="test accuracy (%)", title="accuracy vs density (mean ± sd)")
        axes[1].set(xlabel="level", ylabel="epochs", title="retraining epochs per level (mean ± sd)")
        axes[2].set(xscale="log", yscale="log", xlabel="density", ylabel="cumulative GFLOPs (train + monitoring)",
                    title="cumulative training cost")
        for ax in (axes[0], axes[2]):
            ax.invert_xaxis()
        axes[2].legend(fontsize=7, ncol=2, loc="best")
        fig.suptitle(pair)
        fig.tight_layout()
        for ext in FIGURE_FORMATS:
            path = study.figure(pair, ext)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp.{ext}")
            fig.savefig(tmp, dpi=110)
            tmp.replace(path)
            written.append(path)
        plt.close(fig)
    return written
