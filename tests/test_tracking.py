"""W&B tracking: real offline runs, read back from their run files."""
import subprocess
import sys

from infcop.engine.imp import IMPRun as _IMPRun
from infcop.engine.imp import run_imp as _run_imp
from infcop.engine.spec import RunSpec
from infcop.foundations.storage import read_json
from infcop.engine.tracking import tracking_dir, tracking_mode
from helpers.kill_resume import without_wall_clock
from helpers.wandb_reader import find_runs, read_run


def run_imp(cfg, method, seed):
    """The run's record as written to record.json."""
    return _run_imp(cfg, method, seed).to_json()


def IMPRun(cfg, method, seed):  # noqa: N802 - the engine's run, built as the CLI builds it
    return _IMPRun(RunSpec.of(cfg, method, seed))


def test_offline_runs_mirror_the_records(make_cfg):
    cfg = make_cfg("tracking.mode=offline")
    rec = run_imp(cfg, "infcop_gf", 0)
    runs = {r["run"]["job_type"]: r for r in map(read_run, find_runs(tracking_dir(cfg)))}
    assert set(runs) == {"dense", "infcop_gf"}
    imp = runs["infcop_gf"]
    assert imp["run"]["group"] == "t-digits-lenet_300_100" and imp["run"]["name"] == "infcop_gf-digits-lenet_300_100-0"
    assert imp["config"]["config_hash"] == rec["config_hash"] and imp["config"]["training"]["epochs"] == 3
    assert imp["config"]["provenance"]["packages"]["torch"]
    levels = [h for h in imp["history"] if "level/level" in h]
    assert [h["level/test_acc"] for h in levels] == [lv["test_acc"] for lv in rec["levels"]]
    assert [h["level/stop_reason"] for h in levels] == [lv["stop_reason"] for lv in rec["levels"]]
    epochs = [h for h in imp["history"] if "epoch/val_acc" in h]
    assert len(epochs) == rec["totals"]["epochs"]
    assert [h["epoch/gf_distance"] for h in epochs] == [d for lv in rec["levels"] for d in lv["measurements"]["gf_distance"]]
    assert epochs[-1]["epoch/cumulative_steps"] == rec["totals"]["optimizer_steps"]
    assert imp["summary"]["final_test_acc"] == rec["levels"][-1]["test_acc"]
    assert {"name": "level/density", "step_metric": ""} in imp["metrics"]
    dense = runs["dense"]
    assert dense["config"]["config_hash"] == rec["dense_config_hash"] and dense["summary"]["test_acc"] == rec["dense"]["test_acc"]


def test_unwritable_tracking_dir_never_stops_the_experiment(make_cfg, tmp_path, caplog):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the W&B directory should be")
    cfg = make_cfg("tracking.mode=offline", f"tracking.dir={blocker / 'wandb'}")
    rec = run_imp(cfg, "lth", 0)
    assert rec["status"] == "complete" and IMPRun(cfg, "lth", 0).dir.record.exists()
    warnings = [r for r in caplog.records if "W&B tracking disabled" in r.getMessage()]
    assert len(warnings) == 2  # once for the dense run, once for the IMP run


def test_wandb_mode_environment_overrides_config(make_cfg, monkeypatch):
    cfg = make_cfg("tracking.mode=offline")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert tracking_mode(cfg) == "disabled"
    run_imp(cfg, "lth", 0)
    assert not tracking_dir(cfg).exists()


def test_resumed_run_continues_the_same_wandb_run(tmp_path):
    cli = [sys.executable, "-m", "infcop.cli", "-q", "run", "--config", "configs/default.yaml", "--method", "lth",
           "--set", f"experiment.results_dir={tmp_path}", "--set", "training.epochs=1"]
    assert subprocess.run(cli + ["--set", "pruning.levels=1"], capture_output=True).returncode == 0
    assert subprocess.run(cli + ["--set", "pruning.levels=2"], capture_output=True).returncode == 0  # resumes
    run_id = (tmp_path / "default/runs/digits/lenet_300_100/lth/seed0/wandb_id").read_text()
    imp = [read_run(p) for p in find_runs(tmp_path / "default" / "wandb") if p.name == f"run-{run_id}.wandb"]
    assert len(imp) == 2 and all(r["run"]["job_type"] == "lth" for r in imp)
    levels = [h["level/level"] for r in imp for h in r["history"] if "level/level" in h]
    assert levels == [1, 2]
    assert read_json(tmp_path / "default/runs/digits/lenet_300_100/lth/seed0/record.json")["totals"]["levels"] == 2
    assert read_json(tmp_path / "default/runs/digits/lenet_300_100/lth/seed0/record.json")["status"] == "complete"


def test_runs_in_one_process_match_separate_runs_and_each_keeps_its_wandb_run(make_cfg):
    """`grouping: seed`: one process runs several methods (data loaded once, one W&B service). Each run
    writes the record a process of its own writes, and leaves its own complete offline W&B run."""
    from infcop.engine.imp import run_all

    methods = ["infcop_if", "lth", "random"]
    together_cfg = make_cfg("tracking.mode=offline", "experiment.name=together")
    together = run_all([RunSpec.of(together_cfg, m, 0) for m in methods])
    apart_cfg = make_cfg("tracking.mode=disabled", "experiment.name=apart")
    for method, record in zip(methods, together):
        # the config differs in experiment.name only
        assert without_wall_clock(record.to_json(), ["config"]) == without_wall_clock(run_imp(apart_cfg, method, 0),
                                                                                     ["config"])
    runs = {r["run"]["job_type"]: r for r in map(read_run, find_runs(tracking_dir(together_cfg)))}
    assert set(runs) == {"dense", *methods}
    for method, record in zip(methods, together):
        levels = [h["level/test_acc"] for h in runs[method]["history"] if "level/test_acc" in h]
        assert levels == [lv.test_acc for lv in record.levels]
        assert runs[method]["summary"]["final_test_acc"] == record.levels[-1].test_acc


def test_runs_in_one_process_skip_finished_runs(make_cfg):
    from infcop.engine.imp import run_all

    cfg = make_cfg()
    first = _run_imp(cfg, "lth", 0)
    again = run_all([RunSpec.of(cfg, m, 0) for m in ("lth", "infcop_if")])
    assert again[0].finished == first.finished  # not retrained: the record on disk, read back
    assert again[1].method == "infcop_if" and again[1].complete
