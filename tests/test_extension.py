"""Adding a method or a criterion is one definition: proven here with both defined inside the test,
run through the engine, the records, the statistics and the tables with no other edit."""

import csv
import dataclasses
from dataclasses import dataclass

import pytest

from infcop.core.resets import RewindTo
from infcop.criteria import (
    CRITERIA,
    Criterion,
    FixedEpochs,
    Stopper,
    register_criterion,
    stop_reasons,
)
from infcop.engine.imp import run_imp
from infcop.methods import (
    METHODS,
    MethodSpec,
    load_methods,
    Role,
    fraction_schedule,
    magnitude,
    pq_schedule,
    register_method,
)
from infcop.foundations.paths import study_dir
from infcop.engine.spec import RunSpec, check_names, run_hash
from infcop.study.analysis import load_records, plan_comparisons, study_stats
from infcop.study.tables import write_tables

SEEDS = (0, 1, 2)


@pytest.fixture
def registered():
    """Remove whatever a test registers, so other tests see the shipped registries only."""
    load_methods()  # the built-in methods are loaded lazily: they must not count as the test's
    methods, criteria = set(METHODS), set(CRITERIA)
    yield
    for name in set(METHODS) - methods:
        del METHODS[name]
    for name in set(CRITERIA) - criteria:
        del CRITERIA[name]


def _study(make_cfg, tmp_path, methods, *extra):
    cfg = make_cfg(
        "pruning.levels=1",
        "training.epochs=2",
        f"experiment.seeds={list(SEEDS)}",
        f"study.methods={methods}",
        *extra,
    )
    return check_names(cfg)


def _run_study(cfg):
    diagnosed = dataclasses.replace(cfg, stopping=dataclasses.replace(cfg.stopping, diagnose=True))
    for seed in SEEDS:
        for entry in cfg.study.methods:
            run_imp(cfg, entry.name, seed)
        for name in cfg.study.diagnose:  # the study's records include its diagnostic runs
            run_imp(diagnosed, name, seed)
    pair_cfgs = {"digits/lenet_300_100": cfg}
    stats = study_stats(pair_cfgs, load_records(pair_cfgs))
    study = study_dir(cfg.experiment.results_dir, cfg.experiment.name)
    write_tables(stats, study)
    return stats, study


def test_a_method_defined_here_is_compared_and_tabled(make_cfg, tmp_path, registered):
    @register_method("throwaway", role=Role.COMPETITOR, schedule=fraction_schedule)
    def throwaway(ctx, p):
        """Test-only: magnitude pruning, rewind, one epoch."""
        return MethodSpec(magnitude(ctx), RewindTo(), FixedEpochs(1))

    cfg = _study(make_cfg, tmp_path, "[infcop_if, throwaway]")
    stats, study = _run_study(cfg)
    rows = stats["pairs"]["digits/lenet_300_100"]["comparisons"]
    assert [(r["infcop"], r["competitor"], r["role"]) for r in rows] == [
        ("infcop_if", "throwaway", "competitor")
    ]
    assert rows[0]["accuracy"]["n"] == len(SEEDS)
    with open(study.comparisons) as f:
        assert [(r["infcop"], r["vs"]) for r in csv.DictReader(f)] == [("infcop_if", "throwaway")]
    assert "| throwaway" in study.summary("md").read_text()


def test_a_method_on_another_schedule_is_listed_not_dropped(make_cfg, tmp_path, registered):
    cfg = _study(make_cfg, tmp_path, "[infcop_if, lth, gradual_magnitude]")
    pairs, why = plan_comparisons(cfg)
    assert pairs == [("infcop_if", "lth")]
    assert set(why) == {"gradual_magnitude"} and "no InfCoP variant" in why["gradual_magnitude"]


class LossBelow(Criterion):
    """Test-only criterion: stop once the validation error is below a threshold."""

    name, key, reason, label, default_threshold = (
        "error_below",
        "val_error",
        "error",
        "val error",
        0.5,
    )

    def measure(self, ctx, val_acc):
        return 1.0 - val_acc

    def fires_at(self, value, threshold):
        return value is not None and value < threshold

    def sweep(self, cfg):
        return (0.5, 0.2)


