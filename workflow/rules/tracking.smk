# W&B mirror of the study (tracking.mode, or the WANDB_MODE environment variable): once the runs
# are done, one job builds a W&B run from each finished record (while the tables are being made),
# then one the summary run from the tables and figures. Training jobs never start W&B. Not run when
# tracking is disabled.
from infcop.engine.tracking import tracking_mode

TRACKING_OUTPUTS = [] if tracking_mode(CFG) == "disabled" else [str(STUDY.wandb_tracked)]


rule track_runs:
    input:
        cfg=RESOLVED_CONFIG,
        records=RECORDS,
    output:
        touch(str(STUDY.wandb_runs_tracked)),
    log:
        str(STUDY.log("aggregate", "track_runs")),
    localrule: True
    shell:
        "{PYTHON:q} -m infcop.cli -q track --runs --config {input.cfg:q} > {log:q} 2>&1"


rule track:
    input:
        cfg=RESOLVED_CONFIG,
        runs=rules.track_runs.output,
        outputs=SUMMARY_OUTPUTS + FRONTIER_OUTPUTS,
    output:
        touch(str(STUDY.wandb_tracked)),
    log:
        str(STUDY.log("aggregate", "track")),
    localrule: True
    shell:
        "{PYTHON:q} -m infcop.cli -q track --config {input.cfg:q} > {log:q} 2>&1"


# Optional target, not part of `all`:  snakemake wandb_sync --cores 1
# uploads the study's offline W&B runs (needs `wandb login` or WANDB_API_KEY and network), then
# records that the summary run used each run's artifact (offline W&B cannot record a use).
rule wandb_sync:
    input:
        cfg=RESOLVED_CONFIG,
        tracked=TRACKING_OUTPUTS,
    output:
        touch(str(STUDY.wandb_synced)),
    params:
        runs=str(STUDY.wandb / "wandb"),
    log:
        str(STUDY.log("aggregate", "wandb_sync")),
    localrule: True
    shell:
        "({PYTHON:q} -m wandb sync --yes --skip-synced {params.runs:q}/offline-run-*"
        " && {PYTHON:q} -m infcop.cli -q track --link --config {input.cfg:q}) > {log:q} 2>&1"
