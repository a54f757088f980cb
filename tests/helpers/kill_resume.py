"""Shared by the tests that kill a CLI run at a given point and check
that rerunning it ends with the numbers of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def without_wall_clock(value, ignore=()):
    """A record (or any part of it) without wall-clock fields (`*seconds*`, started, finished), its
    checksum (`sha256`, which covers them) and the keys in `ignore`, at every depth: what two runs
    of the same config and seed must agree on."""
    if isinstance(value, dict):
        return {
            k: without_wall_clock(v, ignore)
            for k, v in value.items()
            if "seconds" not in k and k not in ("started", "finished", "sha256", *ignore)
        }
    return [without_wall_clock(v, ignore) for v in value] if isinstance(value, list) else value


def flow_cli(results, *extra):
    """infcop_gf (a flow criterion) on the default config, 10 levels of 4 epochs."""
    return [
        sys.executable,
        "-m",
        "infcop.cli",
        "-q",
        "run",
        "--config",
        "configs/default.yaml",
        "--method",
        "infcop_gf",
        "--set",
        f"experiment.results_dir={results}",
        "--set",
        "pruning.levels=10",
        "--set",
        "training.epochs=4",
        "--set",
        "experiment.threads=1",
        "--set",
        "methods.infcop_gf.epsilon=0.0001",
        *extra,
    ]


def dropout_cli(results, *extra):
    """infcop_if on a model with dropout (tests/helpers/dropout_runner.py
    registers it), 6 levels."""
    return [
        sys.executable,
        "tests/helpers/dropout_runner.py",
        "-q",
        "run",
        "--config",
        "configs/default.yaml",
        "--method",
        "infcop_if",
        "--set",
        "model.name=mlp_dropout",
        "--set",
        f"experiment.results_dir={results}",
        "--set",
        "pruning.levels=6",
        "--set",
        "training.epochs=3",
        "--set",
        "experiment.threads=1",
        "--set",
        "methods.infcop_if.epsilon=0.0001",
        "--set",
        "tracking.mode=disabled",
        *extra,
    ]


def kill_resume_and_compare(
    tmp_path: Path, cli, run_path: str, levels: int, kill_when: str = "checkpoints/level2.pt"
) -> None:
    """Kill `cli` with SIGKILL once `kill_when` exists (a path under the run directory when it
    starts with checkpoints/, else under the results directory), rerun it, and compare every level's
    numbers with an uninterrupted run."""
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cli(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = killed / run_path
    marker = run / kill_when if kill_when.startswith("checkpoints/") else killed / kill_when
    deadline = time.time() + 120
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before it could be killed"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "record.json").exists(), "killed mid-run"
    assert subprocess.run(cli(killed), capture_output=True).returncode == 0
    assert subprocess.run(cli(tmp_path / "clean"), capture_output=True).returncode == 0
    resumed = json.loads((run / "record.json").read_text())
    clean = json.loads((tmp_path / "clean" / run_path / "record.json").read_text())
    assert len(resumed["levels"]) == levels
    assert without_wall_clock(resumed["levels"]) == without_wall_clock(clean["levels"])
    assert not list(killed.rglob("*.tmp")), "temporaries of the killed writes were left behind"


def interruptible() -> None:
    """Popen's preexec_fn for a process the test will Ctrl-C: SIGINT back to its default, as under
    a terminal (a shell that started pytest in the background made its children ignore SIGINT, and
    Python keeps an ignored SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
