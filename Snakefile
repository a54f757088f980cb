# The whole study as one DAG:  snakemake --cores all
#   dense level 0 per dataset x model x seed -> one IMP job per method x seed -> collect -> stats -> tables/figures
# Switch studies with  --config experiment=smoke  (configs/smoke.yaml) or  --configfile my.yaml.
from snakemake.utils import min_version

min_version("8.0")

if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/configs/default.yaml"



include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/frontier.smk"
include: "workflow/rules/tracking.smk"


rule all:
    input:
        SUMMARY_OUTPUTS,
        FRONTIER_OUTPUTS,
    default_target: True
