"""Every registered method: invariants, and faithfulness to the method's paper."""

import csv
import math

import pytest
import torch

from infcop.foundations.config import ConfigError
from infcop.engine.dense import ensure_dense
from infcop.engine.imp import IMPRun as _IMPRun
from infcop.engine.imp import run_imp as _run_imp
from infcop.engine.spec import RunSpec, mirrored_run
from infcop.core.masks import density, load_mask
from infcop.methods import (
    METHODS,
    Role,
    fraction_schedule,
    get_method,
    load_methods,
    register_method,
)
from infcop.core.pruners import pq_index, sap_prune_fraction
from infcop.foundations.storage import load_checkpoint
from infcop.core.schedule import LRSchedule


def run_imp(cfg, method, seed):
    """The run's record as written to record.json."""
    return _run_imp(cfg, method, seed).to_json()


def IMPRun(cfg, method, seed):  # noqa: N802 - the engine's run, built as the CLI builds it
    return _IMPRun(RunSpec.of(cfg, method, seed))


ALL = sorted(load_methods())
EXPECTED = {
    "lth",
    "wr",
    "lrr",
    "finetune",
    "early_bird",
    "sap",
    "random",
    "infcop_if",
    "infcop_gf",
    "infcop_if_pq",
    "infcop_gf_pq",
    "acc_target",
    "fixed_same_reset",
    "infcop_if_init",
    "infcop_gf_init",
    "lth_reinit",
}


def test_registry_holds_every_method():
    assert EXPECTED <= set(ALL)


def test_registry_guards():
    with pytest.raises(ValueError, match="already registered"):
        register_method("lth", role=Role.COMPETITOR, schedule=fraction_schedule)(
            lambda ctx, p: None
        )
    with pytest.raises(ConfigError, match="unknown method 'lotery'; known methods: .*lth"):
        get_method("lotery")


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("dataset, model", [("digits", "lenet_300_100")])
def test_method_invariants(make_cfg, method, dataset, model):
    cfg = make_cfg(f"data.dataset={dataset}", f"model.name={model}")
    mirror = mirrored_run(cfg, method)
    if mirror is not None:  # a budget-matched control reads its mirrored run's record
        run_imp(cfg, mirror, 0)
    rec = run_imp(cfg, method, 0)
    run = IMPRun(cfg, method, 0)
    assert rec["status"] == "complete" and [lv["level"] for lv in rec["levels"]] == [1, 2]
    spe = rec["dense"]["steps_per_epoch"]
    state = load_checkpoint(run.dir.root / "checkpoints" / "level2.pt")["model"]
    prev = 1.0
    for lv in rec["levels"]:
        mask = load_mask(run.dir.root / "masks" / f"level{lv['level']}.pt")
        assert lv["density"] == density(mask) and 0 < lv["density"] < prev
        prev = lv["density"]
        assert lv["stop_reason"] in ("flow", "accuracy", "mask", "cap")
        assert lv["epochs"] >= 1 and lv["optimizer_steps"] == lv["epochs"] * spe
        assert lv["train_samples"] > 0 and lv["train_flops"] > 0 and lv["train_seconds"] > 0
        assert 0 <= lv["val_acc"] <= 1 and 0 <= lv["test_acc"] <= 1
    for name, m in mask.items():  # pruned weights of the final model are exactly zero
        assert torch.all(state[f"{name}.weight"][~m] == 0)
    assert rec["totals"]["optimizer_steps"] == sum(lv["optimizer_steps"] for lv in rec["levels"])


def test_all_methods_share_the_dense_run(make_cfg):
    cfg = make_cfg("pruning.levels=1")
    hashes = {
        run_imp(cfg, m, 0)["dense"]["weights_sha256"] for m in ("lth", "infcop_if", "lrr", "sap")
    }
    assert len(hashes) == 1


def _epoch_rows(run):
    with open(run.dir.root / "epochs.csv") as f:
        return list(csv.DictReader(f))


