"""The Snakemake DAG, run by real Snakemake on the smoke config in a temporary directory."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers.kill_resume import interruptible, without_wall_clock
from helpers.wandb_reader import find_runs, read_run

REPO = Path(__file__).resolve().parents[1]
PAIR = "digits/lenet_300_100"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]


def snakemake(workdir: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "-d", str(workdir), *args], capture_output=True, text=True, **kw
    )


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    work = tmp_path_factory.mktemp("smoke")
    out = snakemake(work, "--cores", "2", "--config", "experiment=smoke")
    assert out.returncode == 0, out.stderr[-3000:]
    return work


def test_smoke_study_outputs(smoke):
    exp = smoke / "results" / "smoke"
    for name in (
        "runs.csv",
        "stats.json",
        "summary.md",
        "summary.csv",
        "summary.tex",
        "comparisons.csv",
        "ablation.md",
        "config.yaml",
        "figures/digits__lenet_300_100.png",
        "figures/digits__lenet_300_100.pdf",
    ):
        assert (exp / name).stat().st_size > 0, name
    with open(exp / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == (9 + 1) * 3 * 2  # (methods + diagnostic) x seeds x levels
    stats = json.loads((exp / "stats.json").read_text())
    pair = stats["pairs"]["digits/lenet_300_100"]
    assert set(pair["methods"]) == {
        "infcop_if",
        "infcop_gf",
        "lth",
        "acc_target",
        "infcop_if_pq",
        "sap",
        "infcop_if_eps05",
        "budget_matched_if",
        "budgeted",
    }
    pairs = {(c["infcop"], c["competitor"]) for c in pair["comparisons"]}
    assert (
        ("infcop_if", "lth") in pairs
        and ("infcop_if_pq", "sap") in pairs
        and ("infcop_if", "sap") not in pairs
    )
    assert ("infcop_if_eps05", "lth") in pairs  # the variant takes its method's role
    # budgeted retraining is a competitor of every InfCoP variant on its schedule; the
    # budget-matched control an ablation of the method it mirrors only
    assert {
        ("infcop_if", "budgeted"),
        ("infcop_gf", "budgeted"),
        ("infcop_if", "budget_matched_if"),
    } <= pairs
    assert ("infcop_gf", "budget_matched_if") not in pairs and (
        "infcop_if_pq",
        "budgeted",
    ) not in pairs
    assert (
        "infcop_if_eps05",
        "budget_matched_if",
    ) not in pairs  # it mirrors infcop_if, not the variant
    for seed in range(
        3
    ):  # the control retrained exactly the epochs its mirrored run used, level by level
        mirrored, control = (
            json.loads((exp / f"runs/digits/lenet_300_100/{m}/seed{seed}/record.json").read_text())
            for m in ("infcop_if", "budget_matched_if")
        )
        assert [lv["epochs"] for lv in control["levels"]] == [
            lv["epochs"] for lv in mirrored["levels"]
        ]
    assert "budget_matched_if" in (exp / "ablation.md").read_text()
    claims = (exp / "claims.md").read_text()
    assert (
        "`criterion_timing_beats_its_budget`" in claims
        and "`flow_rule_beats_budgeted_retraining`" in claims
    )
    assert "seeds to decide" in claims or "inconclusive" not in claims.split("## Measurements")[1]
    variant = json.loads(
        (exp / "runs/digits/lenet_300_100/infcop_if_eps05/seed0/record.json").read_text()
    )
    # every parameter is recorded; unset stopping overrides (None) follow the
    # config's stopping section
    assert variant["base_method"] == "infcop_if"
    assert variant["method_params"] == {"epsilon": 0.05, "epsilon_mode": None, "aggregation": None}
    assert all(c["accuracy"]["n"] == 3 for c in pair["comparisons"])
    assert pair["diagnostics"]["infcop_if"]["levels"] == 6
    md = (exp / "summary.md").read_text()
    assert "| digits/lenet_300_100 | infcop_if" in md and "speedup_epochs" in md
    assert "\\toprule" in (exp / "summary.tex").read_text()
    # one benchmark file and one log per training job, as an independent wall-clock source
    assert len(list((exp / "benchmarks" / "imp").glob("*.tsv"))) == 27
    assert len(list((exp / "logs" / "dense").glob("*.log"))) == 3
    # stats.json holds every number the summary table shows: spot-check one against the records
    rec = json.loads((exp / "runs/digits/lenet_300_100/lth/seed0/record.json").read_text())
    assert (
        rec["dense"]["weights_sha256"]
        == json.loads((exp / "runs/digits/lenet_300_100/infcop_if/seed0/record.json").read_text())[
            "dense"
        ]["weights_sha256"]
    )


def test_smoke_study_leaves_one_offline_wandb_run_per_record(smoke):
    """The track job mirrors every record as a W&B run grouped per method on the pair,
    with its files as an artifact, and a summary run with numeric tables naming those
    artifacts as its inputs."""
    exp = smoke / "results" / "smoke"
    runs = [read_run(p) for p in find_runs(exp / "wandb")]
    kinds = sorted(r["run"]["job_type"] for r in runs)
    methods = [
        "acc_target",
        "budget_matched_if",
        "budgeted",
        "infcop_gf",
        "infcop_if",
        "infcop_if_eps05",
        "infcop_if_pq",
        "lth",
        "sap",
    ]
    assert kinds == sorted(["dense"] * 3 + ["diagnostic"] * 3 + ["imp"] * 27 + ["summary"])
    artifacts = []
    for r in runs:
        if r["run"]["job_type"] == "imp":
            seed, method = r["config"]["seed"], r["config"]["method"]
            rec = json.loads(
                (exp / f"runs/digits/lenet_300_100/{method}/seed{seed}/record.json").read_text()
            )
            assert r["run"]["group"] == f"smoke/digits/lenet_300_100/{method}"
            assert r["run"]["name"] == f"{rec['method']}-digits-lenet_300_100-{seed}"
            assert (r["config"]["config_hash"], r["config"]["family"], r["config"]["role"]) == (
                rec["config_hash"],
                rec["base_method"],
                rec["role"],
            )
            assert {"smoke", "digits/lenet_300_100", rec["role"], rec["base_method"]} <= set(
                r["tags"]
            )
            assert [h["level/test_acc"] for h in r["history"] if "level/test_acc" in h] == [
                lv["test_acc"] for lv in rec["levels"]
            ]
        if r["run"]["job_type"] != "summary":
            (art,) = r["artifacts"]
            artifacts.append(f"{art['name']}:latest")
    assert sorted({r["config"]["method"] for r in runs if r["run"]["job_type"] == "imp"}) == methods
    summary = next(r for r in runs if r["run"]["job_type"] == "summary")
    assert sorted(summary["config"]["inputs"]) == sorted(artifacts)
    assert (
        summary["summary"]["table/summary.nrows"] == 1 + 9
    )  # the dense row and one row per method
    assert summary["summary"]["table/comparisons.nrows"] == len(
        json.loads((exp / "stats.json").read_text())["pairs"]["digits/lenet_300_100"]["comparisons"]
    )
    (table,) = exp.glob("wandb/wandb/offline-run-*/files/media/table/table/summary_*.table.json")
    cells = json.loads(table.read_text())
    n = cells["columns"].index("n")
    assert all(isinstance(row[n], int) for row in cells["data"])  # numbers, not strings
    assert any(
        h.get("figure/digits__lenet_300_100._type") == "image-file" for h in summary["history"]
    )


def test_dashboard_panels_plot_keys_the_smoke_runs_log(smoke):
    pytest.importorskip("wandb_workspaces")
    from infcop.engine.dashboard import build_report
    from infcop.engine.spec import study_configs

    exp = smoke / "results" / "smoke"
    cfg = next(iter(study_configs(yaml.safe_load((exp / "config.yaml").read_text())).values()))
    report = build_report(cfg, entity="someone", project="infcop")
    grids = [b for b in report.blocks if hasattr(b, "panels")]
    assert [g.runsets[0].name for g in grids] == list(cfg.study.pairs)
    runs = [read_run(p) for p in find_runs(exp / "wandb")]
    for grid in grids:
        logged = {
            k
            for r in runs
            if r["config"].get("pair") == grid.runsets[0].name and not r["config"]["diagnostic"]
            for h in r["history"]
            for k in h
        }
        for panel in grid.panels:
            assert {panel.x, *panel.y} <= logged, panel.title
    # the run set keeps to the pair's runs (the dense and IMP runs of the study) and
    # draws one line per method
    runset = grids[0].runsets[0]
    assert runset.groupby == ["config.method"]
    assert str(runset.filters) == (
        "Config(\"study\") == 'smoke' and Config(\"pair\") == 'digits/lenet_300_100' "
        'and Config("diagnostic") == False'
    )
    shown = [
        r["run"]["job_type"]
        for r in runs
        if (r["config"].get("study"), r["config"].get("pair"), r["config"].get("diagnostic"))
        == ("smoke", PAIR, False)
    ]
    assert sorted(shown) == sorted(["dense"] * 3 + ["imp"] * 27)  # 9 methods x 3 seeds


def test_seed_grouping_runs_the_same_study_in_one_job_per_seed(smoke, tmp_path):
    """`study.grouping: seed` (what the CPU-sized shipped studies use): one job per pair x seed, and
    every record equal to the one-job-per-run study's except wall-clock times and that key."""
    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg["study"]["grouping"] = "seed"
    (tmp_path / "seed.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake(tmp_path, "--cores", "2", "--configfile", str(tmp_path / "seed.yaml"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "results/smoke/benchmarks/imp").glob("*.tsv")) == [
        f"digits__lenet_300_100__seed{s}.tsv" for s in range(3)
    ]

    ours = sorted((tmp_path / "results/smoke/runs").glob("*/*/*/seed*/record.json"))
    assert len(ours) == 30
    for record in ours:
        theirs = smoke / record.relative_to(tmp_path)
        assert without_wall_clock(
            json.loads(record.read_text()), ["grouping"]
        ) == without_wall_clock(json.loads(theirs.read_text()), ["grouping"]), record
    kinds = sorted(
        read_run(p)["run"]["job_type"] for p in find_runs(tmp_path / "results/smoke/wandb")
    )
    assert kinds == sorted(["dense"] * 3 + ["imp"] * 27 + ["diagnostic"] * 3 + ["summary"])
    assert (tmp_path / "results/smoke/summary.md").stat().st_size > 0


