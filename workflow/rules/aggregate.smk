# Aggregation: collect records -> statistics -> tables and figures (embedded in
# `snakemake --report`), and a verdict for each published claim the study names (study.claims).
#
# These rules read the whole resolved config (methods, margin, alpha, ...), so, unlike the training
# jobs, they depend on it for real: a plain input (not ancient) and its content hash as a param.
# The plain input is what makes one invocation enough: when rule resolved_config reruns, Snakemake
# marks every job below it as "will follow" without checking it itself, then drops those reached
# only through ancient inputs, so a params change (or a new method's missing record) would only be
# seen on the next invocation. The hash keys the aggregates on the config's content, not on mtimes.


rule collect:
    input:
        cfg=RESOLVED_CONFIG,
        runs=run_records(),
        diagnose=run_records(diagnose=True),
    output:
        str(STUDY.runs_csv),
    params:
        config_sha256=RESOLVED_SHA256,
    log:
        str(STUDY.log("aggregate", "collect")),
    shell:
        "{PYTHON:q} -m infcop.cli -q collect --config {input.cfg:q} > {log:q} 2>&1"


rule stats:
    input:
        cfg=RESOLVED_CONFIG,
        runs=rules.collect.output[0],
    output:
        str(STUDY.stats),
    params:
        config_sha256=RESOLVED_SHA256,
    log:
        str(STUDY.log("aggregate", "stats")),
    shell:
        "{PYTHON:q} -m infcop.cli -q stats --config {input.cfg:q} > {log:q} 2>&1"


rule tables:
    input:
        cfg=RESOLVED_CONFIG,
        stats=rules.stats.output[0],
        runs=rules.collect.output[0],
    output:
        md=report(str(STUDY.summary("md")), category="Tables"),
        csv=report(str(STUDY.summary("csv")), category="Tables"),
        tex=str(STUDY.summary("tex")),
        comparisons=report(str(STUDY.comparisons), category="Tables"),
        ablation=report(str(STUDY.ablation), category="Tables"),
        figures=report(FIGURES, category="Figures"),
    params:
        config_sha256=RESOLVED_SHA256,
    log:
        str(STUDY.log("aggregate", "tables")),
    shell:
        "{PYTHON:q} -m infcop.cli -q tables --config {input.cfg:q} > {log:q} 2>&1"


# Reads stats.json and the claim files (plain inputs: editing a claim re-renders the table in one
# run).
rule claims:
    input:
        cfg=RESOLVED_CONFIG,
        stats=rules.stats.output[0],
        claims=CLAIM_FILES,
    output:
        md=report(str(STUDY.claims("md")), category="Tables"),
        csv=str(STUDY.claims("csv")),
    params:
        config_sha256=RESOLVED_SHA256,
    log:
        str(STUDY.log("aggregate", "claims")),
    shell:
        "{PYTHON:q} -m infcop.study.verdicts --config {input.cfg:q} > {log:q} 2>&1"