def test_wr_rewinds_weights_and_lr(make_cfg):
    cfg = make_cfg("training.rewind_point=5it", "training.schedule=cosine", "pruning.levels=1")
    rec = run_imp(cfg, "wr", 0)
    spe = rec["dense"]["steps_per_epoch"]
    schedule = LRSchedule.from_config(cfg.training, spe)
    assert rec["levels"][0]["lr_start"] == schedule.lr_at(5) < cfg.training.lr
    # T − t: 3 epochs minus 5 of `spe` steps rounds up to the remaining whole epochs
    assert rec["levels"][0]["epochs"] == math.ceil((3 * spe - 5) / spe)
    assert float(_epoch_rows(IMPRun(cfg, "wr", 0))[0]["lr_start"]) == pytest.approx(
        schedule.lr_at(5)
    )


def test_lth_reinit_prunes_as_lth_then_trains_a_fresh_draw_the_seed_repeats(make_cfg):
    cfg = make_cfg("pruning.levels=1")
    lth, reinit = IMPRun(cfg, "lth", 0), IMPRun(cfg, "lth_reinit", 0)
    a, b = lth.run().to_json(), reinit.run().to_json()
    masks = [load_mask(r.dir.mask(1)) for r in (lth, reinit)]
    assert all(
        torch.equal(masks[0][n], masks[1][n]) for n in masks[0]
    )  # both prune the shared dense network
    assert a["levels"][0]["epochs"] == b["levels"][0]["epochs"] == cfg.training.epochs
    assert b["levels"][0]["lr_start"] == cfg.training.lr
    trained = [load_checkpoint(r.dir.checkpoint(1))["model"] for r in (lth, reinit)]
    assert not torch.equal(trained[0]["1.weight"], trained[1]["1.weight"])
    again = run_imp(make_cfg("pruning.levels=1", "experiment.name=again"), "lth_reinit", 0)
    assert [(lv["val_acc"], lv["test_acc"]) for lv in again["levels"]] == [
        (lv["val_acc"], lv["test_acc"]) for lv in b["levels"]
    ]


def test_lrr_and_finetune_lr(make_cfg):
    cfg = make_cfg("pruning.levels=1", "methods.finetune.lr=0.002")
    assert run_imp(cfg, "lrr", 0)["levels"][0]["lr_start"] == cfg.training.lr
    run_imp(cfg, "finetune", 0)
    rows = _epoch_rows(IMPRun(cfg, "finetune", 0))
    assert all(float(r["lr_start"]) == 0.002 for r in rows)


def test_sap_prune_fractions_follow_pq_rule(make_cfg):
    one = IMPRun(make_cfg("pruning.levels=1"), "sap", 0)
    one.run()
    trained = [
        ensure_dense(make_cfg(), 0, torch.device("cpu")).state("final"),
        load_checkpoint(one.dir.root / "checkpoints" / "level1.pt")["model"],
    ]
    run_imp(make_cfg("pruning.levels=2"), "sap", 0)  # extends the same run by one level
    masks = [None] + [load_mask(one.dir.root / "masks" / f"level{k}.pt") for k in (1, 2)]
    for level in (1, 2):
        after = masks[level]
        alive = {
            n: torch.ones_like(m) if masks[level - 1] is None else masks[level - 1][n]
            for n, m in after.items()
        }
        w = torch.cat([trained[level - 1][f"{n}.weight"][alive[n]] for n in after])
        fraction = sap_prune_fraction(pq_index(w, 0.5, 1.0), 0.5, 1.0, 0.0, 1.0, 0.9)
        pruned = w.numel() - sum(int(m.sum()) for m in after.values())
        assert pruned == math.floor(w.numel() * fraction) > 0


def test_early_bird_stops_on_mask_or_cap(make_cfg):
    rec = run_imp(
        make_cfg(
            "training.epochs=8", "methods.early_bird.window=3", "methods.early_bird.epsilon=0.5"
        ),
        "early_bird",
        0,
    )
    assert {lv["stop_reason"] for lv in rec["levels"]} <= {"mask", "cap"}
    assert any(lv["stop_reason"] == "mask" and lv["epochs"] >= 3 for lv in rec["levels"])


