"""Pin a training job to a GPU with a free slot, before torch initialises CUDA.

Snakemake's `--resources gpu=N` bounds how many training jobs run at once, but not *which* GPU
each one uses. Each job therefore claims one of the JOBS_PER_GPU slots of a device with an
exclusive, non-blocking `flock` on `<lock_dir>/gpu<i>.lock` (slot 0) or `gpu<i>.slot<j>.lock`,
held until the process exits (the kernel releases it even on a kill), and exports
CUDA_VISIBLE_DEVICES=<i>. Slots fill GPU by GPU, so k jobs per GPU (INFCOP_JOBS_PER_GPU=k with
`--resources gpu=<GPUs x k>`) spread evenly. One GPU is claimed like several. Where a scheduler
already chose (SLURM sets CUDA_VISIBLE_DEVICES for the allocation), nothing is changed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

_held: list[IO] = []  # open lock files: the claim lasts as long as the process


def visible_gpu_count() -> int:
    """GPUs on this machine, from nvidia-smi (importing torch here would
    initialise CUDA too early)."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return 0
    return (
        len([line for line in out.stdout.splitlines() if line.strip()])
        if out.returncode == 0
        else 0
    )


def default_lock_dir() -> Path:
    return Path(
        os.environ.get("INFCOP_GPU_LOCK_DIR", Path(tempfile.gettempdir()) / "infcop-gpu-locks")
    )


def jobs_per_gpu() -> int:
    """INFCOP_JOBS_PER_GPU: how many training jobs may share one GPU (1 unless set)."""
    value = os.environ.get("INFCOP_JOBS_PER_GPU", "1").strip()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(
            f"INFCOP_JOBS_PER_GPU={value!r}: a whole number of jobs per GPU, at least 1"
        )
    return int(value)


def _slot_file(lock_dir: Path, index: int, slot: int) -> Path:
    return lock_dir / (f"gpu{index}.lock" if slot == 0 else f"gpu{index}.slot{slot}.lock")


def claim_gpu(
    count: int, lock_dir: Path, timeout: float = 600.0, poll: float = 0.5, per_gpu: int = 1
) -> int:
    """Claim a free slot (of `per_gpu`) on a GPU in 0..count-1, the first slots of every GPU before
    the second ones, and return that GPU; wait up to `timeout` seconds for one."""
    if count < 1:
        raise ValueError("no GPU to claim")
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        for slot in range(per_gpu):
            for index in range(count):
                f = open(_slot_file(lock_dir, index, slot), "w")
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    f.close()
                    continue
                f.write(f"{os.getpid()}\n")
                f.flush()
                _held.append(f)
                return index
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"all {count} GPUs stayed claimed for {timeout:.0f} s (locks in {lock_dir}); "
                f"run with --resources gpu={count * per_gpu} so Snakemake never starts more jobs "
                f"than GPUs x INFCOP_JOBS_PER_GPU ({per_gpu})"
            )
        time.sleep(poll)


def pin_gpu(count: int | None = None, lock_dir: Path | None = None) -> int | None:
    """Set CUDA_VISIBLE_DEVICES to a GPU with a claimed free slot unless already set; returns the
    index, or None where a scheduler chose or there is no GPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        return None
    count = visible_gpu_count() if count is None else count
    if count < 1:
        return None
    index = claim_gpu(count, lock_dir or default_lock_dir(), per_gpu=jobs_per_gpu())
    os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
    return index
