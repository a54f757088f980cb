# The study as one DAG:  snakemake --cores all   (configs/default.yaml; README "Studies")
# The workflow is workflow/Snakefile, which the installed package ships as well (`infcop init`).
include: "workflow/Snakefile"


# An included file's default target does not carry over (Snakemake keeps the includer's), so the
# study's target is named here: everything rule `all` of the workflow asks for.
rule default:
    input:
        rules.all.input,
    default_target: True
