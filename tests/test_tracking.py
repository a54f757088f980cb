"""W&B tracking: offline runs built from the finished records, read back from their run files."""

import json

from infcop.engine.imp import run_imp
from infcop.engine.spec import RunSpec
from infcop.engine.tracking import group_name, track_study, tracking_dir, tracking_mode
from infcop.foundations.paths import study_dir
from helpers.wandb_reader import find_runs, read_run

PAIR = "digits/lenet_300_100"


def runs_by_name(cfg) -> dict[str, dict]:
    return {
        r["run"]["name"]: {**r, "path": p}
        for p in find_runs(tracking_dir(cfg))
        for r in [read_run(p)]
    }


def test_offline_runs_mirror_the_records(make_cfg):
    cfg = make_cfg(
        "tracking.mode=offline",
        "study.methods=[infcop_gf, lth]",
        "experiment.seeds=[0, 1]",
        "tracking.tags=[mine]",
    )
    records = {(m, s): run_imp(cfg, m, s) for m in ("infcop_gf", "lth") for s in (0, 1)}
    tables = {"summary": [{"method": "lth", "n": 2, "test_acc_%": 91.25, "p": None}]}
    assert track_study({PAIR: cfg}, summary=(tables, [])) == 4 + 2 + 1  # runs, dense, summary
    runs = runs_by_name(cfg)
    assert sorted(runs) == sorted(
        [f"{m}-digits-lenet_300_100-{s}" for m in ("infcop_gf", "lth", "dense") for s in (0, 1)]
        + ["summary-t"]
    )
    for (method, seed), rec in records.items():
        r = runs[f"{method}-digits-lenet_300_100-{seed}"]
        # one group per method on one pair: W&B draws each method's mean and spread over seeds
        assert (
            r["run"]["group"]
            == group_name("t", "digits", "lenet_300_100", method)
            == f"t/digits/lenet_300_100/{method}"
        )
        assert r["run"]["job_type"] == "imp" and set(r["tags"]) == {
            "t",
            PAIR,
            rec.role,
            rec.base_method,
            "mine",
        }
        c = r["config"]
        assert (c["study"], c["pair"], c["method"], c["family"], c["role"], c["seed"]) == (
            "t",
            PAIR,
            method,
            rec.base_method,
            rec.role,
            seed,
        )
        assert (
            c["config_hash"] == rec.config_hash
            and c["training"]["epochs"] == 3
            and c["provenance"]["packages"]
        )
        levels = [h for h in r["history"] if "level/level" in h]
        assert [h["level/test_acc"] for h in levels] == [lv.test_acc for lv in rec.levels]
        assert [h["level/stop_reason"] for h in levels] == [lv.stop_reason for lv in rec.levels]
        assert [h["level/cumulative_epochs"] for h in levels] == [
            sum(lv.costs.epochs for lv in rec.levels[: i + 1]) for i in range(len(rec.levels))
        ]
        epochs = [h for h in r["history"] if "epoch/val_acc" in h]
        assert len(epochs) == rec.totals.epochs
        assert epochs[-1]["epoch/cumulative_steps"] == rec.totals.optimizer_steps
        assert r["summary"]["final_test_acc"] == rec.levels[-1].test_acc
        assert {"name": "level/density", "step_metric": ""} in r["metrics"]
        (art,) = r["artifacts"]
        assert (
            art["type"] == "run-record"
            and art["name"] == f"t-digits-lenet_300_100-{method}-seed{seed}"
        )
        assert sorted(art["files"]) == ["epochs.csv", "levels.csv", "record.json"]
        # no pip list per run (the record's provenance has the versions): it was 2/3 of `track`
        assert not (r["path"].parent / "files" / "requirements.txt").exists()
    gf = runs["infcop_gf-digits-lenet_300_100-0"]
    gf_rec = records[("infcop_gf", 0)]
    assert [h["epoch/gf_distance"] for h in gf["history"] if "epoch/val_acc" in h] == [
        d for lv in gf_rec.levels for d in lv.measurements["gf_distance"]
    ]
    dense = runs["dense-digits-lenet_300_100-0"]
    assert (
        dense["run"]["job_type"] == "dense"
        and dense["config"]["config_hash"] == gf_rec.dense_config_hash
    )
    assert dense["summary"]["test_acc"] == gf_rec.dense["test_acc"]
    summary = runs["summary-t"]
    assert (summary["path"].parent / "files" / "requirements.txt").exists()  # the study's, once
    assert len(summary["config"]["inputs"]) == 6 and all(
        i.endswith(":latest") for i in summary["config"]["inputs"]
    )
    assert summary["summary"]["table/summary._type"] == "table-file"
    assert (
        summary["summary"]["table/summary.nrows"],
        summary["summary"]["table/summary.ncols"],
    ) == (1, 4)


