# Config selection and validation, and the study's job lists. No experiment logic: jobs call the
# CLI, and every path comes from infcop/foundations/paths.py.
import dataclasses
import hashlib
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.rules import Rule
from snakemake.utils import validate

from infcop.foundations.config import ConfigError, deep_merge, dense_hash
from infcop.foundations.paths import located, run_name, shipped, study_dir
from infcop.foundations.storage import atomic_write_text
from infcop.core.data import split_sizes
from infcop.engine.spec import RunSpec, mirrored_run, study_configs
from infcop.study.claims import claim_path, study_claims
from infcop.study.plan import pair_model

# `--config experiment=NAME` selects configs/NAME.yaml; other --config values still apply on top.
_cli = dict(workflow.config_settings.overwrite_config or {})
if isinstance(_cli.get("experiment"), str):
    _path = shipped(f"configs/{_cli.pop('experiment')}.yaml")
    if not _path.is_file():
        raise WorkflowError(f"--config experiment=...: {_path} does not exist")
    _new = deep_merge(yaml.safe_load(_path.read_text()) or {}, _cli)
    config.clear()
    config.update(_new)

# A study's own config.yaml (say of a copied study) names the study by where it lies
# (paths.located).
if workflow.overwrite_configfiles:
    _located = located(dict(config), workflow.overwrite_configfiles[-1])
    config.clear()
    config.update(_located)

# The package's loader first: its messages name the key. The schema (generated from the same
# dataclasses by `infcop schema`) then documents and double-checks the structure.
try:
    PAIR_CFGS = study_configs(config)
    CFG = next(iter(PAIR_CFGS.values()))
    study_claims(CFG)  # claim files are checked like the config: before any job starts
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None
validate(config, "../schemas/config.schema.yaml", set_default=False)

STUDY = study_dir(CFG.experiment.results_dir, CFG.experiment.name)
SEEDS = list(CFG.experiment.seeds)
PAIRS = [p.split("/") for p in CFG.study.pairs]
METHODS = [e.name for e in CFG.study.methods]
DIAGNOSE = list(CFG.study.diagnose)
GPUS = 1 if CFG.experiment.device == "cuda" else 0
PYTHON = sys.executable  # the interpreter running Snakemake has the package installed
RESOLVED_CONFIG = str(STUDY.config)
# The resolved config's content, as rule resolved_config writes it, and its hash: the aggregate
# rules read the whole file (margin, alpha, methods, ...), so they carry the hash as a param and
# rerun when it changes. Training jobs do not: their record is keyed on the run's own identity
# (config_hash).
RESOLVED_TEXT = yaml.safe_dump(config, sort_keys=True)
RESOLVED_SHA256 = hashlib.sha256(RESOLVED_TEXT.encode()).hexdigest()
# Kept current here, when the workflow is parsed to run (not in a dry run or inside a job), rather
# than by a rule rerunning on its content: when a rule reruns, Snakemake skips every job reached
# from it through ancient inputs (the training jobs) without checking their own inputs. Rule
# resolved_config (train.smk) only creates the file when it is missing.
if workflow.is_main_process and not workflow.dryrun and Path(RESOLVED_CONFIG).is_file() \
        and Path(RESOLVED_CONFIG).read_text() != RESOLVED_TEXT:
    atomic_write_text(Path(RESOLVED_CONFIG), RESOLVED_TEXT)

DENSE = STUDY.dense("{dataset}", "{model}", "{seed}")
DENSE_RECORD = str(DENSE.record)
RUN_RECORD = str(STUDY.run("{dataset}", "{model}", "{method}", "{seed}").record)
DIAG_RECORD = str(STUDY.run("{dataset}", "{model}", run_name("{method}", True), "{seed}").record)
JOB = "{dataset}__{model}__{method}__seed{seed}"
SEED_JOB = str(STUDY.seed_job("{dataset}", "{model}", "{seed}"))


def _alternatives(names):
    return "|".join(sorted(set(names), key=len, reverse=True)) or "NONE"


wildcard_constraints:
    dataset=_alternatives(d for d, _ in PAIRS),
    model=_alternatives(m for _, m in PAIRS),
    method=_alternatives(METHODS + DIAGNOSE),
    seed=r"\d+",


# A run that reads another run's record (the budget-matched control of an InfCoP run) waits for it.
MIRRORS = {name: mirrored_run(CFG, name) for name in METHODS + DIAGNOSE}


def mirrored_record(wildcards):
    mirror = MIRRORS.get(wildcards.method)
    if mirror is None:
        return []
    return [
        RUN_RECORD.format(
            dataset=wildcards.dataset, model=wildcards.model, method=mirror, seed=wildcards.seed
        )
    ]


def run_records(diagnose=False):
    pattern, methods = (DIAG_RECORD, DIAGNOSE) if diagnose else (RUN_RECORD, METHODS)
    return [
        pattern.format(dataset=d, model=m, method=x, seed=s)
        for d, m in PAIRS
        for x in methods
        for s in SEEDS
    ]


FIGURES = [str(p) for p in STUDY.figures(CFG.study.pairs)]
TABLES = [str(p) for p in STUDY.tables]
CLAIM_FILES = [str(claim_path(name)) for name in CFG.study.claims]
CLAIM_OUTPUTS = [str(STUDY.claims("md")), str(STUDY.claims("csv"))] if CLAIM_FILES else []
# Every record is a target too: Snakemake does not recompute an intermediate file that is missing
# while the files made from it are up to date, so a deleted run directory would otherwise be
# "nothing to be done".
RECORDS = ([DENSE_RECORD.format(dataset=d, model=m, seed=s) for d, m in PAIRS for s in SEEDS]
           + run_records() + run_records(diagnose=True))
SUMMARY_OUTPUTS = (
    RECORDS + [str(STUDY.runs_csv), str(STUDY.stats)] + TABLES + FIGURES + CLAIM_OUTPUTS
)


# What each training job's record must have been produced by (its run hash and levels), written to
# a small file per job (rules *_identity in train.smk) that the job takes as a plain input: the file
# is rewritten, and the job reruns, exactly when this changes (a changed training setting retrains,
# raised pruning.levels extend a run), while the resolved config stays an ancient input (rewriting
# it must not retrain what it does not change). Not a param of the training job itself: when rule
# resolved_config reruns, Snakemake skips every job reached from it through ancient inputs without
# checking its params.
def _pair_cfg(wildcards):
    return PAIR_CFGS[f"{wildcards.dataset}/{wildcards.model}"]


def dense_identity(wildcards):
    return dense_hash(_pair_cfg(wildcards))


def run_identity(wildcards, method=None, diagnose=False):
    cfg = _pair_cfg(wildcards)
    if diagnose:
        cfg = dataclasses.replace(cfg, stopping=dataclasses.replace(cfg.stopping, diagnose=True))
    spec = RunSpec.of(cfg, method or wildcards.method, int(wildcards.seed))
    return f"{spec.hash} levels={cfg.pruning.levels}"


def diagnostic_identity(wildcards):
    return run_identity(wildcards, diagnose=True)


def seed_identity(wildcards):
    """Every run of a `study.grouping: seed` job."""
    return "\n".join(
        [run_identity(wildcards, m) for m in METHODS]
        + [run_identity(wildcards, m, True) for m in DIAGNOSE]
    )


# Seed jobs start longest first, so that no long one starts last while the other cores have nothing
# left to do: ranked by the forward FLOPs of a dense training epoch (a dataset without a known size
# ranks last). Snakemake versions before callable priorities (Rule.expand_priority) keep its order.
def _epoch_flops(pair):
    cfg = PAIR_CFGS[pair]
    try:
        return pair_model(cfg).dense_flops * split_sizes(cfg.data)[2]
    except KeyError:
        return 0.0


def seed_job_priority():
    if not hasattr(Rule, "expand_priority"):
        return 0
    rank = {pair: i for i, pair in enumerate(sorted(PAIR_CFGS, key=_epoch_flops))}
    return lambda wildcards: rank[f"{wildcards.dataset}/{wildcards.model}"]


DENSE_ID = str(STUDY.identity("dense", "{dataset}__{model}__seed{seed}"))
RUN_ID = str(STUDY.identity("imp", JOB))
DIAG_ID = str(STUDY.identity("diagnose", JOB))
SEED_ID = str(STUDY.identity("imp_seed", "{dataset}__{model}__seed{seed}"))
