# Config selection and validation, and the study's job lists. No experiment logic: jobs call the CLI.
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from infcop.config import ConfigError, deep_merge, study_configs
from infcop.records import dense_dir, experiment_dir, run_dir

# `--config experiment=NAME` selects configs/NAME.yaml; other --config values still apply on top.
_cli = dict(workflow.config_settings.overwrite_config or {})
if isinstance(_cli.get("experiment"), str):
    _path = Path(workflow.basedir) / "configs" / f"{_cli.pop('experiment')}.yaml"
    if not _path.is_file():
        raise WorkflowError(f"--config experiment=...: {_path} does not exist")
    _new = deep_merge(yaml.safe_load(_path.read_text()) or {}, _cli)
    config.clear()
    config.update(_new)

validate(config, "../schemas/config.schema.yaml")
try:
    PAIR_CFGS = study_configs(config)
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None

CFG = next(iter(PAIR_CFGS.values()))
EXP, RESULTS = CFG.experiment.name, CFG.experiment.results_dir
OUT = str(experiment_dir(RESULTS, EXP))
SEEDS = list(CFG.experiment.seeds)
PAIRS = [p.split("/") for p in CFG.study.pairs]
METHODS = list(CFG.study.methods)
DIAGNOSE = list(CFG.study.diagnose)
GPUS = 1 if CFG.experiment.device == "cuda" else 0
PYTHON = sys.executable  # the interpreter running Snakemake has the package installed
RESOLVED_CONFIG = f"{OUT}/config.yaml"

DENSE_RECORD = str(dense_dir(RESULTS, EXP, "{dataset}", "{model}", "{seed}") / "record.json")
RUN_RECORD = str(run_dir(RESULTS, EXP, "{dataset}", "{model}", "{method}", "{seed}") / "record.json")
DIAG_RECORD = str(run_dir(RESULTS, EXP, "{dataset}", "{model}", "{method}_diagnose", "{seed}") / "record.json")


def _alternatives(names):
    return "|".join(sorted(set(names), key=len, reverse=True)) or "NONE"


wildcard_constraints:
    dataset=_alternatives(d for d, _ in PAIRS),
    model=_alternatives(m for _, m in PAIRS),
    method=_alternatives(METHODS + DIAGNOSE),
    seed=r"\d+",


def run_records(diagnose=False):
    pattern, methods = (DIAG_RECORD, DIAGNOSE) if diagnose else (RUN_RECORD, METHODS)
    return [pattern.format(dataset=d, model=m, method=x, seed=s) for d, m in PAIRS for x in methods for s in SEEDS]


FIGURES = [f"{OUT}/figures/{d}__{m}.{ext}" for d, m in PAIRS for ext in ("png", "pdf")]
TABLES = [f"{OUT}/{name}" for name in ("summary.md", "summary.csv", "summary.tex", "comparisons.csv", "ablation.md")]
SUMMARY_OUTPUTS = [f"{OUT}/runs.csv", f"{OUT}/stats.json"] + TABLES + FIGURES
