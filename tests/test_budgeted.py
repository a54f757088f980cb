"""Budgeted retraining (k epochs per level, LR annealed to 0 within them) and the budget-matched
control of InfCoP. Expected LRs are written out from the formulas, never taken from the code."""

import math

import pytest

from infcop.core.resets import AnnealedWithin, RewindTo, Snapshots
from infcop.core.schedule import Annealed, LRSchedule
from infcop.foundations.config import Config, ConfigError, parse_config
from infcop.methods import BuildContext, get_method
from infcop.engine.spec import resolve_variant, run_hash

BASE_LR, T, SPE, REWIND = 0.05, 6, 17, 17  # cosine over 6 epochs of 17 steps, rewind to epoch 1


def _dense_lr(step: int) -> float:
    return 0.5 * BASE_LR * (1 + math.cos(math.pi * step / (T * SPE)))


@pytest.mark.parametrize("k", [1, 2, 5])
def test_linear_budget_starts_at_the_rewound_lr_and_ends_one_step_above_zero(k):
    lr = _level_lr(k, "linear")
    start = _dense_lr(REWIND)  # the LR the rewind would restart the dense schedule at
    last = k * SPE - 1  # the level's last optimizer step
    assert lr.start_step == 0
    assert lr.lr_at(0) == pytest.approx(start, rel=1e-12)
    assert lr.lr_at(last) == pytest.approx(start * (1 - last / (k * SPE)), rel=1e-12)
    assert lr.lr_at(last) == pytest.approx(start / (k * SPE), rel=1e-12)
    assert lr.lr_at(k * SPE) == 0.0


