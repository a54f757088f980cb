"""Each reset: the weights it leaves and the LR of the first step after it, on hand-made snapshots
(a reset needs the dense run's snapshots, not the dense run: nothing is trained here)."""
import torch

from infcop.core.masks import full_mask
from infcop.core.models import build_model, prunable_layers
from infcop.core.pruners import MagnitudeGlobal
from infcop.core.resets import KeepWeightsFixedLR, KeepWeightsReplayLR, ResetToInit, RewindTo, Snapshots
from infcop.core.schedule import LRSchedule


def _state(seed):
    torch.manual_seed(seed)
    model = build_model("cifar_resnet20", (1, 8, 8), 10)
    state = model.state_dict()
    return {k: (torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v) for k, v in state.items()}


def _setup():
    model = build_model("cifar_resnet20", (1, 8, 8), 10)
    model.load_state_dict(_state(3))  # "trained" weights
    snapshots = Snapshots(init=_state(1), rewind=_state(2), rewind_step=2)
    weights = {n: m.weight for n, m in prunable_layers(model).items()}
    mask = MagnitudeGlobal(fraction=0.5).next_mask(weights, full_mask(model))
    schedule = LRSchedule(base_lr=0.1, total_steps=33, kind="step", milestones=(0.05,), gamma=0.1)
    return model, snapshots, mask, schedule


def _expect(model, state, mask):
    for k, v in model.state_dict().items():
        layer = k.rsplit(".", 1)[0]
        want = state[k] * mask[layer] if k.endswith("weight") and layer in mask else state[k]
        assert torch.equal(v, want), k


def test_reset_to_init():
    model, snapshots, mask, schedule = _setup()
    lr = ResetToInit().apply(model, mask, snapshots, schedule)
    _expect(model, snapshots.init, mask)
    assert lr.start_step == 0 and lr.lr_at(lr.start_step) == 0.1


def test_rewind_restores_weights_bn_state_and_lr_position():
    model, snapshots, mask, schedule = _setup()
    lr = RewindTo().apply(model, mask, snapshots, schedule)
    _expect(model, snapshots.rewind, mask)
    assert any("running_mean" in k for k in snapshots.rewind)  # BN buffers are part of the rewind
    assert lr.start_step == 2
    # milestone at 5% of 33 steps = step 2: the rewound LR is already past the drop
    assert lr.lr_at(lr.start_step) == 0.1 * 0.1


def test_keep_weights_replay_and_fixed():
    model, snapshots, mask, schedule = _setup()
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    lr = KeepWeightsReplayLR().apply(model, mask, snapshots, schedule)
    _expect(model, trained, mask)
    assert lr.start_step == 0 and lr.lr_at(0) == 0.1
    lr = KeepWeightsFixedLR(1e-3).apply(model, mask, snapshots, schedule)
    assert lr.lr_at(0) == lr.lr_at(10_000) == 1e-3
