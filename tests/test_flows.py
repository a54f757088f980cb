import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from infcop.core.data import Splits
from infcop.core.flows import (
    Probe,
    distance,
    gradient_flow,
    information_flow,
    layer_outputs,
    make_probes,
    measure_reference,
)
from infcop.core.masks import full_mask
from infcop.core.models import CifarResNet, build_model, flow_layers


def splits_of(x, y):
    return Splits(x, y, x[:0], y[:0], x[:0], y[:0], 10, False, 0)


def probe_of(x, y, batch=16):
    return Probe(x, y, batch, splits_of(x, y))


def recorded(model, x):
    """Flow-layer outputs recorded independently of infcop.core.flows (plain hooks, no_grad)."""
    outs = []
    hs = [
        m.register_forward_hook(
            lambda m, i, o: outs.append(
                o.detach().double().flatten(2).mean(2) if o.dim() > 2 else o.detach().double()
            )
        )
        for m in flow_layers(model).values()
    ]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return [o.numpy() for o in outs]


@pytest.mark.parametrize(
    "name, shape", [("lenet_300_100", (1, 8, 8)), ("conv_small", (1, 8, 8)), ("cnn1d", (1, 40))]
)
def test_information_flow_matches_numpy_corrcoef(name, shape):
    torch.manual_seed(0)
    model = build_model(name, shape, 10)
    x, y = torch.randn(64, *shape), torch.randint(0, 10, (64,))
    acts = recorded(model, x)
    signed, absolute = [], []
    for a, b in zip(acts[:-1], acts[1:]):
        keep_a, keep_b = a.std(0) > 0, b.std(0) > 0  # corrcoef is undefined on constant channels
        cross = np.corrcoef(a[:, keep_a].T, b[:, keep_b].T)[: keep_a.sum(), keep_a.sum() :]
        full = np.zeros((a.shape[1], b.shape[1]))
        full[np.ix_(keep_a, keep_b)] = cross  # a dead channel's z-score is 0 under the std floor
        signed.append(full.mean())
        absolute.append(np.abs(full).mean())
    probe = probe_of(x, y, batch=16)  # several batches: statistics are over the whole probe set
    np.testing.assert_allclose(information_flow(model, probe, "signed"), signed, atol=1e-10)
    np.testing.assert_allclose(information_flow(model, probe, "absolute"), absolute, atol=1e-10)


def test_copying_layer_gives_rho_one():
    torch.manual_seed(0)
    first = nn.Linear(5, 3)
    with torch.no_grad():  # three channels that are positive multiples of one signal
        first.weight.copy_(first.weight[0:1] * torch.tensor([[1.0], [2.0], [0.5]]))
        first.bias.zero_()
    copy_layer = nn.Linear(3, 3)
    with torch.no_grad():
        copy_layer.weight.copy_(torch.eye(3))
        copy_layer.bias.zero_()
    model = nn.Sequential(first, copy_layer)
    probe = probe_of(torch.randn(50, 5), torch.zeros(50, dtype=torch.long))
    assert information_flow(model, probe, "signed") == pytest.approx([1.0], abs=1e-9)
    assert information_flow(model, probe, "absolute") == pytest.approx([1.0], abs=1e-9)


def test_gradient_flow_matches_backward_by_hand():
    torch.manual_seed(0)
    model = build_model("conv_small", (1, 8, 8), 10)
    mask = full_mask(model)
    for m in mask.values():
        m[..., 0] = False  # some dead entries: the mean runs over alive entries only
    x, y = torch.randn(40, 1, 8, 8), torch.randint(0, 10, (40,))
    expected = np.zeros(len(mask))
    for start in (0, 16, 32):  # batches of 16, 16, 8
        ref = copy.deepcopy(model).eval()
        F.cross_entropy(ref(x[start : start + 16]), y[start : start + 16]).backward()
        for i, (n, layer) in enumerate(flow_layers(ref).items()):
            expected[i] += float(layer.weight.grad.abs()[mask[n]].double().mean()) / 3
    np.testing.assert_allclose(gradient_flow(model, probe_of(x, y, 16), mask), expected, rtol=1e-6)


