import pytest
import torch

from infcop.core.models import build_model, flow_layers, prunable_layers


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 32, 32), (3, 32, 32)])
def test_output_shape(shape):
    model = build_model("lenet5", shape, 10)
    with torch.no_grad():
        assert model(torch.randn(4, *shape)).shape == (4, 10)


def test_parameter_count_28x28():
    by_hand = (
        6 * 1 * 5 * 5
        + 6  # conv 1 -> 6, 5x5
        + 16 * 6 * 5 * 5
        + 16  # conv 6 -> 16, 5x5
        + 400 * 120
        + 120
        + 120 * 84
        + 84
        + 84 * 10
        + 10
    )
    assert by_hand == 61_706
    model = build_model("lenet5", (1, 28, 28), 10)
    assert sum(p.numel() for p in model.parameters()) == by_hand


def test_prunable_and_flow_layers():
    model = build_model("lenet5", (1, 28, 28), 10)
    layers = list(prunable_layers(model).values())
    kinds = [type(m) for m in layers]
    assert kinds == [
        torch.nn.Conv2d,
        torch.nn.Conv2d,
        torch.nn.Linear,
        torch.nn.Linear,
        torch.nn.Linear,
    ]
    assert [m.weight.shape[0] for m in layers] == [6, 16, 120, 84, 10]
    assert list(flow_layers(model)) == list(prunable_layers(model))


def test_first_conv_follows_input():
    assert prunable_layers(build_model("lenet5", (3, 32, 32), 10))["0"].in_channels == 3
    assert build_model("lenet5", (1, 28, 28), 10)[0].padding == (2, 2)
    assert build_model("lenet5", (1, 32, 32), 10)[0].padding == (0, 0)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 40), (3, 28, 32)])
def test_other_sizes_rejected(shape):
    with pytest.raises(ValueError, match="28 x 28 or C x 32 x 32"):
        build_model("lenet5", shape, 10)
