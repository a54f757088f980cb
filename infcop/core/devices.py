"""Pin a training job to one free GPU on a multi-GPU machine, before torch initialises CUDA.

Snakemake's `--resources gpu=N` bounds how many training jobs run at once, but not *which* GPU
each one uses. Each job therefore claims a device with an exclusive, non-blocking `flock` on
`<lock_dir>/gpu<i>.lock`, held until the process exits (the kernel releases it even on a kill),
and exports CUDA_VISIBLE_DEVICES=<i>. Where a scheduler already chose (SLURM sets
CUDA_VISIBLE_DEVICES for the allocation), nothing is changed.
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
    """GPUs on this machine, from nvidia-smi (importing torch here would initialise CUDA too early)."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return 0
    return len([line for line in out.stdout.splitlines() if line.strip()]) if out.returncode == 0 else 0


def default_lock_dir() -> Path:
    return Path(os.environ.get("INFCOP_GPU_LOCK_DIR", Path(tempfile.gettempdir()) / "infcop-gpu-locks"))


def claim_gpu(count: int, lock_dir: Path, timeout: float = 600.0, poll: float = 0.5) -> int:
    """Claim the lowest-numbered free GPU in 0..count-1; wait up to `timeout` seconds for one."""
    if count < 1:
        raise ValueError("no GPU to claim")
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        for index in range(count):
            f = open(lock_dir / f"gpu{index}.lock", "w")
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
            raise TimeoutError(f"all {count} GPUs stayed claimed for {timeout:.0f} s (locks in {lock_dir}); "
                               f"run with --resources gpu={count} so Snakemake never starts more jobs than GPUs")
        time.sleep(poll)


def pin_gpu(count: int | None = None, lock_dir: Path | None = None) -> int | None:
    """Set CUDA_VISIBLE_DEVICES to a claimed free GPU unless already set; returns the index or None."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        return None
    count = visible_gpu_count() if count is None else count
    if count <= 1:
        return None  # one GPU (or none): nothing to choose
    index = claim_gpu(count, lock_dir or default_lock_dir())
    os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
    return index
