"""Each reset: the weights it leaves and the LR of the first step after it, on hand-made snapshots
(a reset needs the dense run's snapshots, not the dense run: nothing is trained here)."""

import torch

from infcop.core.masks import full_mask
from infcop.core.models import build_model, prunable_layers
from infcop.core.pruners import MagnitudeGlobal
from infcop.core.resets import (
    KeepWeightsFixedLR,
    KeepWeightsReplayLR,
    ResetToInit,
    RewindTo,
    Snapshots,
)
from infcop.core.schedule import LRSchedule


def _state(seed):
    torch.manual_seed(seed)
    model = build_model("cifar_resnet20", (1, 8, 8), 10)
    state = model.state_dict()
    return {
        k: (torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v)
        for k, v in state.items()
    }


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


def test_fresh_init_redraws_survivors_reproducibly_per_seed_and_level():
    from infcop.core.data import epoch_generator
    from infcop.engine.imp import RESET_STREAM
    from infcop.baselines.lth_reinit import ResetToFreshInit

    model, snapshots, mask, schedule = _setup()
    snapshots = Snapshots(snapshots.init, snapshots.rewind, snapshots.rewind_step, draw_init=_state)

    def fresh(seed, level):
        lr = ResetToFreshInit().apply(
            model, mask, snapshots, schedule, epoch_generator(seed, level, RESET_STREAM)
        )
        assert lr.start_step == 0 and lr.lr_at(0) == 0.1
        return {k: v.clone() for k, v in model.state_dict().items()}

    first = fresh(0, 1)
    init_seed = int(torch.randint(0, 2**62, (1,), generator=epoch_generator(0, 1, RESET_STREAM)))
    _expect(model, _state(init_seed), mask)  # the state drawn for the stream's seed, masked
    assert all(
        torch.equal(first[k], v) for k, v in fresh(0, 1).items()
    )  # same seed and level: same numbers
    for other in (fresh(0, 2), fresh(1, 1)):  # another level or another run seed: another draw
        assert not torch.equal(other["fc.weight"], first["fc.weight"])
    layer = "fc"
    alive = mask[layer]
    assert not torch.equal(
        first[f"{layer}.weight"][alive], snapshots.init[f"{layer}.weight"][alive]
    )
    assert torch.all(first[f"{layer}.weight"][~alive] == 0)


def test_init_drawer_draws_theta0_of_another_seed_without_touching_the_global_rng():
    from infcop.core.data import load_splits
    from infcop.engine.dense import init_drawer, seeded_model
    from infcop.engine.spec import load_run_config

    cfg = load_run_config(None, ["model.name=conv_small"])
    splits = load_splits(cfg.data, torch.device("cpu"))
    draw = init_drawer(cfg, splits, torch.device("cpu"))
    torch.manual_seed(123)
    before = torch.get_rng_state()
    drawn = draw(5)
    assert torch.equal(torch.get_rng_state(), before)
    theta0_of_5 = seeded_model(cfg, splits, 5, torch.device("cpu")).state_dict()
    theta0_of_0 = seeded_model(cfg, splits, 0, torch.device("cpu")).state_dict()
    assert drawn.keys() == theta0_of_5.keys() and all(
        torch.equal(drawn[k], v) for k, v in theta0_of_5.items()
    )
    assert not torch.equal(drawn["9.weight"], theta0_of_0["9.weight"])  # the output layer
