import pytest
import torch

from infcop.core.models import MODELS, build_model, flow_layers, prunable_layers

SHAPES = {
    "lenet_300_100": (1, 8, 8),
    "lenet5": (1, 28, 28),
    "conv_small": (1, 8, 8),
    "cnn1d": (1, 40),
    "cifar_resnet20": (3, 32, 32),
    "cifar_vgg16": (3, 32, 32),
    "resnet18": (3, 32, 32),
    "vgg16": (3, 32, 32),
}
# (number of prunable layers, number of flow layers): ResNets' shortcut convs are prunable
# but off the flow chain
LAYERS = {
    "lenet_300_100": (3, 3),
    "lenet5": (5, 5),
    "conv_small": (4, 4),
    "cnn1d": (4, 4),
    "cifar_resnet20": (22, 20),
    "cifar_vgg16": (14, 14),
    "resnet18": (21, 18),
    "vgg16": (16, 16),
}


def test_every_model_is_covered():
    assert set(MODELS) == set(SHAPES)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_forward_and_layer_lists(name):
    torch.manual_seed(0)
    model = build_model(name, SHAPES[name], 7)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, *SHAPES[name]))
    assert out.shape == (2, 7)
    layers = prunable_layers(model)
    assert (len(layers), len(flow_layers(model))) == LAYERS[name]
    assert all(
        isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)) for m in layers.values()
    )
    assert list(layers.values())[-1].out_features == 7  # the output layer is last
    assert not any("downsample" in n or "shortcut" in n for n in flow_layers(model))


def test_unknown_model_lists_known():
    with pytest.raises(KeyError, match="known: .*cifar_resnet20"):
        build_model("alexnet", (3, 32, 32), 10)
