# Real MNIST / Fashion-MNIST, fetched and verified once per dataset before any job reads them. A
# local rule: compute nodes may have no network. infcop/core/fetch.py also takes a lock per dataset
# and directory, so two studies sharing data.data_dir never write it at once either.
from infcop.core.fetch import FETCHABLE, FOLDERS, stamp_path
from infcop.foundations.paths import data_stamp

_fetch_dirs = {
    pair: cfg.data.data_dir for pair, cfg in PAIR_CFGS.items() if cfg.data.dataset in FETCHABLE
}
if len(set(_fetch_dirs.values())) > 1:
    raise WorkflowError(f"data.data_dir: the pairs that read fetched datasets must share one "
                        f"directory, got {_fetch_dirs}")
FETCH_DIR = next(iter(_fetch_dirs.values()), CFG.data.data_dir)
DATASET_OF_FOLDER = {FOLDERS[d]: d for d in FETCHABLE}


def fetched_data(wildcards):
    """The stamp of a dense job's dataset, if it is fetched. Ancient: re-verifying files rewrites
    their stamp, which must not retrain anything."""
    if wildcards.dataset not in FETCHABLE:
        return []
    return ancient(str(stamp_path(wildcards.dataset, FETCH_DIR)))


rule fetch_data:
    """Fetch one dataset into data.data_dir and verify it; files already there are verified and stamped."""
    output:
        str(data_stamp(FETCH_DIR, "{folder}")),
    params:
        dataset=lambda wildcards: DATASET_OF_FOLDER[wildcards.folder],
    log:
        str(STUDY.log("fetch_data", "{folder}")),
    wildcard_constraints:
        folder="|".join(DATASET_OF_FOLDER),
    localrule: True
    shell:
        "{PYTHON:q} -m infcop.cli -q data fetch {params.dataset:q} --data-dir {FETCH_DIR:q}"
        " > {log:q} 2>&1"
