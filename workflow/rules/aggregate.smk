# Aggregation: collect records -> statistics -> tables and figures (embedded in `snakemake --report`).


rule collect:
    input:
        cfg=ancient(RESOLVED_CONFIG),
        runs=run_records(),
        diagnose=run_records(diagnose=True),
    output:
        str(STUDY.runs_csv),
    log:
        str(STUDY.log("aggregate", "collect")),
    shell:
        "{PYTHON} -m infcop.cli -q collect --config {input.cfg} > {log} 2>&1"


rule stats:
    input:
        cfg=ancient(RESOLVED_CONFIG),
        runs=rules.collect.output[0],
    output:
        str(STUDY.stats),
    log:
        str(STUDY.log("aggregate", "stats")),
    shell:
        "{PYTHON} -m infcop.cli -q stats --config {input.cfg} > {log} 2>&1"


rule tables:
    input:
        cfg=ancient(RESOLVED_CONFIG),
        stats=rules.stats.output[0],
        runs=rules.collect.output[0],
    output:
        md=report(str(STUDY.summary("md")), category="Tables"),
        csv=report(str(STUDY.summary("csv")), category="Tables"),
        tex=str(STUDY.summary("tex")),
        comparisons=report(str(STUDY.comparisons), category="Tables"),
        ablation=report(str(STUDY.ablation), category="Tables"),
        figures=report(FIGURES, category="Figures"),
    log:
        str(STUDY.log("aggregate", "tables")),
    shell:
        "{PYTHON} -m infcop.cli -q tables --config {input.cfg} > {log} 2>&1"
