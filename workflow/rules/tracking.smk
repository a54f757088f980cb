# Optional target, not part of `all`:  snakemake wandb_sync --cores 1
# uploads the study's offline W&B runs (needs `wandb login` or WANDB_API_KEY and network).


rule wandb_sync:
    input:
        SUMMARY_OUTPUTS,
    output:
        touch(str(STUDY.wandb_synced)),
    params:
        runs=str(STUDY.wandb / "wandb"),
    log:
        str(STUDY.log("aggregate", "wandb_sync")),
    localrule: True
    shell:
        "{PYTHON:q} -m wandb sync --yes --skip-synced {params.runs:q}/offline-run-* > {log:q} 2>&1"
