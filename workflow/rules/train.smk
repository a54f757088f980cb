# Training jobs: dense level 0 once per dataset x model x seed, then the IMP runs of each method x
# seed (one job per run, or one per dataset x model x seed: study.grouping below).
# threads and the gpu resource let --cores, --resources gpu=N and executor profiles schedule them.


rule resolved_config:
    """The exact config every job reads (validated, with --config/--configfile applied), when it is
    missing; common.smk keeps an existing one current."""
    output:
        RESOLVED_CONFIG,
    localrule: True
    run:
        Path(output[0]).write_text(RESOLVED_TEXT)


# One small rule per kind of training job: its identity file (see common.smk). A shell command, not
# a `run:` block: Snakemake runs each `run:` job by parsing the whole workflow again (~15 s here).
for _name, _path, _identity in (("dense_id", DENSE_ID, dense_identity),
                                 ("run_id", RUN_ID, run_identity),
                                 ("diagnose_id", DIAG_ID, diagnostic_identity),
                                 ("seed_id", SEED_ID, seed_identity)):

    rule:
        name:
            _name
        output:
            _path,
        params:
            identity=_identity,
        localrule: True
        shell:
            "printf '%s\\n' {params.identity:q} > {output:q}"


# study.grouping: run = a dense level 0 job per dataset x model x seed, then one job per IMP run
# (and per diagnostic run); seed = one job per dataset x model x seed running level 0 and all its
# runs in one process (`infcop runs`), which spares each the interpreter's start-up and the data
# load. Either way every run writes the same directory and record. A run that mirrors another (a
# budget-matched control) runs after it: in the seed job's order, or with its record as an input.
#
# Under seed grouping the seed job does not own the records: Snakemake deletes every output of a
# failed job, and one run's failure must not delete the others' records. The job owns a marker,
# written once level 0 and every run of the seed have their records (`infcop runs` goes on past a
# failed run and fails only at the end); each record is owned by its own job, which finds it
# written by the seed job (a shell test, no Python start-up) or, when it is missing later,
# recomputes that run alone. update(): Snakemake neither deletes the record before that job runs
# nor after it fails.
if CFG.study.grouping == "seed":

    rule imp_seed:
        input:
            cfg=ancient(RESOLVED_CONFIG),
            data=fetched_data,
            identity=SEED_ID,
        output:
            touch(SEED_JOB),
        log:
            str(STUDY.log("imp", "{dataset}__{model}__seed{seed}")),
        benchmark:
            str(STUDY.benchmark("imp", "{dataset}__{model}__seed{seed}"))
        priority: seed_job_priority()
        threads: 1
        resources:
            gpu=GPUS,
        shell:
            "{PYTHON:q} -m infcop.cli runs --replace-stale --config {input.cfg:q}"
            " --pair {wildcards.dataset:q}/{wildcards.model:q}"
            " --seed {wildcards.seed:q} --set experiment.threads={threads} > {log:q} 2>&1"

    rule seed_dense:
        input:
            cfg=ancient(RESOLVED_CONFIG),
            seed_job=SEED_JOB,
        output:
            update(DENSE_RECORD),
        log:
            str(STUDY.log("dense", "{dataset}__{model}__seed{seed}")),
        threads: 1
        resources:
            gpu=GPUS,
        shell:
            "test -s {output:q}"
            " || {PYTHON:q} -m infcop.cli train --replace-stale --config {input.cfg:q}"
            " --pair {wildcards.dataset:q}/{wildcards.model:q}"
            " --seed {wildcards.seed:q} --set experiment.threads={threads} > {log:q} 2>&1"

    rule seed_record:
        input:
            cfg=ancient(RESOLVED_CONFIG),
            seed_job=SEED_JOB,
        output:
            update(RUN_RECORD),
        log:
            str(STUDY.log("imp", JOB)),
        threads: 1
        resources:
            gpu=GPUS,
        shell:
            "test -s {output:q}"
            " || {PYTHON:q} -m infcop.cli run --replace-stale --config {input.cfg:q}"
            " --pair {wildcards.dataset:q}/{wildcards.model:q} --method {wildcards.method:q}"
            " --seed {wildcards.seed:q} --set experiment.threads={threads} > {log:q} 2>&1"

    rule seed_diagnosis:
        input:
            cfg=ancient(RESOLVED_CONFIG),
            seed_job=SEED_JOB,
        output:
            update(DIAG_RECORD),
        log:
            str(STUDY.log("diagnose", JOB)),
        threads: 1
        resources:
            gpu=GPUS,
        shell:
            "test -s {output:q}"
            " || {PYTHON:q} -m infcop.cli run --replace-stale --config {input.cfg:q}"
            " --pair {wildcards.dataset:q}/{wildcards.model:q} --method {wildcards.method:q}"
            " --diagnose --seed {wildcards.seed:q} --set experiment.threads={threads}"
            " > {log:q} 2>&1"

else:

    rule dense:
        input:
            cfg=ancient(RESOLVED_CONFIG),
            data=fetched_data,
            identity=DENSE_ID,
        output:
            DENSE_RECORD,
        log:
            str(STUDY.log("dense", "{dataset}__{model}__seed{seed}")),
        benchmark:
            str(STUDY.benchmark("dense", "{dataset}__{model}__seed{seed}"))
        threads: 1
        resources:
            gpu=GPUS,
        shell:
            "{PYTHON:q} -m infcop.cli train --replace-stale --config {input.cfg:q}"
            " --pair {wildcards.dataset:q}/{wildcards.model:q}"
            " --seed {wildcards.seed:q} --set experiment.threads={threads} > {log:q} 2>&1"

    rule imp:
        input:
            cfg=ancient(RESOLVED_CONFIG),
            dense=ancient(rules.dense.output[0]),
            mirrored=mirrored_record,
            identity=RUN_ID,
        output:
            RUN_RECORD,
        log:
            str(STUDY.log("imp", JOB)),
        benchmark:
            str(STUDY.benchmark("imp", JOB))
        threads: 1
        resources:
            gpu=GPUS,
        shell:
            "{PYTHON:q} -m infcop.cli run --replace-stale --config {input.cfg:q}"
            " --pair {wildcards.dataset:q}/{wildcards.model:q} --method {wildcards.method:q}"
            " --seed {wildcards.seed:q} --set experiment.threads={threads} > {log:q} 2>&1"


    rule diagnose:
        input:
            cfg=ancient(RESOLVED_CONFIG),
            dense=ancient(rules.dense.output[0]),
            mirrored=mirrored_record,
            identity=DIAG_ID,
        output:
            DIAG_RECORD,
        log:
            str(STUDY.log("diagnose", JOB)),
        benchmark:
            str(STUDY.benchmark("diagnose", JOB))
        threads: 1
        resources:
            gpu=GPUS,
        shell:
            "{PYTHON:q} -m infcop.cli run --replace-stale --config {input.cfg:q}"
            " --pair {wildcards.dataset:q}/{wildcards.model:q} --method {wildcards.method:q}"
            " --diagnose --seed {wildcards.seed:q} --set experiment.threads={threads}"
            " > {log:q} 2>&1"
