"""Tiny-ImageNet-200 read from its standard directory layout (users supply the files).

    tiny-imagenet-200/wnids.txt                          the 200 class ids
    tiny-imagenet-200/train/<wnid>/images/*.JPEG         500 labelled 64x64 images per class
    tiny-imagenet-200/val/images/*.JPEG                  10000 labelled images
    tiny-imagenet-200/val/val_annotations.txt            <file> <wnid> <box...>, tab-separated

The `test/` split has no labels, so the labelled `val/` split serves as the test split here (the
validation split of a run is carved from `train/`, as for every dataset). Classes are numbered in
sorted wnid order, as torchvision's ImageFolder does. Decoding 110 000 JPEGs takes minutes, so the
arrays are cached next to the images (`infcop-arrays.npz`, written atomically under a lock) and
reused while the image files' count, sizes and mtimes are unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from infcop.foundations.storage import file_lock

FOLDER = "tiny-imagenet-200"
CACHE = "infcop-arrays.npz"
NUM_CLASSES = 200


def _images(root: Path) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]], list[str]]:
    """(train files with wnids, val files with wnids, sorted wnids); FileNotFoundError
    naming what is missing."""
    wnids_file, annotations = root / "wnids.txt", root / "val" / "val_annotations.txt"
    for required in (wnids_file, root / "train", annotations):
        if not required.exists():
            raise FileNotFoundError(f"{required} is missing")
    wnids = sorted(w for w in wnids_file.read_text().split() if w)
    train = [(f, w) for w in wnids for f in sorted((root / "train" / w / "images").glob("*.JPEG"))]
    val = []
    for line in annotations.read_text().splitlines():
        if line.strip():
            name, wnid = line.split("\t")[:2]
            val.append((root / "val" / "images" / name, wnid))
    missing = [str(f) for f, _ in val if not f.is_file()]
    if not train or not val or missing:
        raise FileNotFoundError(
            f"{root} is incomplete: {len(train)} train images, {len(val)} val annotations"
            + (
                f", {len(missing)} annotated val images absent (e.g. {missing[0]})"
                if missing
                else ""
            )
        )
    unknown = sorted({w for _, w in val} - set(wnids))
    if unknown:
        raise FileNotFoundError(
            f"{annotations} names classes not in {wnids_file}: {', '.join(unknown[:3])}"
        )
    return train, val, wnids


def _signature(files: list[tuple[Path, str]]) -> np.ndarray:
    stats = [f.stat() for f, _ in files]
    return np.array(
        [len(stats), sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)],
        dtype=np.int64,
    )


def _decode(files: list[tuple[Path, str]], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    x = np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.uint8) for f, _ in files])
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), np.array(
        [index[w] for _, w in files], dtype=np.int64
    )


def read_tiny_imagenet(data_dir: str | Path) -> dict[str, np.ndarray]:
    """x_train, y_train, x_test (= labelled val/), y_test as NCHW uint8 / int64 arrays."""
    root = Path(data_dir) / FOLDER
    train, val, wnids = _images(root)
    signature = _signature(train + val)
    cache = root / CACHE
    if not os.access(root, os.W_OK):  # a read-only copy: decode every time
        return _arrays(train, val, wnids)
    with file_lock(root / (CACHE + ".lock")):
        if cache.is_file():
            with np.load(cache) as saved:
                if np.array_equal(saved["signature"], signature):
                    return {k: saved[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        arrays = _arrays(train, val, wnids)
        tmp = root / f".{CACHE}.{os.getpid()}.tmp.npz"
        np.savez(tmp, signature=signature, **arrays)
        os.replace(tmp, cache)
    return arrays


def _arrays(
    train: list[tuple[Path, str]], val: list[tuple[Path, str]], wnids: list[str]
) -> dict[str, np.ndarray]:
    index = {w: i for i, w in enumerate(wnids)}
    (x_train, y_train), (x_test, y_test) = _decode(train, index), _decode(val, index)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
