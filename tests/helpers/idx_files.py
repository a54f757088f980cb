"""Tiny MNIST-like datasets in torchvision's real on-disk layout (IDX files), for tests/test_data.py
and the data rows of tests/test_faults.py."""

import struct

import numpy as np

from infcop.core import fetch as F


def write_idx(path, array: np.ndarray) -> None:
    """IDX format: magic (0,0,dtype=0x08 ubyte,ndim), big-endian dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        f.write(struct.pack(">" + "I" * array.ndim, *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def fake_mnist(root, folder, n_train=40, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    imgs = {
        "train": rng.integers(0, 256, (n_train, 28, 28)),
        "t10k": rng.integers(0, 256, (n_test, 28, 28)),
    }
    labels = {"train": np.arange(n_train) % 10, "t10k": np.arange(n_test) % 10}
    for split in ("train", "t10k"):
        write_idx(raw / f"{split}-images-idx3-ubyte", imgs[split])
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels[split])
    return imgs, labels


def stamped_mnist(root, name, monkeypatch, seed=0):
    """Tiny IDX files placed by hand, then verified and stamped by `fetch` (pinned to
    their own hashes)."""
    imgs, labels = fake_mnist(root, F.FOLDERS[name], seed=seed)
    raw = F.raw_dir(name, root)
    monkeypatch.setitem(F.EXPECTED, name, {f: F.array_sha256(F.read_idx(raw / f)) for f in F.FILES})
    return imgs, labels, F.fetch(name, root, sources=[], log=lambda _: None)
