"""The engine options the InfCoP authors' protocol needs (configs/paper.yaml): criterion check
period, fixed per-level budget, grey-to-RGB inputs, unnormalised pixels, per-layer magnitude pruning
of every conv and linear weight, the PQ pairings of the ablations, and Tiny-ImageNet-200."""

import csv

import numpy as np
import pytest
import torch

from infcop.foundations.config import ConfigError, DataConfig
from infcop.core.data import DatasetNotFound, load_splits, split_sizes
from infcop.core.masks import full_mask
from infcop.core.models import build_model, prunable_layers
from infcop.engine.imp import IMPRun
from infcop.engine.imp import run_imp
from infcop.methods import BuildContext, Role, get_method
from infcop.engine.spec import RunSpec, resolve_variant
from infcop.study.analysis import plan_comparisons
from helpers.tiny_data import write_tiny_imagenet

N_VAL = round(0.1 * (1797 - 1797 // 5))  # digits: validation share of the 1438 training images


def _epochs_csv(cfg, method):
    with open(IMPRun(RunSpec.of(cfg, method, 0)).dir.epochs) as f:
        return list(csv.DictReader(f))


def test_criteria_are_checked_every_k_epochs(make_cfg):
    """With check_every 2 a flow criterion that fires at once stops after epoch 2, not 1, and the
    epoch in between is neither measured nor charged as monitoring."""
    cfg = make_cfg(
        "stopping.check_every=2",
        "stopping.cap=5",
        "training.schedule=constant",
        "methods.infcop_if.epsilon=1e9",
    )
    rec = run_imp(cfg, "infcop_if", 0)
    assert [(lv.costs.epochs, lv.stop_reason) for lv in rec.levels] == [(2, "flow"), (2, "flow")]
    # one IF measurement on the 64-sample probe and one validation pass the rule reads, per level
    assert rec.levels[1].costs.monitor_forward_samples == 64 + N_VAL
    rows = _epochs_csv(cfg, "infcop_if")
    assert [(r["epoch"], r["if_distance"] != "") for r in rows] == [("1", False), ("2", True)] * 2
    once = run_imp(
        make_cfg(
            "stopping.cap=5",
            "training.schedule=constant",
            "methods.infcop_if.epsilon=1e9",
            "experiment.name=every1",
        ),
        "infcop_if",
        0,
    )
    assert [lv.costs.epochs for lv in once.levels] == [1, 1]


def test_the_cap_holds_between_checks(make_cfg):
    rec = run_imp(
        make_cfg(
            "stopping.check_every=2",
            "stopping.cap=3",
            "training.schedule=constant",
            "methods.infcop_if.epsilon=1e-12",
            "pruning.levels=1",
        ),
        "infcop_if",
        0,
    )
    assert [(lv.costs.epochs, lv.stop_reason) for lv in rec.levels] == [(3, "cap")]


def test_level_epochs_sets_every_fixed_budget(make_cfg):
    """The authors rewind to the end of their warm-up (level 0) and retrain 40 passes: after
    a rewind to the end of dense training no schedule is left, so the budget must be set,
    for every method."""
    cfg = make_cfg(
        "training.epochs=2",
        "training.rewind_point=2ep",
        "training.schedule=constant",
        "stopping.level_epochs=3",
        "pruning.levels=1",
    )
    for method in ("sap", "wr", "lth", "fixed_same_reset_pq"):
        assert [lv.costs.epochs for lv in run_imp(cfg, method, 0).levels] == [3], method
    without = make_cfg(
        "training.epochs=2",
        "training.rewind_point=2ep",
        "training.schedule=constant",
        "pruning.levels=1",
        "experiment.name=nobudget",
    )
    assert [lv.costs.epochs for lv in run_imp(without, "sap", 0).levels] == [1]


def test_level_epochs_past_a_cosine_schedule_is_rejected(make_cfg):
    cfg = make_cfg("training.epochs=3", "training.rewind_point=1ep", "stopping.level_epochs=3")
    with pytest.raises(
        ConfigError, match=r"stopping\.level_epochs: 3 epochs run past the end of the cosine"
    ):
        run_imp(cfg, "wr", 0)


def test_grey_images_repeated_to_three_channels():
    one = load_splits(DataConfig(dataset="digits"))
    three = load_splits(DataConfig(dataset="digits", channels=3))
    assert three.x_train.shape == (one.x_train.shape[0], 3, 8, 8) and three.input_shape == (3, 8, 8)
    for c in range(3):
        assert torch.equal(three.x_train[:, c], one.x_train[:, 0]) and torch.equal(
            three.x_test[:, c], one.x_test[:, 0]
        )
    assert split_sizes(DataConfig(dataset="mnist", channels=3, resize=224))[0] == (3, 224, 224)
    with pytest.raises(
        ConfigError, match="data.channels: 1 asked for, but cifar10 images have 3 channels"
    ):
        split_sizes(DataConfig(dataset="cifar10", channels=1))


def test_three_channel_input_keeps_torchvision_first_conv():
    """A 1-channel input replaces the first conv (dropping pretrained weights); 3
    channels keep it."""
    import torchvision.models as tvm

    torch.manual_seed(0)
    reference = tvm.resnet18().conv1.weight
    for shape, kept in (((3, 32, 32), True), ((1, 32, 32), False)):
        torch.manual_seed(0)
        conv1 = build_model("resnet18", shape, 10).conv1.weight
        assert (conv1.shape == reference.shape and torch.equal(conv1, reference)) is kept


def test_unstandardised_pixels_stay_in_unit_range():
    raw = load_splits(DataConfig(dataset="digits", standardize=False))
    assert float(raw.x_train.min()) == 0.0 and float(raw.x_train.max()) == 1.0  # digits: 0..16 / 16
    std = load_splits(DataConfig(dataset="digits"))
    assert abs(float(std.x_train.mean())) < 1e-3


def test_layerwise_lth_prunes_every_conv_and_linear_weight(make_cfg):
    """The authors' LTH pruned 20 % of each layer, first conv, classifier and
    downsample convs included."""
    cfg = make_cfg("pruning.scope=layer", "model.name=resnet18")
    model = build_model("resnet18", (3, 32, 32), 10)
    layers = prunable_layers(model)
    assert {"conv1", "fc", "layer2.0.downsample.0"} <= set(layers)
    ctx = BuildContext(cfg, steps_per_epoch=1, rewind_step=0, output_layer="fc")
    for method in ("lth", "wr"):
        spec = resolve_variant(cfg, method)
        pruner = spec.method.build(ctx, spec.params).pruner
        mask = pruner.next_mask({n: m.weight for n, m in layers.items()}, full_mask(model))
        for name, m in layers.items():
            n = m.weight.numel()
            assert int(mask[name].sum()) == n - round(0.2 * n), (method, name)
            kept = m.weight.detach().abs()[mask[name]].min()
            assert kept >= m.weight.detach().abs()[~mask[name]].max(), (method, name)


def test_pq_ablations_pair_with_their_pq_infcop(make_cfg):
    """acc_target, fixed_same_reset and the θ₀-reset ablations exist in the PQ pairing,
    for either (p, q)."""
    study = (
        "study.methods=[infcop_if_pq, infcop_gf_pq, sap, acc_target_pq, fixed_same_reset_pq, "
        "infcop_if_pq_init, infcop_gf_pq_init, "
        "{name: infcop_if_pq_p1q2, method: infcop_if_pq, params: {p: 1, q: 2}}, "
        "{name: sap_p1q2, method: sap, params: {p: 1, q: 2}}, "
        "{name: acc_target_pq_p1q2, method: acc_target_pq, params: {p: 1, q: 2}}, "
        "{name: infcop_if_pq_init_p1q2, method: infcop_if_pq_init, params: {p: 1, q: 2}}]"
    )
    cfg = make_cfg(study)
    pairs, why = plan_comparisons(cfg)
    assert set(pairs) == {
        ("infcop_if_pq", "sap"),
        ("infcop_if_pq", "acc_target_pq"),
        ("infcop_if_pq", "fixed_same_reset_pq"),
        ("infcop_if_pq", "infcop_if_pq_init"),
        ("infcop_gf_pq", "sap"),
        ("infcop_gf_pq", "acc_target_pq"),
        ("infcop_gf_pq", "fixed_same_reset_pq"),
        ("infcop_gf_pq", "infcop_gf_pq_init"),
        ("infcop_if_pq_p1q2", "sap_p1q2"),
        ("infcop_if_pq_p1q2", "acc_target_pq_p1q2"),
        ("infcop_if_pq_p1q2", "infcop_if_pq_init_p1q2"),
    }
    assert not why
    for name in ("acc_target_pq", "fixed_same_reset_pq", "infcop_if_pq_init", "infcop_gf_pq_init"):
        assert get_method(name).role is Role.ABLATION


def test_tiny_imagenet_reads_the_standard_layout(tmp_path):
    expected = write_tiny_imagenet(
        tmp_path, wnids=("n02", "n01", "n03"), per_class=3, val_per_class=2
    )
    dc = DataConfig(
        dataset="tiny_imagenet", data_dir=str(tmp_path), standardize=False, val_fraction=0.2
    )
    splits = load_splits(dc)
    assert splits.num_classes == 200 and splits.input_shape == (3, 64, 64)
    assert len(splits.y_train) + len(splits.y_val) == 9 and len(splits.y_test) == 6
    # classes in sorted wnid order; each image is one flat colour that encodes its class
    for x, y in (
        (splits.x_train, splits.y_train),
        (splits.x_val, splits.y_val),
        (splits.x_test, splits.y_test),
    ):
        colours = (x.mean(dim=(2, 3)) * 255).round().numpy()
        assert np.abs(colours - expected[y.numpy()]).max() <= 3
    assert sorted(splits.y_test.tolist()) == [0, 0, 1, 1, 2, 2]
    cache = tmp_path / "tiny-imagenet-200" / "infcop-arrays.npz"
    stamp = cache.stat().st_mtime_ns
    again = load_splits(dc)
    assert cache.stat().st_mtime_ns == stamp and torch.equal(again.x_test, splits.x_test)


def test_tiny_imagenet_absent_names_the_directory(tmp_path):
    with pytest.raises(
        DatasetNotFound, match=rf"Tiny-ImageNet-200 not found under {tmp_path}/tiny-imagenet-200"
    ):
        load_splits(DataConfig(dataset="tiny_imagenet", data_dir=str(tmp_path)))