def test_measuring_changes_nothing_in_training():
    torch.manual_seed(0)
    model = CifarResNet(8, 10, 3)
    twin = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt_twin = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(32, 3, 8, 8), torch.randint(0, 10, (32,))
    for m, o in ((model, opt), (twin, opt_twin)):  # one step each so grads and momentum exist
        F.cross_entropy(m(x), y).backward()
        o.step()
    bn_before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    grads_before = [p.grad.clone() for p in model.parameters()]
    model.eval()
    with torch.no_grad():
        out_before = model(x)
    model.train()
    probe = probe_of(torch.randn(20, 3, 8, 8), torch.randint(0, 10, (20,)), 8)
    information_flow(model, probe)
    gradient_flow(model, probe, full_mask(model))
    assert model.training, "measurement restores train mode"
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in bn_before.items()), (
        "BN statistics untouched"
    )
    assert all(torch.equal(g, p.grad) for g, p in zip(grads_before, model.parameters())), (
        ".grad untouched"
    )
    assert not any(m._forward_hooks for m in model.modules()), "no hook left attached"
    model.eval()
    with torch.no_grad():
        assert torch.equal(out_before, model(x))
    model.train()
    for m, o in (
        (model, opt),
        (twin, opt_twin),
    ):  # the next training step is identical to the twin's
        o.zero_grad()
        F.cross_entropy(m(x), y).backward()
        o.step()
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values())
    )


def test_noise_floor_is_distance_between_disjoint_probes():
    torch.manual_seed(0)
    x, y = torch.randn(300, 1, 8, 8), torch.randint(0, 10, (300,))
    splits = splits_of(x, y)
    a, b = make_probes(splits, 100, 32, seed=3)
    rows = lambda p: {tuple(r.tolist()) for r in p.x.flatten(1)}  # noqa: E731
    assert len(a.y) == len(b.y) == 100 and not rows(a) & rows(b)
    a2, _ = make_probes(splits, 100, 32, seed=3)
    assert torch.equal(a.x, a2.x), "the probe set is a function of the seed"
    model = build_model("lenet_300_100", (1, 8, 8), 10)
    ref = measure_reference(model, a, b, full_mask(model), "absolute")
    assert ref.information_noise == pytest.approx(
        distance(information_flow(model, a, "absolute"), information_flow(model, b, "absolute"))
    )
    assert ref.gradient_noise == pytest.approx(
        distance(
            gradient_flow(model, a, full_mask(model)), gradient_flow(model, b, full_mask(model))
        )
    )
    assert ref.information_noise > 0


def test_layer_outputs_are_float64_and_spatially_averaged():
    model = build_model("conv_small", (1, 8, 8), 10)
    outs = layer_outputs(
        model, probe_of(torch.randn(10, 1, 8, 8), torch.zeros(10, dtype=torch.long))
    )
    assert [o.shape for o in outs] == [(10, 16), (10, 32), (10, 64), (10, 10)]
    assert all(o.dtype == torch.float64 for o in outs)


def dead_first_layer() -> nn.Module:
    """A 3-layer MLP whose first layer has zero weights and bias: alive by its
    mask, constant output."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.zero_()
        model[2].bias.fill_(0.5)  # layer 3 sees a constant, non-zero input: its gradient is not 0
    return model


def test_information_flow_is_undefined_next_to_a_constant_layer():
    model = dead_first_layer()
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    rho = information_flow(model, probe_of(x, y), "signed")
    # layer 1 is constant; layer 2 = W2 relu(0) + b2 is constant too; layer 3
    # likewise: all undefined
    assert np.isnan(rho).all() and len(rho) == 2
    with torch.no_grad():
        model[0].bias.copy_(torch.arange(5.0))  # still constant over the probe: same verdict
    assert np.isnan(information_flow(model, probe_of(x, y), "absolute")).all()
    with torch.no_grad():
        # alive again: a number, as test_information_flow_matches_numpy_corrcoef checks
        model[0].weight.normal_()
    assert np.isfinite(information_flow(model, probe_of(x, y), "signed")).all()


def test_gradient_flow_is_undefined_where_alive_weights_get_no_gradient():
    model = dead_first_layer()
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    g = gradient_flow(model, probe_of(x, y), full_mask(model))
    # layer 1: ∂L/∂W1 = δ1 xᵀ with δ1 = relu'(0) W2ᵀ δ2 = 0; layer 2: δ2 relu(h1)ᵀ = 0;
    # layer 3: δ3 relu(b2)ᵀ
    assert np.isnan(g[:2]).all()
    per_batch = []  # the probe's two batches of 16, each its mean loss's gradient
    with torch.no_grad():
        for xb, yb in zip(x.split(16), y.split(16)):
            delta = (F.softmax(model(xb), 1) - F.one_hot(yb, 3)) / 16
            per_batch.append(
                float((delta.T @ torch.relu(model[2].bias).expand(16, 4)).abs().mean())
            )
    assert g[2] == pytest.approx(np.mean(per_batch), rel=1e-6)
