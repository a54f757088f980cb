# The accuracy-cost frontier of the study's stopping rules (studies with `study.frontier: true`,
# e.g. configs/frontier.yaml). Like the other aggregates it reads the whole resolved config, so it
# takes it as a plain input and its content hash as a param; runs.csv stands for "every run record
# is there".

FRONTIER_OUTPUTS = (
    [str(p) for p in STUDY.frontier_outputs(CFG.study.pairs)] if CFG.study.frontier else []
)


rule frontier:
    input:
        cfg=RESOLVED_CONFIG,
        runs=rules.collect.output[0],
    output:
        md=report(str(STUDY.frontier("md")), category="Frontier"),
        csv=str(STUDY.frontier("csv")),
        budgeted=report([str(p) for p in STUDY.frontier_budgeted_tables], category="Frontier"),
        figures=report(
            [str(p) for p in STUDY.frontier_figures(CFG.study.pairs)], category="Frontier"
        ),
    params:
        config_sha256=RESOLVED_SHA256,
    log:
        str(STUDY.log("aggregate", "frontier")),
    shell:
        "{PYTHON:q} -m infcop.study.frontier --config {input.cfg:q} > {log:q} 2>&1"
