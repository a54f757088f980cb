"""Model registry. Every model is a plain nn.Module; the harness derives its layer lists:

* prunable layers: the weight of every Conv1d / Conv2d / Linear, in module order (biases and
  norm layers are never pruned);
* flow layers: the prunable layers on the main chain, i.e. without ResNet shortcut convs
  (`downsample` / `shortcut`), as the InfCoP authors measured flows. The last flow layer is the
  output layer, so the last information-flow pair is (penultimate layer, logits).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)
SHORTCUT_NAMES = ("downsample", "shortcut")

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = fn
        return fn

    return wrap


def build_model(
    name: str, input_shape: tuple[int, ...], num_classes: int, pretrained: bool = False
) -> nn.Module:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name](input_shape=input_shape, num_classes=num_classes, pretrained=pretrained)


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Ordered {name: module} of every Conv1d/Conv2d/Linear."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}


def flow_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Prunable layers on the main chain (shortcut convs left out)."""
    return {
        n: m
        for n, m in prunable_layers(model).items()
        if not any(s in n.split(".") for s in SHORTCUT_NAMES)
    }


def output_layer_name(model: nn.Module) -> str:
    return list(prunable_layers(model))[-1]


# ---------------------------------------------------------------- small embedded models
@register_model("lenet_300_100")
def lenet_300_100(
    input_shape: tuple[int, ...], num_classes: int, pretrained: bool = False
) -> nn.Module:
    n_in = 1
    for d in input_shape:
        n_in *= d
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(n_in, 300),
        nn.ReLU(),
        nn.Linear(300, 100),
        nn.ReLU(),
        nn.Linear(100, num_classes),
    )


@register_model("conv_small")
def conv_small(
    input_shape: tuple[int, ...], num_classes: int, pretrained: bool = False
) -> nn.Module:
    """A small CNN for 8x8 digits (works for any image size)."""
    c = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


@register_model("cnn1d")
def cnn1d(input_shape: tuple[int, ...], num_classes: int, pretrained: bool = False) -> nn.Module:
    """A small 1-D CNN for MNIST-1D (40-sample signals)."""
    c = input_shape[0]
    return nn.Sequential(
        nn.Conv1d(c, 32, 5, padding=2),
        nn.ReLU(),
        nn.Conv1d(32, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


# --------------------------------------------------------------- CIFAR models of the LTH literature
class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:  # 1x1 projection, as in OpenLTH's cifar_resnet
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for CIFAR (He et al. 2016): widths 16/32/64, n blocks per stage."""

    def __init__(self, depth: int, num_classes: int, in_channels: int = 3):
        super().__init__()
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, c_in = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for i in range(n):
                blocks.append(_BasicBlock(c_in, width, 2 if stage > 0 and i == 0 else 1))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(torch.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


@register_model("cifar_resnet20")
def cifar_resnet20(
    input_shape: tuple[int, ...], num_classes: int, pretrained: bool = False
) -> nn.Module:
    return CifarResNet(20, num_classes, input_shape[0])


@register_model("cifar_vgg16")
def cifar_vgg16(
    input_shape: tuple[int, ...], num_classes: int, pretrained: bool = False
) -> nn.Module:
    """VGG-16 with batch norm and a single linear classifier (the LTH CIFAR variant)."""
    plan = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
    layers: list[nn.Module] = []
    c = input_shape[0]
    for item in plan:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [
                nn.Conv2d(c, int(item), 3, padding=1, bias=False),
                nn.BatchNorm2d(int(item)),
                nn.ReLU(),
            ]
            c = int(item)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- torchvision ImageNet models
def _torchvision_model(
    arch: str, num_classes: int, in_channels: int, pretrained: bool
) -> nn.Module:
    import torchvision.models as tvm

    weights = "DEFAULT" if pretrained else None
    try:
        model = getattr(tvm, arch)(weights=weights)
    except Exception as err:  # offline: the hub download fails
        raise RuntimeError(
            f"could not load ImageNet weights for {arch} ({err}); set model.pretrained=false "
            f"or place the weights in torch's hub cache ($TORCH_HOME)"
        ) from err
    if arch.startswith("resnet"):
        model.fc = nn.Linear(model.fc.in_features, num_classes)
        if in_channels != 3:
            model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    else:
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
        if in_channels != 3:
            model.features[0] = nn.Conv2d(in_channels, 64, 3, padding=1)
    return model


@register_model("resnet18")
def resnet18(input_shape: tuple[int, ...], num_classes: int, pretrained: bool = False) -> nn.Module:
    return _torchvision_model("resnet18", num_classes, input_shape[0], pretrained)


@register_model("vgg16")
def vgg16(input_shape: tuple[int, ...], num_classes: int, pretrained: bool = False) -> nn.Module:
    return _torchvision_model("vgg16", num_classes, input_shape[0], pretrained)


# ---------------------------------------------------------------- LeNet-5
@register_model("lenet5")
def lenet5(input_shape: tuple[int, ...], num_classes: int, pretrained: bool = False) -> nn.Module:
    """LeNet-5 (LeCun et al. 1998) with ReLU and max pooling. 32x32 inputs get the original unpadded
    first conv; 28x28 inputs (MNIST) pad it by 2, so both reach the 16 x 5 x 5
    maps of the original."""
    if len(input_shape) != 3 or tuple(input_shape[1:]) not in ((28, 28), (32, 32)):
        raise ValueError(
            f"lenet5 takes C x 28 x 28 or C x 32 x 32 images, got input shape {tuple(input_shape)}"
        )
    padding = 2 if input_shape[1] == 28 else 0
    return nn.Sequential(
        nn.Conv2d(input_shape[0], 6, 5, padding=padding),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )
