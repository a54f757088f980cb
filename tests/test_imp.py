"""The IMP engine end to end on CPU: output contract, bad checkpoints, divergence, diagnosis (resume
after a kill is in tests/test_faults.py, the fault catalogue)."""

import csv
import os
import subprocess
import sys

import pytest
from helpers.kill_resume import without_wall_clock

from infcop.foundations.storage import ConfigMismatch
from infcop.engine.imp import IMPRun as _IMPRun
from infcop.engine.imp import run_imp as _run_imp
from infcop.engine.spec import RunSpec
from infcop.core.masks import density, load_mask
from infcop.foundations.storage import CorruptFile


def run_imp(cfg, method, seed):
    """The run's record as written to record.json."""
    return _run_imp(cfg, method, seed).to_json()


def IMPRun(cfg, method, seed):  # noqa: N802 - the engine's run, built as the CLI builds it
    return _IMPRun(RunSpec.of(cfg, method, seed))


@pytest.mark.parametrize("method", ["infcop_if", "infcop_gf", "lth"])
def test_output_contract(make_cfg, method):
    cfg = make_cfg()
    rec = run_imp(cfg, method, 0)
    d = IMPRun(cfg, method, 0).dir.root
    assert str(d).endswith(f"runs/digits/lenet_300_100/{method}/seed0")
    for key in (
        "method",
        "dataset",
        "model",
        "seed",
        "config_hash",
        "status",
        "provenance",
        "dense",
        "levels",
        "totals",
    ):
        assert key in rec
    assert rec["status"] == "complete" and len(rec["levels"]) == 2
    assert rec["provenance"]["data"]["source"] == "embedded: scikit-learn digits"
    assert 0 <= rec["dense"]["best_val_acc"] <= 1 and 0 <= rec["dense"]["test_acc"] <= 1
    for lv in rec["levels"]:
        for key in (
            "level",
            "density",
            "val_acc",
            "test_acc",
            "epochs",
            "optimizer_steps",
            "train_samples",
            "monitor_forward_samples",
            "monitor_backward_samples",
            "train_seconds",
            "monitor_seconds",
            "eval_seconds",
            "train_flops",
            "monitor_flops",
            "stop_reason",
            "measurements",
        ):
            assert key in lv, key
        assert lv["stop_reason"] in ("flow", "accuracy", "cap")
        assert density(load_mask(d / "masks" / f"level{lv['level']}.pt")) == lv["density"]
    assert rec["levels"][0]["density"] == pytest.approx(0.8, abs=1e-3)
    assert rec["totals"]["epochs"] == sum(lv["epochs"] for lv in rec["levels"])
    if method == "infcop_if":  # the exact monitoring charges are tests/test_costs.py's
        assert len(rec["levels"][0]["measurements"]["if_distance"]) == rec["levels"][0]["epochs"]
    if method == "infcop_gf":
        assert rec["levels"][1]["monitor_backward_samples"] == 64 * rec["levels"][1]["epochs"]
    if method == "lth":
        assert all(lv["epochs"] == 3 and lv["monitor_flops"] == 0 for lv in rec["levels"])
    with open(d / "levels.csv") as f:
        assert [int(r["level"]) for r in csv.DictReader(f)] == [1, 2]
    with open(d / "epochs.csv") as f:
        assert len(list(csv.DictReader(f))) == rec["totals"]["epochs"]


def test_rerun_skips_and_extending_levels_resumes(make_cfg):
    cfg = make_cfg()
    first = run_imp(cfg, "lth", 0)
    again = run_imp(cfg, "lth", 0)
    assert again == first
    longer = run_imp(make_cfg("pruning.levels=3"), "lth", 0)
    assert (
        without_wall_clock(longer["levels"][:2]) == without_wall_clock(first["levels"])
        and len(longer["levels"]) == 3
    )


def test_corrupt_and_mismatched_checkpoints_are_errors(make_cfg):
    cfg = make_cfg("pruning.levels=1")
    run_imp(cfg, "lth", 0)
    longer = make_cfg("pruning.levels=2")
    ckpt = IMPRun(longer, "lth", 0).dir.root / "checkpoints" / "level1.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CorruptFile, match="level1.pt is corrupt"):
        run_imp(longer, "lth", 0)
    with pytest.raises(ConfigMismatch, match="delete"):
        run_imp(make_cfg("pruning.levels=1", "pruning.fraction=0.5"), "lth", 0)


def test_mismatch_through_cli_is_a_clear_error(tmp_path):
    base = [
        sys.executable,
        "-m",
        "infcop.cli",
        "-q",
        "train",
        "--config",
        "configs/default.yaml",
        "--set",
        f"experiment.results_dir={tmp_path}",
        "--set",
        "training.epochs=1",
    ]
    assert subprocess.run(base, capture_output=True).returncode == 0
    out = subprocess.run(base[:-1] + ["training.epochs=2"], capture_output=True, text=True)
    assert out.returncode == 2 and "error:" in out.stderr and "Traceback" not in out.stderr


