"""Thread count for a job outside Snakemake: what the environment grants, never the
host's core count."""

import os

import pytest
import torch

from infcop.core.threads import cgroup_cpu_limit, configure_threads, usable_cpus


@pytest.mark.parametrize(
    "line, cpus",
    [("200000 100000", 2), ("150000 100000", 2), ("50000 100000", 1), ("max 100000", None)],
)
def test_cgroup_quota_is_read_as_whole_cpus(line, cpus):
    assert cgroup_cpu_limit(line) == cpus


def test_an_explicit_environment_wins(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert usable_cpus() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert usable_cpus() == 1


def test_without_hints_the_count_never_exceeds_the_affinity(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))


def test_configure_threads_sets_torch(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert configure_threads(0) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
