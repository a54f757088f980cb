import os

import pytest

os.environ.pop("WANDB_MODE", None)  # tests choose their tracking mode in config

from infcop.engine.spec import load_run_config as load_config


@pytest.fixture
def make_cfg(tmp_path):
    """A tiny digits config writing under tmp_path; extra `key=value` overrides as in `--set`."""

    def make(*overrides: str):
        base = [
            f"experiment.results_dir={tmp_path / 'results'}",
            "experiment.name=t",
            "training.epochs=3",
            "training.batch_size=128",
            "pruning.levels=2",
            "stopping.probe_size=64",
            "stopping.probe_batch=32",
            "experiment.threads=1",
            "tracking.mode=disabled",
        ]
        return load_config(None, base + list(overrides))

    return make


@pytest.fixture(autouse=True)
def _no_inherited_wandb_service():
    """An in-process wandb.init exports WANDB_SERVICE (its socket); subprocesses started by later
    tests (snakemake, the CLI) must start their own service instead of attaching to that one."""
    yield
    os.environ.pop("WANDB_SERVICE", None)
