"""Run the infcop CLI with one extra model that has dropout, so a test can kill and resume it.

python tests/helpers/dropout_runner.py run --config ... --set model.name=mlp_dropout ...
"""

import sys

import torch.nn as nn

from infcop.cli import main
from infcop.core.models import register_model


@register_model("mlp_dropout")
def mlp_dropout(input_shape, num_classes, pretrained=False):
    width = 1
    for d in input_shape:
        width *= d
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(width, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(64, num_classes),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
