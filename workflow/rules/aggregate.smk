# Aggregation: collect records -> statistics -> tables and figures (embedded in `snakemake --report`).


rule collect:
    input:
        cfg=ancient(RESOLVED_CONFIG),
        runs=run_records(),
        diagnose=run_records(diagnose=True),
    output:
        f"{OUT}/runs.csv",
    log:
        f"{OUT}/logs/collect.log",
    shell:
        "{PYTHON} -m infcop.cli -q collect --config {input.cfg} > {log} 2>&1"


rule stats:
    input:
        cfg=ancient(RESOLVED_CONFIG),
        runs=f"{OUT}/runs.csv",
    output:
        f"{OUT}/stats.json",
    log:
        f"{OUT}/logs/stats.log",
    shell:
        "{PYTHON} -m infcop.cli -q stats --config {input.cfg} > {log} 2>&1"


rule tables:
    input:
        cfg=ancient(RESOLVED_CONFIG),
        stats=f"{OUT}/stats.json",
        runs=f"{OUT}/runs.csv",
    output:
        md=report(f"{OUT}/summary.md", category="Tables"),
        csv=report(f"{OUT}/summary.csv", category="Tables"),
        tex=f"{OUT}/summary.tex",
        comparisons=report(f"{OUT}/comparisons.csv", category="Tables"),
        ablation=report(f"{OUT}/ablation.md", category="Tables"),
        figures=report(FIGURES, category="Figures"),
    log:
        f"{OUT}/logs/tables.log",
    shell:
        "{PYTHON} -m infcop.cli -q tables --config {input.cfg} > {log} 2>&1"
