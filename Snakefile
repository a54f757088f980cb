# The study as one DAG:  snakemake --cores all   (configs/default.yaml; README "Studies")
# The workflow is workflow/Snakefile, which the installed package ships as well (`infcop init`).
include: "workflow/Snakefile"
