"""The smoke study through a real local SLURM cluster (tests/slurm/start-local-slurm.sh) via
the slurm profile."""

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
VOLATILE = {"cumulative_seconds"}


def slurm_up() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mix", "alloc"))


def slurm_jobs() -> dict[str, str]:
    """{job id: state} of every job slurmctld still remembers (MinJobAge keeps finished
    ones for an hour)."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i %T"], capture_output=True, text=True, check=True
    )
    return dict(line.split() for line in out.stdout.splitlines() if line.strip())


def runs_table(work: Path) -> list[dict]:
    with open(work / "results" / "smoke" / "runs.csv") as f:
        return sorted(
            ({k: v for k, v in r.items() if k not in VOLATILE} for r in csv.DictReader(f)),
            key=lambda r: (r["method"], r["seed"], int(r["level"])),
        )


@pytest.mark.slow
@pytest.mark.skipif(
    not slurm_up(), reason="no SLURM cluster: run tests/slurm/start-local-slurm.sh as root first"
)
def test_smoke_study_through_slurm_matches_local_run(tmp_path):
    base = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--config",
        "experiment=smoke",
    ]
    local = subprocess.run(
        [*base, "-d", str(tmp_path / "local"), "--cores", "2"], capture_output=True, text=True
    )
    assert local.returncode == 0, local.stderr[-3000:]
    before = slurm_jobs()
    cluster = subprocess.run(
        [
            *base,
            "-d",
            str(tmp_path / "slurm"),
            "--profile",
            str(REPO / "workflow" / "profiles" / "slurm"),
            "--default-resources",
            "slurm_partition=local",
            "runtime=30",
            "mem_mb=2000",
            "cpus_per_task=1",
            "--slurm-status-command",
            "squeue",
            "--slurm-init-seconds-before-status-checks",
            "2",
            "--jobs",
            "2",
            "--latency-wait",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert cluster.returncode == 0, cluster.stderr[-5000:]
    submitted = {j: state for j, state in slurm_jobs().items() if j not in before}
    # a dense run, each IMP and diagnostic run per seed, and collect, stats, claims, tables went
    # through sbatch; the local rules (ids, resolved config, W&B mirror) did not
    smoke = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    study, seeds = smoke["study"], smoke["experiment"]["seeds"]
    runs = len(seeds) * (1 + len(study["methods"]) + len(study["diagnose"]))
    assert len(submitted) == runs + 4 and set(submitted.values()) == {"COMPLETED"}
    assert runs_table(tmp_path / "slurm") == runs_table(tmp_path / "local")
    assert (tmp_path / "slurm" / "results" / "smoke" / "summary.md").exists()