def test_diverging_level_is_recorded_not_raised(make_cfg):
    rec = run_imp(make_cfg("methods.finetune.lr=1e12"), "finetune", 0)
    assert rec["status"] == "diverged" and rec["diverged_at_level"] == 1 and rec["levels"] == []


def test_diagnostic_mode_records_when_each_criterion_would_fire(make_cfg):
    cfg = make_cfg("stopping.diagnose=true", "training.epochs=4")
    rec = run_imp(cfg, "infcop_if", 0)
    assert (
        rec["diagnostic"]
        and IMPRun(cfg, "infcop_if", 0).dir.root.parent.name == "infcop_if_diagnose"
    )
    with open(IMPRun(cfg, "infcop_if", 0).dir.root / "epochs.csv") as f:
        rows = list(csv.DictReader(f))
    for lv in rec["levels"]:
        assert (
            lv["epochs"] == 3
        )  # trained to the cap (T − t after the rewind) whatever the criteria say
        diag = lv["diagnosis"]
        assert set(diag) == {"oracle_epoch", "method_epoch", "criteria"}
        assert set(diag["criteria"]) == {"information_flow", "gradient_flow", "mask_stability"}
        assert set(diag["criteria"]["information_flow"]) == {"0.02", "0.05", "0.11", "0.2"}
        mine = [r for r in rows if int(r["level"]) == lv["level"]]
        assert all(r["if_distance"] and r["gf_distance"] for r in mine)
        # recompute one entry from the per-epoch record
        first = next((int(r["epoch"]) for r in mine if float(r["if_distance"]) < 0.11), None)
        assert diag["criteria"]["information_flow"]["0.11"] == first
        oracle = next(
            (int(r["epoch"]) for r in mine if float(r["val_acc"]) >= rec["dense"]["best_val_acc"]),
            None,
        )
        assert diag["oracle_epoch"] == oracle


def test_diagnosing_the_random_control_leaves_out_mask_stability(make_cfg):
    # a random pruner ignores the weights, so "has the next mask stopped changing"
    # means nothing for it
    rec = run_imp(
        make_cfg("stopping.diagnose=true", "training.epochs=2", "pruning.levels=1"), "random", 0
    )
    assert rec["status"] == "complete"
    assert set(rec["levels"][0]["diagnosis"]["criteria"]) == {"information_flow", "gradient_flow"}


def test_same_seed_same_numbers_on_cpu(make_cfg, tmp_path):
    a = run_imp(make_cfg(), "infcop_if", 0)
    b = run_imp(make_cfg(f"experiment.results_dir={tmp_path / 'b'}"), "infcop_if", 0)
    assert without_wall_clock(a["levels"]) == without_wall_clock(b["levels"])


def test_cli_run_prints_levels(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "infcop.cli",
            "-q",
            "run",
            "--config",
            "configs/default.yaml",
            "--method",
            "lth",
            "--set",
            f"experiment.results_dir={tmp_path}",
            "--set",
            "pruning.levels=1",
            "--set",
            "training.epochs=2",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "level  1  density 0.8000" in out.stdout


def test_unknown_method_on_cli(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "infcop.cli",
            "run",
            "--config",
            "configs/default.yaml",
            "--method",
            "nope",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "unknown method 'nope'; known methods:" in out.stderr


def test_cuda_without_gpu_and_diverged_dense_are_clear(tmp_path):
    base = [
        sys.executable,
        "-m",
        "infcop.cli",
        "train",
        "--config",
        "configs/default.yaml",
        "--set",
        f"experiment.results_dir={tmp_path}",
        "--set",
        "training.epochs=1",
        "--set",
        "tracking.mode=disabled",
    ]
    out = subprocess.run(
        base + ["--set", "experiment.device=cuda"],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert (
        out.returncode == 2
        and "experiment.device: cuda" in out.stderr
        and "Traceback" not in out.stderr
    )
    out = subprocess.run(base + ["--set", "training.lr=1e12"], capture_output=True, text=True)
    # a diverged run is a result (its record says so), not a failed job
    assert (
        out.returncode == 0
        and "status diverged" in out.stdout
        and "recorded as a result" in out.stderr
    )
    assert "Traceback" not in out.stderr


def test_run_all_trains_level_0_first_and_keeps_to_one_seed(make_cfg):
    """A seed job's runs share one level 0, which it trains first; runs of two seeds or two dense
    configs are refused before anything is trained."""
    from infcop.engine.dense import dense_dir
    from infcop.engine.imp import run_all

    cfg = make_cfg("pruning.levels=1")
    with pytest.raises(ValueError, match="differ in seed"):
        run_all([RunSpec.of(cfg, "lth", 0), RunSpec.of(cfg, "lth", 1)])
    with pytest.raises(ValueError, match="differ in seed"):
        run_all([RunSpec.of(cfg, "lth", 0), RunSpec.of(make_cfg("training.lr=0.01"), "lth", 0)])
    assert not dense_dir(cfg, 0).record.exists()
    (record,) = run_all([RunSpec.of(cfg, "lth", 0)])
    dense = dense_dir(cfg, 0).record
    assert record.complete and dense.exists()
    assert dense.stat().st_mtime_ns < RunSpec.of(cfg, "lth", 0).dir.record.stat().st_mtime_ns
