"""Tiny datasets written in the real on-disk formats, for tests that must not download anything."""

from pathlib import Path

import numpy as np


def write_tiny_imagenet(
    data_dir: Path, wnids=("n01", "n02"), per_class: int = 2, val_per_class: int = 1
) -> np.ndarray:
    """tiny-imagenet-200/ in its standard layout (wnids.txt, train/<wnid>/images, val/images +
    val_annotations.txt, an unlabelled test/). Every image is one flat 64x64 colour that encodes its
    class; returns those colours (classes x 3) indexed in sorted wnid order."""
    from PIL import Image

    root = Path(data_dir) / "tiny-imagenet-200"
    colours = {
        w: np.array([40 + 60 * i, 200 - 50 * i, 30 + 70 * (i % 3)], dtype=np.uint8)
        for i, w in enumerate(sorted(wnids))
    }
    image = lambda w: Image.fromarray(np.tile(colours[w], (64, 64, 1)))  # noqa: E731
    (root / "test" / "images").mkdir(parents=True)
    image(wnids[0]).save(root / "test" / "images" / "test_0.JPEG", quality=95)
    (root / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    (root / "words.txt").write_text("".join(f"{w}\tclass {w}\n" for w in wnids))
    lines = []
    for w in wnids:
        images = root / "train" / w / "images"
        images.mkdir(parents=True)
        for k in range(per_class):
            image(w).save(images / f"{w}_{k}.JPEG", quality=95)
        (root / "train" / w / f"{w}_boxes.txt").write_text(
            "".join(f"{w}_{k}.JPEG\t0\t0\t63\t63\n" for k in range(per_class))
        )
    (root / "val" / "images").mkdir(parents=True)
    for k in range(val_per_class * len(wnids)):
        w = wnids[k % len(wnids)]
        image(w).save(root / "val" / "images" / f"val_{k}.JPEG", quality=95)
        lines.append(f"val_{k}.JPEG\t{w}\t0\t0\t63\t63\n")
    (root / "val" / "val_annotations.txt").write_text("".join(lines))
    return np.stack([colours[w] for w in sorted(wnids)]).astype(float)