def test_a_criterion_defined_here_reaches_epochs_csv_record_and_tables(
    make_cfg, tmp_path, registered
):
    register_criterion(LossBelow)

    @dataclass(frozen=True)
    class Params:
        threshold: float = 0.5

    @register_method("error_stop", params=Params, role=Role.INFCOP, schedule=fraction_schedule)
    def error_stop(ctx, p):
        """Test-only: stop when validation error < threshold."""
        return MethodSpec(
            magnitude(ctx), RewindTo(), Stopper([LossBelow(p.threshold)], ctx.cap(RewindTo()))
        )

    assert "error" in stop_reasons()
    cfg = _study(
        make_cfg,
        tmp_path,
        "[error_stop, fixed_same_reset]",
        "methods.error_stop.threshold=0.99",
        "study.diagnose=[error_stop]",
    )
    stats, study = _run_study(cfg)
    record = run_imp(cfg, "error_stop", 0)
    assert all(lv.stop_reason == "error" for lv in record.levels)  # error < 0.99 after epoch 1
    assert record.levels[0].measurements["val_error"] == [
        pytest.approx(1 - record.levels[0].val_acc)
    ]
    with open(RunSpec.of(cfg, "error_stop", 0).dir.epochs) as f:
        rows = list(csv.DictReader(f))
    assert "val_error" in rows[0] and float(rows[0]["val_error"]) == pytest.approx(
        1 - float(rows[0]["val_acc"])
    )
    summary = stats["pairs"]["digits/lenet_300_100"]["methods"]["error_stop"]
    assert summary["stop_share"]["error"] == 1.0
    assert "stop_error_%" in study.summary("csv").read_text()
    # a diagnostic run sweeps the new criterion's thresholds too, and the ablation table shows them
    diag_cfg = check_names(
        make_cfg("pruning.levels=1", "training.epochs=2", "stopping.diagnose=true")
    )
    diag = run_imp(diag_cfg, "lth", 0)
    assert set(diag.levels[0].diagnosis["criteria"]["error_below"]) == {"0.5", "0.2"}


def test_variants_run_side_by_side_with_their_own_hash_dir_and_schedule(make_cfg, tmp_path):
    variants = (
        "[infcop_if, {name: infcop_if_eps05, method: infcop_if, params: {epsilon: 0.05}}, "
        "lth, sap, {name: sap_p1q2, method: sap, params: {p: 1, q: 2}}, infcop_if_pq]"
    )
    cfg = _study(make_cfg, tmp_path, variants)
    assert run_hash(cfg, "infcop_if") != run_hash(cfg, "infcop_if_eps05")
    assert RunSpec.of(cfg, "infcop_if_eps05", 0).dir.root.name == "seed0"
    assert RunSpec.of(cfg, "infcop_if_eps05", 0).dir.root.parent.name == "infcop_if_eps05"
    assert run_hash(cfg, "sap") != run_hash(cfg, "sap_p1q2")
    pairs, why = plan_comparisons(cfg)
    # a variant inherits its method's role; another (p, q) is another schedule
    assert ("infcop_if_eps05", "lth") in pairs and ("infcop_if", "lth") in pairs
    assert ("infcop_if_pq", "sap") in pairs and ("infcop_if_pq", "sap_p1q2") not in pairs
    assert "sap_p1q2" in why
    assert pq_schedule(cfg, RunSpec.of(cfg, "sap_p1q2", 0).variant.params).startswith(
        "PQ index p=1 q=2"
    )
    record = run_imp(cfg, "sap_p1q2", 0)
    assert (
        record.method == "sap_p1q2"
        and record.base_method == "sap"
        and record.method_params["p"] == 1.0
    )


def test_a_variant_with_default_params_is_the_same_computation(make_cfg):
    cfg = check_names(
        make_cfg(
            "study.methods=[lth, {name: lth_again, method: lth}, "
            "{name: eps_default, method: infcop_if, params: {epsilon: 0.11}}, infcop_if]"
        )
    )
    assert run_hash(cfg, "lth_again") == run_hash(cfg, "lth")
    assert run_hash(cfg, "eps_default") == run_hash(cfg, "infcop_if")
