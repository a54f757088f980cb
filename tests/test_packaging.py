"""The harness as a pip user gets it: a real wheel, installed (not editable) into a fresh virtual
environment, `infcop init`, a baseline of the user's own, and the workflow run through Snakemake."""

import csv
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

from helpers.wandb_reader import find_runs, read_run

REPO = Path(__file__).resolve().parents[1]
# what a checkout holds beside the sources: never part of the wheel's input
LEFT_OUT = shutil.ignore_patterns(
    ".git",
    ".venv",
    "results",
    "data",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".snakemake",
    "wandb",
    ".pytest_cache",
)
MY_BASELINE = '''
from infcop.core.resets import ResetToInit
from infcop.criteria import FixedEpochs
from infcop.methods import (BuildContext, MethodSpec, NoParams, Role, fraction_schedule, magnitude,
                            register_method)


@register_method("my_baseline", role=Role.COMPETITOR, schedule=fraction_schedule)
def my_baseline(ctx: BuildContext, p: NoParams) -> MethodSpec:
    """Mine: magnitude pruning, reset to θ₀, retrain one epoch."""
    return MethodSpec(magnitude(ctx), ResetToInit(), FixedEpochs(1))
'''


def _run(cmd, cwd, timeout=600):
    env = {
        k: v for k, v in os.environ.items() if k != "PYTHONPATH"
    }  # the wheel's copy, not a checkout's
    out = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of this working tree (a build writes into its source folder)."""
    tmp = tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO, tmp / "src", ignore=LEFT_OUT)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            tmp / "dist",
            ".",
        ],
        cwd=tmp / "src",
    )
    (built,) = (tmp / "dist").glob("infcop-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed, not editable. Its dependencies come
    from this environment's site-packages through a .pth line (no network); the .pth files in
    there (this checkout's editable install) are not processed: the wheel's infcop is imported."""
    root = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", root], cwd=root.parent)
    python = root / "bin" / "python"
    purelib = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root
        ).stdout.strip()
    )
    (purelib / "_infcop_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], cwd=root)
    where = _run([python, "-c", "import infcop; print(infcop.__file__)"], cwd=root).stdout.strip()
    assert Path(where).is_relative_to(root), f"infcop imported from {where}, not from {root}"
    return root


def test_the_wheel_ships_baselines_workflow_configs_claims_and_profiles(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"infcop/baselines/{p.name}" for p in (REPO / "baselines").glob("*.py")}
    for folder in ("configs", "claims"):
        expected |= {f"infcop/{folder}/{p.name}" for p in (REPO / folder).glob("*.yaml")}
    for path in [*(REPO / "workflow").rglob("*"), *(REPO / "profiles").rglob("*")]:
        if path.is_file() and "__pycache__" not in path.parts:
            expected.add(f"infcop/{path.relative_to(REPO)}")
    assert len(expected) > 30 and expected <= names, sorted(expected - names)
    assert not [n for n in names if n.split("/")[0] not in ("infcop",) and ".dist-info/" not in n]


def _study(venv: Path, tmp_path: Path) -> Path:
    """`infcop init`, a baseline of the user's own in its baselines/, a smoke study that runs it."""
    study = tmp_path / "study"
    out = _run([venv / "bin" / "infcop", "init", study], cwd=tmp_path)
    assert "wrote" in out.stdout
    assert (study / "baselines" / "_template.py.example").is_file()
    assert not list(study.glob("baselines/*.py"))
    (study / "baselines" / "my_baseline.py").write_text(MY_BASELINE)
    smoke = yaml.safe_load((study / "configs" / "smoke.yaml").read_text())
    smoke["study"].update(methods=["infcop_if", "my_baseline"], diagnose=[])
    (study / "configs" / "smoke.yaml").write_text(yaml.safe_dump(smoke))
    return study


def test_init_writes_a_study_the_installed_workflow_plans(venv, tmp_path):
    study = _study(venv, tmp_path)
    methods = _run([venv / "bin" / "infcop", "methods"], cwd=study).stdout.splitlines()
    row = next(i for i, line in enumerate(methods) if line.startswith("my_baseline "))
    assert methods[row + 1].split() == ["from", str(Path("baselines") / "my_baseline.py")]
    lth = next(i for i, line in enumerate(methods) if line.startswith("lth "))
    assert methods[lth + 1].split() == ["from", "built-in", "baselines/lth.py"]
    snakemake = [venv / "bin" / "python", "-m", "snakemake", "-n", "--cores", "1"]
    smoke = _run([*snakemake, "--config", "experiment=smoke"], cwd=study).stdout
    assert f"Snakefile: {study / 'Snakefile'}" in smoke
    assert "results/smoke/runs/digits/lenet_300_100/my_baseline/seed2/record.json" in smoke
    default = _run(snakemake, cwd=study).stdout
    assert "Nothing to be done" not in default and "results/default/stats.json" in default
    again = subprocess.run(
        [venv / "bin" / "infcop", "init", study], capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 2 and again.stderr.splitlines() == [
        f"error: {study}: already exists and is not empty; `infcop init` writes a new study "
        "directory"
    ]


@pytest.mark.slow
def test_a_pip_user_runs_the_smoke_study_with_a_baseline_of_their_own(venv, tmp_path):
    study = _study(venv, tmp_path)
    snakemake = [venv / "bin" / "python", "-m", "snakemake", "--cores", "2"]
    _run([*snakemake, "--config", "experiment=smoke"], cwd=study, timeout=1800)
    results = study / "results" / "smoke"
    logged = {
        r["config"]["seed"]: r
        for r in map(read_run, find_runs(results / "wandb"))
        if r["run"]["job_type"] == "imp" and r["config"]["method"] == "my_baseline"
    }
    assert sorted(logged) == [0, 1, 2]
    for seed in (0, 1, 2):
        run = results / "runs" / "digits" / "lenet_300_100" / "my_baseline" / f"seed{seed}"
        record = json.loads((run / "record.json").read_text())
        assert record["method"] == "my_baseline" and record["status"] == "complete"
        assert logged[seed]["config"]["config_hash"] == record["config_hash"]
    with open(results / "comparisons.csv") as f:
        assert [(r["infcop"], r["vs"]) for r in csv.DictReader(f)] == [("infcop_if", "my_baseline")]
    with open(results / "runs.csv") as f:
        assert {r["method"] for r in csv.DictReader(f)} == {"infcop_if", "my_baseline"}
    assert "my_baseline" in (results / "summary.md").read_text()
    assert not (tmp_path / "results").exists(), "results must go under the study directory"