def test_shipped_frontier_study_runs_end_to_end(tmp_path):
    """configs/frontier.yaml as shipped (all 33 points, grouping: seed), cut in size only: one pair,
    two seeds, one level. The frontier rule writes its table, its CSV and the pair's figure."""
    cfg = yaml.safe_load((REPO / "configs" / "frontier.yaml").read_text())
    cfg["experiment"]["seeds"] = [0, 1]
    cfg["pruning"]["levels"] = 1
    cfg["study"]["pairs"] = ["digits/lenet_300_100"]
    (tmp_path / "frontier.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake(tmp_path, "--cores", "2", "--configfile", str(tmp_path / "frontier.yaml"))
    assert out.returncode == 0, out.stderr[-3000:]
    exp = tmp_path / "results" / "frontier"
    with open(exp / "frontier.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["point"] for r in rows) == sorted(
        m if isinstance(m, str) else m["name"] for m in cfg["study"]["methods"]
    )
    assert all(r["n"] == "2" for r in rows) and any(r["front_flops"] == "yes" for r in rows)
    # two seeds of one level often tie exactly, leaving no spread to test: "n/a" is
    # then the honest verdict
    assert {r["dominated"] for r in rows if r["rule"] == "flow"} <= {"yes", "no", "n/a"}
    assert "## digits/lenet_300_100" in (exp / "frontier.md").read_text()
    assert (exp / "figures" / "frontier" / "digits__lenet_300_100.png").stat().st_size > 0


def test_rerun_after_completion_does_nothing(smoke):
    out = snakemake(smoke, "--cores", "2", "--config", "experiment=smoke")
    assert out.returncode == 0 and "Nothing to be done" in out.stdout + out.stderr


@pytest.mark.slow  # three real snakemake studies in a row
def test_changed_study_config_reaches_the_tables_in_one_run(tmp_path):
    """A finished study, then its config edited: one `snakemake` brings the aggregates up to date.
    A margin change reruns only collect -> stats -> tables (the training jobs are keyed on their own
    run identity); a new method gets its run and its rows, in the same invocation."""
    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg["experiment"].update(name="edit", seeds=[0], results_dir=str(tmp_path / "results"))
    cfg["training"]["epochs"] = 1
    cfg["pruning"]["levels"] = 1
    cfg["study"].update(methods=["lth", "infcop_if"], diagnose=[], bootstrap=100)
    cfg["tracking"]["mode"] = "disabled"
    cfg_file = tmp_path / "study.yaml"

    def run(*args: str) -> subprocess.CompletedProcess:
        cfg_file.write_text(yaml.safe_dump(cfg))
        out = snakemake(tmp_path, "--configfile", str(cfg_file), *args)
        assert out.returncode == 0, out.stderr[-3000:]
        return out

    exp = tmp_path / "results" / "edit"
    records = lambda: {p: p.stat().st_mtime_ns for p in exp.glob("**/record.json")}  # noqa: E731
    run("--cores", "2")
    trained = records()
    assert len(trained) == 3  # dense + 2 methods
    assert json.loads((exp / "stats.json").read_text())["margin"] == 0.01

    cfg["study"]["margin"] = 0.05
    run("--cores", "2")
    assert json.loads((exp / "stats.json").read_text())["margin"] == 0.05
    assert "non-inferiority margin 5.0 pp" in (exp / "summary.md").read_text()
    assert records() == trained  # no training job reran
    assert "Nothing to be done" in run("-n").stdout

    cfg["study"]["methods"].append("infcop_gf")
    run("--cores", "2")
    with open(exp / "runs.csv") as f:
        assert {r["method"] for r in csv.DictReader(f)} == {"lth", "infcop_if", "infcop_gf"}
    assert "| digits/lenet_300_100 | infcop_gf" in (exp / "summary.md").read_text()
    assert {p: t for p, t in records().items() if p in trained} == trained
    assert "Nothing to be done" in run("-n").stdout


@pytest.mark.slow  # a real (one-seed, one-level) snakemake study, then one edit of its claim file
def test_edited_claim_rerenders_only_the_claims_table_in_one_run(tmp_path):
    claim = {
        "id": "faster",
        "where": "Sec. 1",
        "words": "InfCoP trains less",
        "setting": "big nets",
        "tested_in": {
            "claimed": {"pairs": ["digits/lenet_300_100"], "differs": "one seed, one level"}
        },
        "checks": [
            {
                "quantity": "speedup_epochs",
                "methods": ["infcop_if", "lth"],
                "rule": "greater_than",
                "value": 1.0,
            }
        ],
    }
    claims = tmp_path / "mine.yaml"
    claims.write_text(yaml.safe_dump({"source": "A & B 2020", "claims": [claim]}))
    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg["experiment"].update(name="claimed", seeds=[0], results_dir=str(tmp_path / "results"))
    cfg["training"]["epochs"] = 1
    cfg["pruning"]["levels"] = 1
    cfg["study"].update(
        methods=["lth", "infcop_if"], diagnose=[], bootstrap=100, claims=[str(claims)]
    )
    cfg["tracking"]["mode"] = "disabled"
    cfg_file = tmp_path / "study.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    exp = tmp_path / "results" / "claimed"

    def run(*args: str) -> str:
        out = snakemake(tmp_path, "--configfile", str(cfg_file), *args)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout + out.stderr

    run("--cores", "2")
    assert "InfCoP trains less" in (exp / "claims.md").read_text()
    assert "inconclusive**: n = 1 < 3 seeds" in (exp / "claims.md").read_text()
    before = {p: p.stat().st_mtime_ns for p in [exp / "stats.json", *exp.glob("**/record.json")]}
    claim["words"] = "InfCoP trains much less"
    claims.write_text(yaml.safe_dump({"source": "A & B 2020", "claims": [claim]}))
    run("--cores", "2")
    assert "InfCoP trains much less" in (exp / "claims.md").read_text()
    assert {
        p: p.stat().st_mtime_ns for p in before
    } == before  # neither training nor statistics reran
    assert "Nothing to be done" in run("-n")


@pytest.mark.parametrize(
    "config",
    [
        "default",
        "smoke",
        "paper",
        "lottery",
        "mnist",
        "frontier",
        "frontier_mnist",
        "frontier_calibration",
        "paper+paper_cpu",
    ],
)
def test_dry_run_every_shipped_config(tmp_path, config):
    files = [
        str(REPO / "configs" / f"{name}.yaml") for name in config.split("+")
    ]  # an overlay after its base
    out = snakemake(tmp_path, "-n", "--configfile", *files)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "dense" in out.stdout and "imp" in out.stdout


def test_paper_cpu_overlay_keeps_the_protocol_and_cuts_only_sizes(tmp_path):
    """Snakemake merges configs/paper_cpu.yaml over configs/paper.yaml; the resolved config
    every job reads keeps the authors' optimizer, warm-up, check period and reference, with
    the overlay's sizes."""
    out = snakemake(
        tmp_path,
        "results/paper_cpu/config.yaml",
        "--cores",
        "1",
        "--configfile",
        str(REPO / "configs" / "paper.yaml"),
        str(REPO / "configs" / "paper_cpu.yaml"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    cfg = yaml.safe_load((tmp_path / "results/paper_cpu/config.yaml").read_text())
    assert (
        cfg["training"] == yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())["training"]
    )
    assert cfg["stopping"]["check_every"] == 2 and cfg["stopping"]["reference"] == "rewind"
    assert (
        cfg["data"]["train_subset"] == 1100
        and cfg["data"]["resize"] == 32
        and cfg["model"]["pretrained"] is False
    )
    assert (
        cfg["per_dataset"]["mnist"]["data"]["channels"] == 3 and cfg["pruning"]["scope"] == "layer"
    )


def test_dry_run_lists_jobs_of_default(tmp_path):
    out = snakemake(tmp_path, "-n")
    assert out.returncode == 0, out.stderr[-2000:]
    # (study.grouping: seed) one job per pair x seed running level 0, its 17 methods and 1
    # diagnostic in one process; each record is owned by a job of its own, which finds it written
    # (so one run's failure deletes no other record); one verdict table for its claims
    assert "imp_seed              20" in out.stdout and "seed_dense            20" in out.stdout
    assert "seed_record          340" in out.stdout and "seed_diagnosis        20" in out.stdout
    assert "imp                  " not in out.stdout and "diagnose  " not in out.stdout
    assert "\ndense  " not in out.stdout
    assert "claims                 1" in out.stdout
    listed = re.split(r"\n(?=\[)", out.stdout)  # one block per job, each from its time stamp
    # W&B mirrors the records beside the tables, not after them; only the summary run waits
    (track_runs,) = [job for job in listed if "rule track_runs:" in job]
    assert "record.json" in track_runs and "summary.md" not in track_runs
    # the seed jobs start longest first: the conv nets' (dense epoch FLOPs) before the MLPs'
    jobs = [job for job in listed if "rule imp_seed:" in job]
    priority = {  # (a job of priority 0 shows none)
        re.search(r"dataset=(\w+), model=(\w+)", job).groups(): re.findall(r"priority: (\d+)", job)
        for job in jobs
    }
    assert len(jobs) == 20 and priority == {
        ("digits", "conv_small"): ["3"],
        ("mnist1d", "cnn1d"): ["2"],
        ("mnist1d", "lenet_300_100"): ["1"],  # 40 inputs and 2,400 samples against 64 and 1,294
        ("digits", "lenet_300_100"): [],
    }


def test_bad_config_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "configs" / "smoke.yaml").read_text().replace("epochs: 3", "epochs: -3"))
    out = snakemake(tmp_path, "-n", "--configfile", str(bad))
    assert out.returncode != 0 and "training.epochs: -3 is out of range" in out.stdout + out.stderr
    bad.write_text(
        (REPO / "configs" / "smoke.yaml")
        .read_text()
        .replace("experiment:", "experimentt:\n  x: 1\nexperiment:")
    )
    out = snakemake(tmp_path, "-n", "--configfile", str(bad))
    assert out.returncode != 0 and "experimentt" in out.stdout + out.stderr


