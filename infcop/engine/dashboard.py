"""A W&B dashboard for a study: a report with one section per dataset x model.

Each section shows the pair's runs (study, pair, not diagnostic) grouped by method, so every line is
one method's mean over seeds with its standard deviation as a band:
validation accuracy and each flow distance against cumulative optimizer steps, test accuracy and
cumulative FLOPs against density. The metric keys are the ones `infcop.engine.tracking` logs.

A report, not a workspace: a workspace has one run set for all its sections, so a section could
not keep to its pair; each panel grid of a report has its own. Needs the `dashboard` extra
(`wandb-workspaces`); saving needs a network and a W&B login, building does not.
"""

from __future__ import annotations

from typing import Any

from infcop.core.data import split_sizes
from infcop.core.models import build_model, output_layer_name
from infcop.criteria import CRITERIA
from infcop.foundations.config import Config
from infcop.methods import BuildContext
from infcop.engine.spec import resolve_variant
from infcop.engine.tracking import DENSITY, STEP


def flow_keys(cfg: Config) -> list[str]:
    """The flow distances the study's (non-diagnostic) runs log: those of the criteria its methods
    stop by, in registry order."""
    shape, classes, n_train, *_ = split_sizes(cfg.data)
    model = build_model(cfg.model.name, shape, classes, pretrained=False)
    ctx = BuildContext.priced(cfg, n_train, output_layer_name(model))
    logged = set()
    for entry in cfg.study.methods:
        variant = resolve_variant(cfg, entry.name)
        logged |= {c.name for c in variant.method.build(ctx, variant.params).stopper.criteria}
    return [
        f"epoch/{c.key}"
        for name, c in CRITERIA.items()
        if c.needs_flow_reference and name in logged
    ]


def panels_of_pair(cfg: Config) -> list[dict[str, Any]]:
    """The panels of one section, as plain data: title, x key, y keys, log axes."""
    return [
        {
            "title": "validation accuracy vs steps",
            "x": STEP,
            "y": ["epoch/val_acc"],
            "log_x": False,
        },
        *(
            {"title": f"{key.split('/')[1]} vs steps", "x": STEP, "y": [key], "log_x": False}
            for key in flow_keys(cfg)
        ),
        {"title": "test accuracy vs density", "x": DENSITY, "y": ["level/test_acc"], "log_x": True},
        {
            "title": "cumulative FLOPs (train + monitoring) vs density",
            "x": DENSITY,
            "y": ["level/cumulative_flops"],
            "log_x": True,
        },
    ]


def build_report(cfg: Config, *, entity: str, project: str) -> Any:
    """The study's report (wandb_workspaces.reports.v2.Report), built without a network."""
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    study = cfg.experiment.name
    blocks: list[Any] = [
        wr.P(f"Study {study}: one line per method, the mean over seeds with ± 1 sd.")
    ]
    for pair in cfg.study.pairs:
        runs = wr.Runset(
            entity=entity,
            project=project,
            name=pair,
            groupby=["config.method"],
            filters=[
                expr.Config("study") == study,
                expr.Config("pair") == pair,
                expr.Config("diagnostic") == False,
            ],
        )  # noqa: E712 - a filter expression
        plots = [
            wr.LinePlot(
                title=p["title"],
                x=p["x"],
                y=p["y"],
                log_x=p["log_x"],
                groupby_aggfunc="mean",
                groupby_rangefunc="stddev",
            )
            for p in panels_of_pair(cfg)
        ]
        blocks += [wr.H2(pair), wr.PanelGrid(runsets=[runs], panels=plots)]
    return wr.Report(
        entity=entity, project=project, title=f"InfCoP harness: study {study}", blocks=blocks
    )


def describe(report: Any) -> str:
    """The report's sections and panels, one line each."""
    lines = [report.title]
    for block in report.blocks:
        if type(block).__name__ == "H2":
            lines.append(f"section {block.text}")
        for panel in getattr(block, "panels", []):
            lines.append(f"  {panel.title}: {', '.join(panel.y)} against {panel.x}")
    return "\n".join(lines)
