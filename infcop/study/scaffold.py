"""`infcop init DIR`: a study directory for an installed harness.

    DIR/Snakefile              includes the installed workflow (infcop/workflow/Snakefile)
    DIR/configs/  DIR/claims/  copies of the shipped studies and claim files, yours to edit
    DIR/profiles/              default (picked up by Snakemake), slurm, local-gpu
    DIR/baselines/             your own methods, one file each (a template to copy)

`cd DIR && snakemake --cores all` then runs the default study into DIR/results/. The copies win
over the shipped files (`paths.shipped` looks in the working directory first).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from infcop.foundations.config import ConfigError
from infcop.foundations.paths import SHIPPED

# Snakemake's module system (`module infcop: snakefile: ...`, `use rule * from infcop`) cannot
# serve this workflow: its shell commands read the workflow's global variables ({PYTHON}, ...),
# which rules taken from a module do not see (snakemake/snakemake#2499 and #1688; still so in
# Snakemake 9.27). So the study's Snakefile includes the installed workflow, found through the
# package at parse time (the interpreter running Snakemake is the one whose harness the jobs use).
SNAKEFILE = '''\
# A study of the InfCoP harness (written by `infcop init`).
#   snakemake --cores all                          the default study (configs/default.yaml)
#   snakemake --cores all --config experiment=smoke    configs/smoke.yaml; any configs/NAME.yaml
#   snakemake --cores all --configfile my.yaml     your own study config
# Results go to results/<experiment.name>/. Methods in baselines/*.py are registered for every
# study run from here; list them in a config's study.methods to run them (docs/extending.md).
from infcop.foundations.paths import SHIPPED

include: str(SHIPPED / "workflow" / "Snakefile")


# An included file's default target does not carry over, so the study's target is named here.
rule all:
    input:
        STUDY_OUTPUTS,
    default_target: True
'''

TEMPLATE = '''\
"""A template for your own method: copy it to a file ending in .py whose name does not start
with "_" (say baselines/my_lth.py), edit it, and add its name to study.methods of a config
(configs/smoke.yaml, configs/default.yaml). `infcop methods` then lists it with this file as its
source. See docs/extending.md of the harness for what a method declares.

This one is lottery-ticket IMP with a twist: it rewinds to the rewind point (training.rewind_point)
instead of θ₀, and retrains for the LR schedule that remains from there.
"""
from dataclasses import dataclass, field

from infcop.core.resets import RewindTo
from infcop.criteria import FixedEpochs
from infcop.methods import (BuildContext, MethodSpec, Role, fraction_schedule, magnitude,
                            register_method)


@dataclass(frozen=True)
class Params:
    # a hyperparameter: validated from its metadata, set in a config under methods.my_lth, hashed
    extra_epochs: int = field(default=0, metadata={"min": 0, "doc": "epochs added to the budget"})


@register_method("my_lth", params=Params, role=Role.COMPETITOR, schedule=fraction_schedule)
def my_lth(ctx: BuildContext, p: Params) -> MethodSpec:
    """My method: magnitude pruning, rewind to step t, retrain the schedule left (+ extras)."""
    reset = RewindTo()
    return MethodSpec(magnitude(ctx), reset, FixedEpochs(ctx.budget(reset) + p.extra_epochs))
'''


def init_study(target: Path) -> list[Path]:
    """Write a study directory at `target` (new or empty); returns the files written."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(
            f"{target}: already exists and is not empty; `infcop init` writes a new study directory"
        )
    sources = {
        "configs": SHIPPED / "configs",
        "claims": SHIPPED / "claims",
        "profiles": SHIPPED / "profiles",
        "workflow profiles": SHIPPED / "workflow" / "profiles",
    }
    for what, folder in sources.items():
        if not folder.is_dir():
            raise ConfigError(f"{folder}: the harness's {what} are missing; reinstall infcop")
    target.mkdir(parents=True, exist_ok=True)
    for name in ("configs", "claims"):
        shutil.copytree(sources[name], target / name, ignore=_not_yaml)
    for folder in (sources["profiles"], sources["workflow profiles"]):
        shutil.copytree(folder, target / "profiles", ignore=_not_yaml, dirs_exist_ok=True)
    (target / "baselines").mkdir()
    (target / "baselines" / "_template.py.example").write_text(TEMPLATE)
    (target / "Snakefile").write_text(SNAKEFILE)
    return sorted(p for p in target.rglob("*") if p.is_file())


def _not_yaml(folder: str, names: list[str]) -> list[str]:
    """shutil.copytree's filter: keep YAML files and folders, leave caches and the like behind."""
    return [n for n in names if not n.endswith(".yaml") and not (Path(folder) / n).is_dir()]
