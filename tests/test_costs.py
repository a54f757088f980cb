"""Each method is charged exactly the work its stopping rule needs, the same work in
FLOPs and seconds."""

import pytest

from infcop.core.costs import COMPARED_COSTS, Costs, forward_flops, output_positions
from infcop.core.data import load_splits
from infcop.core.masks import full_mask, load_mask
from infcop.core.models import build_model
from infcop.engine.imp import IMPRun, run_imp
from infcop.engine.spec import RunSpec


@pytest.fixture
def sizes(make_cfg):
    cfg = make_cfg()
    splits = load_splits(cfg.data)
    model = build_model(cfg.model.name, splits.input_shape, splits.num_classes)
    positions = output_positions(model, splits.input_shape)
    return {
        "val": len(splits.y_val),
        "test": len(splits.y_test),
        "probe": cfg.stopping.probe_size,
        "dense_flops": forward_flops(positions, full_mask(model)),
        "positions": positions,
    }


def _level_flops(sizes, run, level):
    return forward_flops(sizes["positions"], load_mask(run.dir.mask(level)))


def test_fixed_epoch_rules_are_charged_no_validation(make_cfg, sizes):
    rec = run_imp(make_cfg(), "lth", 0)
    for lv in rec.levels:
        c = lv.costs
        assert c.monitor_forward_samples == c.monitor_backward_samples == 0
        assert c.monitor_flops == 0 and c.monitor_seconds == 0
        assert (
            c.eval_samples == c.epochs * sizes["val"] + sizes["test"]
        )  # bookkeeping, charged to nobody
        assert COMPARED_COSTS["wall"](c) == c.train_seconds
        assert COMPARED_COSTS["flops"](c) == c.train_flops


def test_an_accuracy_rule_pays_for_its_validation_passes(make_cfg, sizes):
    cfg = make_cfg()
    rec = run_imp(cfg, "acc_target", 0)
    run = IMPRun(RunSpec.of(cfg, "acc_target", 0))
    for lv in rec.levels:
        c, f = lv.costs, _level_flops(sizes, run, lv.level)
        assert c.monitor_forward_samples == c.epochs * sizes["val"]
        assert c.monitor_flops == pytest.approx(c.epochs * sizes["val"] * f)
        assert c.eval_samples == sizes["test"]
        assert c.monitor_seconds > 0
        assert COMPARED_COSTS["wall"](c) == c.train_seconds + c.monitor_seconds


@pytest.mark.parametrize("method, backward", [("infcop_if", False), ("infcop_gf", True)])
def test_a_flow_rule_pays_for_its_reference_once_and_for_each_measurement(
    make_cfg, sizes, method, backward
):
    cfg = make_cfg()
    rec = run_imp(cfg, method, 0)
    run = IMPRun(RunSpec.of(cfg, method, 0))
    probe, factor = sizes["probe"], 3 if backward else 1
    for lv in rec.levels:
        c, f = lv.costs, _level_flops(sizes, run, lv.level)
        reference = (
            2 * probe if lv.level == 1 else 0
        )  # Δ*/g* and its noise floor: two probe sets, dense network
        flow_samples = c.epochs * probe + reference
        assert c.monitor_backward_samples == (flow_samples if backward else 0)
        assert c.monitor_forward_samples == c.epochs * sizes["val"] + (
            0 if backward else flow_samples
        )
        expected = (
            c.epochs * sizes["val"] * f
            + factor * c.epochs * probe * f
            + factor * reference * sizes["dense_flops"]
        )
        assert c.monitor_flops == pytest.approx(expected)
    assert rec.flow_reference["samples"] == 2 * probe
    assert (
        rec.flow_reference["seconds"]["information"] > 0
        and rec.flow_reference["seconds"]["gradient"] > 0
    )


def test_compared_costs_leave_out_only_bookkeeping():
    c = Costs(
        epochs=2,
        train_flops=10.0,
        monitor_flops=3.0,
        eval_flops=100.0,
        train_seconds=1.0,
        monitor_seconds=0.5,
        eval_seconds=9.0,
    )
    assert COMPARED_COSTS["epochs"](c) == 2
    assert COMPARED_COSTS["flops"](c) == 13.0
    assert COMPARED_COSTS["wall"](c) == 1.5
