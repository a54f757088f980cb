"""Each reset: the weights it leaves and the LR of the first step after it."""
import torch

from infcop.data import load_splits
from infcop.dense import ensure_dense, seeded_model
from infcop.masks import full_mask
from infcop.models import prunable_layers
from infcop.pruners import MagnitudeGlobal
from infcop.resets import KeepWeightsFixedLR, KeepWeightsReplayLR, ResetToInit, RewindTo
from infcop.schedule import LRSchedule


def _setup(make_cfg, rewind="2it"):
    cfg = make_cfg(f"training.rewind_point={rewind}", "training.schedule=step", "training.milestones=[0.05]",
                   "model.name=cifar_resnet20", "data.dataset=digits")
    splits = load_splits(cfg.data)
    dense = ensure_dense(cfg, 0, torch.device("cpu"), splits)
    model = seeded_model(cfg, splits, 0, torch.device("cpu"))
    model.load_state_dict(dense.state("final"))
    weights = {n: m.weight for n, m in prunable_layers(model).items()}
    mask = MagnitudeGlobal(fraction=0.5).next_mask(weights, full_mask(model))
    schedule = LRSchedule.from_config(cfg.training, splits.steps_per_epoch(cfg.training.batch_size))
    return cfg, dense, model, mask, schedule


def _expect(model, state, mask):
    for k, v in model.state_dict().items():
        layer = k.rsplit(".", 1)[0]
        want = state[k] * mask[layer] if k.endswith("weight") and layer in mask else state[k]
        assert torch.equal(v, want), k


def test_reset_to_init(make_cfg):
    cfg, dense, model, mask, schedule = _setup(make_cfg)
    lr = ResetToInit().apply(model, mask, dense, schedule)
    _expect(model, dense.state("init"), mask)
    assert lr.start_step == 0 and lr.lr_at(lr.start_step) == cfg.training.lr


def test_rewind_restores_weights_bn_state_and_lr_position(make_cfg):
    cfg, dense, model, mask, schedule = _setup(make_cfg)
    lr = RewindTo().apply(model, mask, dense, schedule)
    state = dense.state("rewind")
    _expect(model, state, mask)
    assert any("running_mean" in k for k in state) and not torch.equal(state["bn.running_mean"], dense.state("init")["bn.running_mean"])
    assert lr.start_step == dense.rewind_step == 2
    # milestone at 5% of 33 steps = step 2: the rewound LR is already past the drop
    assert lr.lr_at(lr.start_step) == cfg.training.lr * cfg.training.gamma


def test_keep_weights_replay_and_fixed(make_cfg):
    cfg, dense, model, mask, schedule = _setup(make_cfg)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    lr = KeepWeightsReplayLR().apply(model, mask, dense, schedule)
    _expect(model, trained, mask)
    assert lr.start_step == 0 and lr.lr_at(0) == cfg.training.lr
    lr = KeepWeightsFixedLR(1e-3).apply(model, mask, dense, schedule)
    assert lr.lr_at(0) == lr.lr_at(10_000) == 1e-3
