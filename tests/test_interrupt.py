"""Ctrl-C during a real Snakemake study: no traceback, one line on what was kept, and the same
command resumes the interrupted run after its last finished level."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers.kill_resume import interruptible

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1"]


def test_ctrl_c_under_snakemake_prints_no_traceback_and_the_study_resumes(tmp_path):
    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg["experiment"]["seeds"] = [0]
    cfg["pruning"]["levels"] = 12  # long enough to be caught between levels
    cfg["study"].update(methods=["lth"], diagnose=[])
    cfg["tracking"]["mode"] = "disabled"
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    command = [*SNAKEMAKE, "-d", str(tmp_path), "--configfile", str(tmp_path / "study.yaml")]
    log = tmp_path / "results/smoke/logs/imp/digits__lenet_300_100__lth__seed0.log"
    record = tmp_path / "results/smoke/runs/digits/lenet_300_100/lth/seed0/record.json"

    # a terminal's Ctrl-C reaches the whole foreground process group: Snakemake and its jobs
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=interruptible,
    )
    deadline = time.time() + 600
    while not (log.exists() and " level 2 " in log.read_text()) and time.time() < deadline:
        time.sleep(0.2)  # the job's log shows a line per finished level while it runs
    assert not record.exists(), "the run finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=300)

    assert proc.returncode != 0, out
    assert "Traceback" not in out and "Traceback" not in log.read_text(), out
    kept = "snakemake stopped: finished runs and every finished pruning level are kept"
    assert any(line.startswith(kept) for line in out.splitlines()), out
    last = log.read_text().rstrip().splitlines()[-1]
    assert last.startswith("interrupted: every finished pruning level is checkpointed"), last
    assert last in out  # the stopped job's log is shown in the terminal (show-failed-logs)

    again = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in log.read_text() and record.exists()


def test_ctrl_c_under_infcop_run_ends_with_one_line(tmp_path):
    command = [
        sys.executable,
        "-m",
        "infcop.cli",
        "run",
        "--config",
        str(REPO / "configs/smoke.yaml"),
        "--method",
        "lth",
        "--set",
        f"experiment.results_dir={tmp_path}",
        "--set",
        "pruning.levels=12",
        "--set",
        "tracking.mode=disabled",
    ]
    proc = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=interruptible
    )
    lines = []
    for line in proc.stderr:  # one INFO line per finished level
        lines.append(line)
        if " level 2 " in line:
            break
    os.killpg(proc.pid, signal.SIGINT)
    lines += proc.stderr.readlines()
    proc.wait(timeout=120)
    assert proc.returncode == 130 and not any("Traceback" in line for line in lines), lines
    assert lines[-1].startswith("interrupted: every finished pruning level is checkpointed"), lines


def test_ctrl_c_that_torch_turns_into_an_error_still_ends_with_one_line(monkeypatch, capsys):
    """A Ctrl-C while torch.save writes reaches Python as torch's RuntimeError, not as the
    KeyboardInterrupt raised inside it; it must end as an interruption all the same."""
    import infcop.cli as cli

    def save_interrupted(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the handler raises KeyboardInterrupt
            time.sleep(5)
        except KeyboardInterrupt:
            pass
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")

    monkeypatch.setattr(cli, "cmd_methods", save_interrupted)
    # as in a terminal (a test run from a background shell inherits SIGINT ignored)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert cli.main(["methods"]) == 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler put back
    finally:
        signal.signal(signal.SIGINT, inherited)
    err = capsys.readouterr().err
    assert err.startswith("interrupted: ") and err.count("\n") == 1 and "Traceback" not in err


def test_an_error_without_ctrl_c_is_not_called_an_interruption(monkeypatch):
    import infcop.cli as cli

    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "cmd_methods", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["methods"])