def levels_of(record: Path) -> list[dict]:
    """A record's levels without wall-clock fields."""
    return without_wall_clock(json.loads(record.read_text())["levels"])


@pytest.mark.slow
@pytest.mark.parametrize("grouping", ["run", "seed"])
def test_interrupted_study_finishes_only_what_is_missing(tmp_path, grouping):
    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg["study"]["grouping"] = grouping
    study = cfg["study"]
    records = len(cfg["experiment"]["seeds"]) * (len(study["methods"]) + len(study["diagnose"]))
    config = tmp_path / "smoke.yaml"
    config.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(
        [*SNAKEMAKE, "-d", str(tmp_path), "--cores", "2", "--configfile", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=interruptible,
    )
    runs = tmp_path / "results" / "smoke" / "runs"
    deadline = time.time() + 300
    while len(list(runs.glob("*/*/*/seed*/record.json"))) < 4:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.2)
    # the records written so far (atomically, so complete), read before the kill: Snakemake may
    # delete the outputs of the jobs it interrupts
    done = {p: (p.stat().st_mtime_ns, levels_of(p)) for p in runs.glob("*/*/*/seed*/record.json")}
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: snakemake and its running jobs
    proc.wait(timeout=120)
    assert 4 <= len(done) < records
    out = snakemake(tmp_path, "--cores", "2", "--configfile", str(config))
    assert out.returncode == 0, out.stderr[-3000:]
    # at most the 2 jobs running at Ctrl-C are rerun (they resume from their last checkpoint, so
    # their numbers do not change); every other finished run is left alone. A `seed` job rewrites
    # the records of its finished runs from their checkpoints: other files, the same numbers.
    redone = [p for p, (mtime, _) in done.items() if p.stat().st_mtime_ns != mtime]
    if grouping == "run":
        assert len(redone) <= 2
    assert all(levels_of(p) == levels for p, (_, levels) in done.items())
    assert len(list(runs.glob("*/*/*/seed*/record.json"))) == records
    assert (tmp_path / "results" / "smoke" / "summary.md").exists()


@pytest.mark.slow
def test_html_report_embeds_tables_and_figures(smoke, tmp_path):
    report = tmp_path / "report.html"
    out = snakemake(smoke, "--config", "experiment=smoke", "--report", str(report))
    assert out.returncode == 0, out.stderr[-2000:]
    html = report.read_text(errors="replace")
    assert "digits__lenet_300_100.png" in html and "summary.csv" in html
