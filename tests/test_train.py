import math

import torch
import torch.nn as nn

from infcop.core.costs import Costs, forward_flops, output_positions
from infcop.core.data import epoch_generator, load_splits
from infcop.engine.dense import ensure_dense
from infcop.core.masks import MaskedWeights, full_mask
from infcop.core.models import build_model, prunable_layers
from infcop.foundations.storage import read_json
from infcop.core.schedule import LRSchedule
from infcop.core.train import Trainer, make_optimizer


def test_flops_match_hand_count():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 5),
    )
    pos = output_positions(model, (1, 8, 8))
    assert pos == {"0": 64, "4": 1}
    mask = full_mask(model)
    # conv: 4*1*3*3 = 36 weights, each used at 8*8 positions, 2 FLOPs per use;
    # linear: 64*5 weights once
    assert forward_flops(pos, mask) == 2 * 36 * 64 + 2 * 320
    mask["0"][0] = False  # prune one whole output filter: 9 weights
    mask["4"][:, :10] = False  # 50 weights
    assert forward_flops(pos, mask) == 2 * 27 * 64 + 2 * 270


def test_conv1d_and_strided_positions():
    model = nn.Sequential(nn.Conv1d(1, 2, 5, stride=2), nn.Flatten(), nn.Linear(2 * 18, 3))
    assert output_positions(model, (1, 40)) == {"0": 18, "2": 1}


def test_lr_schedules():
    assert LRSchedule(0.1, 100, "constant").lr_at(57) == 0.1
    step = LRSchedule(0.1, 100, "step", (0.5, 0.75), 0.1)
    got = [step.lr_at(s) for s in (0, 49, 50, 74, 75, 99)]
    assert all(abs(a - b) < 1e-15 for a, b in zip(got, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]))
    cos = LRSchedule(0.1, 100, "cosine")
    assert cos.lr_at(0) == 0.1 and abs(cos.lr_at(50) - 0.05) < 1e-12 and cos.lr_at(100) < 1e-12
    assert abs(cos.lr_at(25) - 0.05 * (1 + math.cos(math.pi / 4))) < 1e-12
    assert cos.lr_at(500) == cos.lr_at(100)


def test_pruned_weights_stay_zero_under_momentum_and_weight_decay(make_cfg):
    cfg = make_cfg("training.momentum=0.9", "training.weight_decay=0.01", "training.lr=0.2")
    splits = load_splits(cfg.data)
    torch.manual_seed(0)
    model = build_model("lenet_300_100", splits.input_shape, 10)
    mask = full_mask(model)
    g = torch.Generator().manual_seed(0)
    for m in mask.values():
        m &= torch.rand(m.shape, generator=g) < 0.3  # keep 30%, at random
    masked = MaskedWeights(model, mask)
    masked.apply()
    opt = make_optimizer(model, cfg.training)
    # a first epoch without masking builds nonzero momentum on pruned entries: the failure mode
    Trainer(model, opt, splits, 64, 1.0, Costs()).train_epoch(
        lambda s: 0.2, 0, epoch_generator(0, 0, 1)
    )
    masked.apply()
    for epoch in range(2, 4):
        Trainer(model, opt, splits, 64, 1.0, Costs(), masked).train_epoch(
            lambda s: 0.2, 0, epoch_generator(0, 0, epoch)
        )
        for name, layer in prunable_layers(model).items():
            assert int((layer.weight != 0).sum()) <= int(mask[name].sum())
            assert torch.all(layer.weight[~mask[name]] == 0)
    buffers = {id(p): b for p, b in zip(opt.params, opt.buffers)}
    assert any(
        float(buffers[id(layer.weight)][~mask[n]].abs().max()) > 0
        for n, layer in prunable_layers(model).items()
    ), "the test must exercise revived momentum"


def test_cost_meter_counts(make_cfg):
    cfg = make_cfg()
    splits = load_splits(cfg.data)
    model = build_model("lenet_300_100", splits.input_shape, 10)
    costs = Costs()
    Trainer(model, make_optimizer(model, cfg.training), splits, 100, 10.0, costs).train_epoch(
        lambda s: 0.01, 0, epoch_generator(0, 0, 1)
    )
    n = len(splits.y_train)
    assert (
        costs.epochs == 1
        and costs.optimizer_steps == math.ceil(n / 100)
        and costs.train_samples == n
    )
    assert costs.train_flops == 3 * 10.0 * n and costs.train_seconds > 0


def test_dense_training_is_deterministic_and_recorded(make_cfg, tmp_path):
    a = ensure_dense(make_cfg(), 0, torch.device("cpu"))
    b = ensure_dense(
        make_cfg(f"experiment.results_dir={tmp_path / 'other'}"), 0, torch.device("cpu")
    )
    assert a.record.epochs == b.record.epochs and a.record.test_acc == b.record.test_acc
    for k, v in a.state("final").items():
        assert torch.equal(v, b.state("final")[k])
    c = ensure_dense(
        make_cfg(f"experiment.results_dir={tmp_path / 'third'}"), 1, torch.device("cpu")
    )
    assert c.record.epochs != a.record.epochs
    rec = read_json(a.dir.root / "record.json")
    assert (
        rec["config_hash"]
        and rec["provenance"]["packages"]["torch"]
        and rec["costs"]["optimizer_steps"] > 0
    )
    assert (
        (a.dir.root / "init.pt").exists()
        and (a.dir.root / "rewind.pt").exists()
        and (a.dir.root / "epochs.csv").exists()
    )


def test_lenet_reaches_95_percent_on_digits_with_default_recipe(tmp_path):
    from infcop.foundations.config import load_config

    cfg = load_config("configs/default.yaml", [f"experiment.results_dir={tmp_path}"])
    run = ensure_dense(cfg, 0, torch.device("cpu"))
    assert run.record.test_acc >= 0.95


def test_sgd_matches_torch_optim_bit_for_bit():
    from infcop.core.sgd import SGD

    for momentum, wd, nesterov in [
        (0.9, 5e-4, False),
        (0.9, 1e-3, True),
        (0.0, 0.0, False),
        (0.5, 0.0, False),
    ]:
        torch.manual_seed(0)
        a = build_model("conv_small", (1, 8, 8), 10)
        b = build_model("conv_small", (1, 8, 8), 10)
        b.load_state_dict(a.state_dict())
        ours = SGD(a.parameters(), lr=0.1, momentum=momentum, weight_decay=wd, nesterov=nesterov)
        ref = torch.optim.SGD(
            b.parameters(), lr=0.1, momentum=momentum, weight_decay=wd, nesterov=nesterov
        )
        for step in range(4):
            x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
            for model, opt in ((a, ours), (b, ref)):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
            for pa, pb in zip(a.parameters(), b.parameters()):
                assert torch.equal(pa, pb), (momentum, wd, nesterov, step)


def test_bf16_and_channels_last_options_train_and_keep_masks(make_cfg):
    from infcop.engine.imp import run_imp

    rec = run_imp(
        make_cfg("model.name=conv_small", "training.bf16=true", "training.channels_last=true"),
        "lth",
        0,
    ).to_json()
    assert rec["status"] == "complete" and rec["levels"][-1]["test_acc"] > 0.1
