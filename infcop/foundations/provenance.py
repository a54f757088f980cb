"""Provenance of a result: code version, package versions, platform, device, time."""

from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = (
    "infcop",
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "scikit-learn",
    "mnist1d",
    "snakemake",
    "wandb",
)


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(device: torch.device, data: dict | None = None) -> dict:
    """`data`: where the dataset came from (`Splits.source`: source, verification
    time, content hashes)."""
    return {
        "data": data,
        "git_commit": _git_commit(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device)
        if device.type == "cpu"
        else f"{device} ({torch.cuda.get_device_name(device)})",
        "torch_threads": torch.get_num_threads(),
        "kernels": {
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        },
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
