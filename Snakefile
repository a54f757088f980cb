# The study as one DAG:  snakemake --cores all   (configs/default.yaml; README "Studies")
#   dense level 0 per dataset x model x seed -> IMP runs -> collect -> stats -> tables, figures,
#   claims (-> frontier). The rules are workflow/Snakefile, which the installed package ships too.
include: "workflow/Snakefile"


rule all:
    input:
        STUDY_OUTPUTS,
    default_target: True
