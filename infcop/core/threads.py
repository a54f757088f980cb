"""CPU threads for one job.

Under Snakemake every job gets the threads the scheduler gave it (`experiment.threads`). A single
`infcop run` / `infcop train` outside it (`experiment.threads: 0`) uses the CPUs this process may
actually use: OMP_NUM_THREADS or SLURM_CPUS_PER_TASK where set, else the smaller of its CPU affinity
and its cgroup CPU quota. torch's own default counts the host's physical cores, which in a container
or a SLURM allocation can be many times the CPUs granted, and oversubscribed OpenMP threads spin
against each other (an MNIST epoch: 1.2 s with one thread on an idle machine, 13 s on a loaded one).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cgroup_cpu_limit(cpu_max: str) -> int | None:
    """CPUs granted by a cgroup v2 `cpu.max` line ("quota period", or "max period": no limit)."""
    quota, period = cpu_max.split()[:2]
    return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))


def usable_cpus() -> int:
    for var in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    cpus = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    try:
        limit = cgroup_cpu_limit(CGROUP_CPU_MAX.read_text())
    except (OSError, ValueError):
        limit = None
    return min(cpus, limit) if limit else cpus


def configure_threads(threads: int) -> int:
    """Set torch's CPU threads to `experiment.threads`, or to `usable_cpus()` for 0;
    returns the count."""
    count = threads or usable_cpus()
    torch.set_num_threads(count)
    return count