def test_method_hyperparameters_enter_the_hash(make_cfg):
    a = IMPRun(make_cfg(), "early_bird", 0).config_hash
    b = IMPRun(make_cfg("methods.early_bird.window=4"), "early_bird", 0).config_hash
    assert a != b


def test_example_baseline_from_the_docs(make_cfg):
    """docs/extending.md's 'Adding a baseline' example, followed literally, registers
    a working method."""
    import importlib
    import re
    import sys
    from pathlib import Path

    page = Path("docs/extending.md").read_text()
    section = page.split("# Adding a baseline", 1)[1]
    code = re.search(r"```python\n# baselines/(\w+)\.py\n(.*?)```", section, re.S)
    name, source = code.group(1), code.group(2)
    path = Path("baselines") / f"{name}.py"
    assert path.read_text().strip() == source.strip(), (
        "docs/extending.md's example and the shipped method file differ"
    )
    importlib.import_module(f"infcop.baselines.{name}")
    assert name in METHODS and name in ALL and f"infcop.baselines.{name}" in sys.modules
    rec = run_imp(make_cfg(), name, 0)
    assert rec["status"] == "complete" and len(rec["levels"]) == 2


def test_fixed_same_reset_trains_what_wr_trains(make_cfg):
    """After a rewind to t the schedule has T − t epochs left: fixed_same_reset's
    default budget is wr's."""
    cfg = make_cfg("training.epochs=4", "training.rewind_point=1ep")
    wr, same = run_imp(cfg, "wr", 0), run_imp(cfg, "fixed_same_reset", 0)
    assert (
        [lv["epochs"] for lv in same["levels"]] == [lv["epochs"] for lv in wr["levels"]] == [3, 3]
    )
    assert [lv["test_acc"] for lv in same["levels"]] == [lv["test_acc"] for lv in wr["levels"]]


@pytest.mark.parametrize("method", ["infcop_if", "acc_target", "sap", "fixed_same_reset"])
def test_rewinding_methods_never_train_past_the_schedule(make_cfg, method):
    cfg = make_cfg(
        "training.epochs=4",
        "training.rewind_point=1ep",
        "methods.infcop_if.epsilon=0.0001",
        "pruning.levels=1",
    )
    rec = run_imp(cfg, method, 0)
    rows = _epoch_rows(IMPRun(cfg, method, 0))
    assert rec["levels"][0]["epochs"] <= 3
    assert all(float(r["lr_start"]) > 0 for r in rows)
    if (
        method != "acc_target"
    ):  # acc_target may stop early; the others run to the end of the schedule here
        assert rec["levels"][0]["epochs"] == 3


def test_a_cap_past_the_end_of_a_cosine_schedule_is_rejected(make_cfg):
    cfg = make_cfg("training.epochs=4", "training.rewind_point=1ep", "stopping.cap=4")
    with pytest.raises(
        ConfigError, match=r"stopping\.cap: 4 epochs run past the end of the cosine LR schedule"
    ):
        run_imp(cfg, "infcop_if", 0)
    run_imp(cfg, "infcop_if_init", 0)  # a θ₀ reset has the whole schedule ahead: 4 epochs fit
    run_imp(
        make_cfg(
            "training.epochs=4",
            "stopping.cap=6",
            "training.schedule=constant",
            "experiment.name=constant",
        ),
        "infcop_if",
        0,
    )  # a schedule that holds its final LR may run past its end


def test_early_bird_honours_the_cap(make_cfg):
    rec = run_imp(
        make_cfg("training.epochs=5", "stopping.cap=2", "methods.early_bird.window=4"),
        "early_bird",
        0,
    )
    assert [lv["epochs"] for lv in rec["levels"]] == [2, 2]
    assert {lv["stop_reason"] for lv in rec["levels"]} == {"cap"}