def test_numeric_table_cells_stay_numbers(make_cfg):
    cfg = make_cfg("tracking.mode=offline", "study.methods=[lth]")
    run_imp(cfg, "lth", 0)
    tables = {"summary": [{"method": "lth", "n": 3, "test_acc_%": 91.25, "p": None}]}
    track_study({PAIR: cfg}, summary=(tables, []))
    (table_file,) = tracking_dir(cfg).glob(
        "wandb/offline-run-*/files/media/table/table/summary_*.table.json"
    )
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["method", "n", "test_acc_%", "p"] and table["data"] == [
        ["lth", 3, 91.25, None]
    ]


def test_mirror_writes_each_record_version_once(make_cfg):
    cfg = make_cfg("tracking.mode=offline", "study.methods=[lth]", "pruning.levels=1")
    run_imp(cfg, "lth", 0)
    assert track_study({PAIR: cfg}, summary=None) == 2  # the workflow's `track --runs`: lth, dense
    assert track_study({PAIR: cfg}, summary=({}, [])) == 1  # then the summary run alone
    assert track_study({PAIR: cfg}, summary=({}, [])) == 1  # only the summary again
    longer = make_cfg("tracking.mode=offline", "study.methods=[lth]", "pruning.levels=2")
    rec = run_imp(
        longer, "lth", 0
    )  # extends the run: a new record, so a new W&B run replaces the old copy
    assert track_study({PAIR: longer}, summary=({}, [])) == 2
    runs = [read_run(p) for p in find_runs(tracking_dir(cfg))]
    lth = [r for r in runs if r["run"]["name"].startswith("lth-")]
    assert (
        len(lth) == 1
        and len([h for h in lth[0]["history"] if "level/level" in h]) == len(rec.levels) == 2
    )
    assert len([r for r in runs if r["run"]["name"] == "summary-t"]) == 1


def test_unwritable_tracking_dir_never_stops_the_study(make_cfg, tmp_path, caplog):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the W&B directory should be")
    cfg = make_cfg(
        "tracking.mode=offline", f"tracking.dir={blocker / 'wandb'}", "study.methods=[lth]"
    )
    assert run_imp(cfg, "lth", 0).complete and RunSpec.of(cfg, "lth", 0).dir.record.exists()
    track_study({PAIR: cfg}, summary=({}, []))
    assert [r for r in caplog.records if "W&B mirror stopped" in r.getMessage()]


def test_wandb_mode_environment_overrides_config(make_cfg, monkeypatch):
    cfg = make_cfg("tracking.mode=offline", "study.methods=[lth]")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert tracking_mode(cfg) == "disabled"
    run_imp(cfg, "lth", 0)
    assert track_study({PAIR: cfg}, summary=({}, [])) == 0 and not tracking_dir(cfg).exists()


def test_training_never_starts_wandb(make_cfg):
    cfg = make_cfg("tracking.mode=offline")
    run_imp(cfg, "lth", 0)
    assert not tracking_dir(cfg).exists()
    assert not study_dir(cfg.experiment.results_dir, "t").wandb_id.exists()