@pytest.mark.parametrize("k", [1, 3])
def test_cosine_budget_starts_at_the_rewound_lr_and_ends_near_zero(k):
    lr = _level_lr(k, "cosine")
    start, last = _dense_lr(REWIND), k * SPE - 1
    assert lr.lr_at(0) == pytest.approx(start, rel=1e-12)
    assert lr.lr_at(last) == pytest.approx(
        0.5 * start * (1 - math.cos(math.pi / (k * SPE))), rel=1e-9
    )
    assert lr.lr_at(k * SPE // 2) < lr.lr_at(0)


def test_unknown_annealing_form_is_an_error():
    with pytest.raises(ValueError, match="annealing form"):
        Annealed(0.1, 10, "step").lr_at(3)


def _level_lr(k: int, form: str):
    import torch

    from infcop.core.masks import full_mask
    from infcop.core.models import build_model

    model = build_model("lenet_300_100", (1, 8, 8), 10)
    state = model.state_dict()
    snapshots = Snapshots(init=state, rewind=state, rewind_step=REWIND)
    schedule = LRSchedule(base_lr=BASE_LR, total_steps=T * SPE, kind="cosine")
    reset = AnnealedWithin(RewindTo(), epochs=k, steps_per_epoch=SPE, form=form)
    with torch.no_grad():
        return reset.apply(model, full_mask(model), snapshots, schedule)


def test_budgeted_params_are_validated_and_set_the_budget():
    cfg = parse_config({"training": {"epochs": T, "rewind_point": "1ep"}})
    ctx = BuildContext(cfg, steps_per_epoch=SPE, rewind_step=REWIND, output_layer="fc3")
    method = get_method("budgeted")
    spec = method.build(ctx, method.params(epochs=3, form="cosine"))
    assert spec.stopper.cap == 3 and spec.reset.epochs == 3 and spec.reset.form == "cosine"
    assert (
        method.build(ctx, method.params()).stopper.cap == T - 1
    )  # unset: the schedule left, as wr
    assert method.build(ctx, method.params(epochs=8)).stopper.cap == 8  # annealed: no LR-0 epochs
    for params, key in (({"epochs": 0}, "epochs"), ({"form": "step"}, "form")):
        bad = parse_config(
            {"study": {"methods": [{"name": "b", "method": "budgeted", "params": params}]}}
        )
        with pytest.raises(ConfigError, match=key):
            resolve_variant(bad, "b")


def test_budgeted_does_not_change_existing_hashes():
    expected = {"fixed_same_reset": "16ac14def887", "infcop_if": "fc80bc641b4f"}
    assert {m: run_hash(Config(), m) for m in expected} == expected
    assert run_hash(Config(), "budgeted") not in expected.values()


# ---------------------------------------------------------------- the budget-matched control
def test_control_trains_exactly_the_mirrored_runs_epochs_per_level_with_an_annealed_lr(make_cfg):
    import csv

    from infcop.engine.imp import run_imp
    from infcop.engine.spec import RunSpec

    # 60% pruned per level, a cap of 4 epochs and a small ε: the mirrored run stops after 1, 3, 4
    # epochs
    cfg = make_cfg(
        "pruning.levels=3",
        "training.epochs=5",
        "pruning.fraction=0.6",
        "study.methods=[infcop_if,budget_matched_if]",
        "methods.infcop_if.epsilon=0.0005",
    )
    mirrored = run_imp(cfg, "infcop_if", 0)
    control = run_imp(cfg, "budget_matched_if", 0)
    want = [lv.costs.epochs for lv in mirrored.levels]
    assert [lv.costs.epochs for lv in control.levels] == want and len(want) == 3
    assert [lv.stopper["cap"] for lv in control.levels] == want
    # the LR of each epoch's first step, as the record keeps it: the rewound LR falling linearly
    # to 0
    spe = control.dense["steps_per_epoch"]
    start = (
        0.5 * cfg.training.lr * (1 + math.cos(math.pi * spe / (cfg.training.epochs * spe)))
    )  # at epoch 1
    assert control.dense["rewind_step"] == spe
    with open(RunSpec.of(cfg, "budget_matched_if", 0).dir.epochs) as f:
        rows = list(csv.DictReader(f))
    for lv, k in zip(control.levels, want):
        got = [float(r["lr_start"]) for r in rows if int(r["level"]) == lv.level]
        assert got == pytest.approx([start * (1 - e / k) for e in range(k)], rel=1e-9)
    assert want == [1, 3, 4]  # the setting above does make the budget vary


def test_control_without_its_mirrored_record_or_in_a_study_without_it_is_an_error(make_cfg):
    from infcop.engine.imp import run_imp

    cfg = make_cfg("study.methods=[infcop_if,budget_matched_if]")
    with pytest.raises(ConfigError, match="infcop_if.*does not exist; run it first"):
        run_imp(cfg, "budget_matched_if", 0)
    with pytest.raises(
        ConfigError, match="mirrors 'infcop_if', which must be a method of the study"
    ):
        make_cfg("study.methods=[lth,budget_matched_if]")


def test_control_identity_includes_the_mirrored_runs_and_it_runs_after_it():
    from infcop.engine.spec import in_run_order, mirrored_run

    def cfg(eps):
        return parse_config(
            {
                "study": {
                    "methods": [
                        "budget_matched_if",
                        {"name": "ctl", "method": "budget_matched_if", "params": {"mirror": "v"}},
                        "infcop_if",
                        {"name": "v", "method": "infcop_if", "params": {"epsilon": eps}},
                    ]
                }
            }
        )

    assert (
        mirrored_run(cfg(0.1), "budget_matched_if") == "infcop_if"
        and mirrored_run(cfg(0.1), "ctl") == "v"
    )
    assert mirrored_run(cfg(0.1), "infcop_if") is None
    assert run_hash(cfg(0.1), "ctl") != run_hash(cfg(0.2), "ctl")  # the mirrored run changed
    assert run_hash(cfg(0.1), "budget_matched_if") == run_hash(cfg(0.2), "budget_matched_if")
    assert in_run_order(cfg(0.1), ["budget_matched_if", "ctl", "infcop_if", "v"]) == [
        "infcop_if",
        "v",
        "budget_matched_if",
        "ctl",
    ]


def test_a_control_is_compared_with_the_run_it_mirrors_only():
    from infcop.study.analysis import plan_comparisons

    cfg = parse_config(
        {
            "study": {
                "methods": [
                    "infcop_if",
                    {"name": "v", "method": "infcop_if", "params": {"epsilon": 0.05}},
                    "budget_matched_if",
                    {"name": "ctl_v", "method": "budget_matched_if", "params": {"mirror": "v"}},
                    "budgeted",
                    "infcop_gf",
                ]
            }
        }
    )
    pairs, _ = plan_comparisons(cfg)
    controls = {(a, b) for a, b in pairs if b in ("budget_matched_if", "ctl_v")}
    assert controls == {("infcop_if", "budget_matched_if"), ("v", "ctl_v")}
    assert {("infcop_if", "budgeted"), ("v", "budgeted"), ("infcop_gf", "budgeted")} <= set(pairs)
