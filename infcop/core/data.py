"""Dataset registry -> train / validation / test tensors held on the training device.

All datasets here are small enough to live on the device as one tensor each, so batching is
indexing with a seeded permutation: no DataLoader, no worker processes, no per-sample Python.
Augmentation (CIFAR crop + flip) and resizing are applied per batch on the device.
MNIST and Fashion-MNIST are read only once `infcop data fetch` has verified and stamped them; the
first job to load one writes its splits, in the exact tensors training reads, to a cache file keyed
by the stamp's content hashes and the split settings, which every later job memory-maps instead of
decoding and standardising 70,000 images again (seconds per job, paid by every job of a study).
The cache is only an optimisation: it carries a checksum of its content, verified on every read (a
damaged one is rebuilt from the verified files, never trusted), and where it cannot be written (a
read-only or nearly full dataset directory, as shared datasets on clusters often are) the splits are
computed each time, with a warning.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from infcop.foundations.config import ConfigError, DataConfig
from infcop.core import fetch, tiny_imagenet
from infcop.foundations.storage import atomic_torch_save, tensors_sha256

log = logging.getLogger("infcop")


class DatasetNotFound(FileNotFoundError):
    """A download-backed dataset is not on disk and downloading is off."""


class BadDataset(ValueError):
    """A dataset loaded, but its arrays do not fit together (label and image
    counts, label range)."""


@dataclass
class RawDataset:
    x_train: np.ndarray  # N x C x ... float32 or uint8
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    source: dict  # where the data came from, for run provenance


DATASETS: dict[str, Callable[[DataConfig], RawDataset]] = {}


def register_dataset(name: str) -> Callable:
    def wrap(fn: Callable[[DataConfig], RawDataset]) -> Callable[[DataConfig], RawDataset]:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} registered twice")
        DATASETS[name] = fn
        return fn

    return wrap


def digits_file() -> Path:
    """scikit-learn's bundled digits.csv.gz, located without importing sklearn (a 1 s import)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise DatasetNotFound("the digits dataset ships with scikit-learn, which is not installed")
    return Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"


@register_dataset("digits")
def _digits(dc: DataConfig) -> RawDataset:
    table = np.loadtxt(digits_file(), delimiter=",")  # 64 pixel columns (0..16), then the label
    x = (table[:, :-1].reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    y = table[:, -1].astype(np.int64)
    # digits has no official test split: hold out a fixed 20%, independent of the run seed.
    order = np.random.default_rng(dc.split_seed + 10_000).permutation(len(y))
    n_test = len(y) // 5
    test, train = order[:n_test], order[n_test:]
    return RawDataset(
        x[train], y[train], x[test], y[test], 10, {"source": "embedded: scikit-learn digits"}
    )


@register_dataset("mnist1d")
def _mnist1d(dc: DataConfig) -> RawDataset:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = dc.mnist1d_samples
    args.seed = dc.mnist1d_seed
    state = np.random.get_state()  # mnist1d seeds numpy's global RNG; leave it as we found it
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    to_x = lambda a: a.astype(np.float32)[:, None, :]  # noqa: E731
    source = {
        "source": "generated: MNIST-1D",
        "samples": dc.mnist1d_samples,
        "seed": dc.mnist1d_seed,
    }
    return RawDataset(
        to_x(d["x"]),
        d["y"].astype(np.int64),
        to_x(d["x_test"]),
        d["y_test"].astype(np.int64),
        10,
        source,
    )


def _torchvision(dc: DataConfig, cls_name: str, folder: str) -> tuple:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    if not dc.verify_checksums and hasattr(cls, "train_list"):
        cls = _without_checksums(cls)
    root = Path(dc.data_dir)
    try:
        train = cls(str(root), train=True, download=dc.download)
        test = cls(str(root), train=False, download=dc.download)
    except RuntimeError as err:
        raise DatasetNotFound(
            f"{cls_name} not found (or corrupt) under {(root / folder).resolve()}: {err}\n"
            "Fetch it with `--set data.download=true` on a machine with internet (it downloads "
            f"into data.data_dir={dc.data_dir!r}), or copy torchvision's {folder}/ folder there."
        ) from err
    return train, test


def _without_checksums(cls: type) -> type:
    """CIFAR class that checks its files exist but not their MD5s (for local
    copies and test files)."""
    strip = lambda files: [[name, None] for name, _ in files]  # noqa: E731
    return type(
        cls.__name__,
        (cls,),
        {
            "train_list": strip(cls.train_list),
            "test_list": strip(cls.test_list),
            "meta": {**cls.meta, "md5": None},
        },
    )


def _fetched_source(dataset: str, dc: DataConfig) -> dict:
    """The stamp's provenance of a fetched dataset, after the cheap check that its files
    are the ones verified. With data.download on, a missing or changed dataset is fetched
    (and verified) first."""
    if dc.download:
        stamp = fetch.fetch(dataset, dc.data_dir, log=log.info)
    else:
        stamp = _checked_stamp(dataset, dc.data_dir)
    return {
        "source": stamp["source"],
        "verified_at": stamp["verified_at"],
        "array_sha256": {name: rec["array_sha256"] for name, rec in stamp["files"].items()},
    }


def _checked_stamp(dataset: str, data_dir: str) -> dict:
    stamp_file = fetch.stamp_path(dataset, data_dir).resolve()
    command = f"infcop data fetch {dataset} --data-dir {shlex.quote(str(Path(data_dir).resolve()))}"
    try:
        stamp = fetch.verify_stamp(dataset, data_dir)
    except fetch.IntegrityError as err:
        raise fetch.IntegrityError(
            err.path,
            f"{err.problem}\nRun `{command}`: it re-hashes the files, "
            "and fetches a fresh copy if their content changed.",
        ) from err
    if stamp is not None:
        return stamp
    if any((stamp_file.parent / name).exists() for name in fetch.FILES):
        raise DatasetNotFound(
            f"{stamp_file.parent} holds {dataset} files that were never verified (no "
            f"{stamp_file.name}).\nRun `{command}`: it verifies and stamps files already in place."
        )
    raise DatasetNotFound(
        f"{dataset} is not in {stamp_file.parent}.\nFetch it with `{command}` "
        "(or let the loader fetch it: --set data.download=true)."
    )


def _mnist_like(dataset: str) -> Callable[[DataConfig], RawDataset]:
    def load(dc: DataConfig) -> RawDataset:
        """The stamped IDX files of torchvision's layout, read directly (importing torchvision alone
        takes seconds, paid by every job of a study)."""
        source = _fetched_source(dataset, dc)
        raw = fetch.raw_dir(dataset, dc.data_dir)
        arrays = {name: fetch.read_idx(raw / name) for name in fetch.FILES}
        fetch.check_labels(raw, arrays)
        x, y = (
            {split: arrays[files[split]] for split in ("train", "test")}
            for files in (fetch.IMAGES, fetch.LABELS)
        )
        return RawDataset(
            x["train"][:, None],
            y["train"].astype(np.int64),
            x["test"][:, None],
            y["test"].astype(np.int64),
            10,
            source,
        )

    return load


def _cifar(cls_name: str, folder: str, num_classes: int) -> Callable[[DataConfig], RawDataset]:
    def load(dc: DataConfig) -> RawDataset:
        train, test = _torchvision(dc, cls_name, folder)
        # NHWC uint8 -> NCHW
        as_x = lambda a: np.ascontiguousarray(a.transpose(0, 3, 1, 2))  # noqa: E731
        source = {"source": f"torchvision: {cls_name}", "md5_checked": dc.verify_checksums}
        return RawDataset(
            as_x(train.data),
            np.asarray(train.targets, np.int64),
            as_x(test.data),
            np.asarray(test.targets, np.int64),
            num_classes,
            source,
        )

    return load


@register_dataset("tiny_imagenet")
def _tiny_imagenet(dc: DataConfig) -> RawDataset:
    """Tiny-ImageNet-200 from its standard layout under data.data_dir; the labelled val/ split
    is the test split."""
    root = (Path(dc.data_dir) / tiny_imagenet.FOLDER).resolve()
    try:
        a = tiny_imagenet.read_tiny_imagenet(dc.data_dir)
    except FileNotFoundError as err:
        raise DatasetNotFound(
            f"Tiny-ImageNet-200 not found under {root}: {err}.\nDownload tiny-imagenet-200.zip "
            "(http://cs231n.stanford.edu/tiny-imagenet-200.zip) and unzip it into "
            f"data.data_dir={dc.data_dir!r}, so that {root}/train, {root}/val and "
            f"{root}/wnids.txt exist."
        ) from err
    return RawDataset(
        a["x_train"],
        a["y_train"],
        a["x_test"],
        a["y_test"],
        tiny_imagenet.NUM_CLASSES,
        {"source": f"user-supplied: {root}", "test_split": "val/ (labelled)"},
    )


register_dataset("mnist")(_mnist_like("mnist"))
register_dataset("fashion_mnist")(_mnist_like("fashion_mnist"))
register_dataset("cifar10")(_cifar("CIFAR10", "cifar-10-batches-py", 10))
register_dataset("cifar100")(_cifar("CIFAR100", "cifar-100-python", 100))


# ------------------------------------------------------------- sizes, known before any file is read
@dataclass(frozen=True)
class DatasetSize:
    """A dataset's native image shape, classes and official split sizes (what
    `infcop plan` prices)."""

    shape: tuple[int, ...]
    num_classes: int
    n_train: int  # the whole training split, before the validation share is carved out
    n_test: int


DATASET_SIZES: dict[str, Callable[[DataConfig], DatasetSize]] = {
    "digits": lambda dc: DatasetSize((1, 8, 8), 10, 1797 - 1797 // 5, 1797 // 5),
    "mnist1d": lambda dc: DatasetSize(
        (1, 40),
        10,
        int(dc.mnist1d_samples * 0.8),
        dc.mnist1d_samples - int(dc.mnist1d_samples * 0.8),
    ),
    "mnist": lambda dc: DatasetSize((1, 28, 28), 10, 60000, 10000),
    "fashion_mnist": lambda dc: DatasetSize((1, 28, 28), 10, 60000, 10000),
    "cifar10": lambda dc: DatasetSize((3, 32, 32), 10, 50000, 10000),
    "cifar100": lambda dc: DatasetSize((3, 32, 32), 100, 50000, 10000),
    "tiny_imagenet": lambda dc: DatasetSize((3, 64, 64), 200, 100000, 10000),
}


def split_sizes(dc: DataConfig) -> tuple[tuple[int, ...], int, int, int, int]:
    """(input shape as the model sees it, classes, n_train, n_val, n_test) of a dataset at its
    official size, with `data.channels`, `data.resize` and the validation split applied as
    `load_splits` does."""
    if dc.dataset not in DATASET_SIZES:
        raise KeyError(
            f"no known size for dataset {dc.dataset!r}; add it to infcop.core.data.DATASET_SIZES"
        )
    size = DATASET_SIZES[dc.dataset](dc)
    channels = size.shape[0] * _channel_repeat(dc, size.shape[0])
    spatial = (dc.resize,) * (len(size.shape) - 1) if dc.resize else size.shape[1:]
    n_train, n_val = _train_val_sizes(dc, size.n_train)
    return (channels, *spatial), size.num_classes, n_train, n_val, size.n_test


def _train_val_sizes(dc: DataConfig, n_official: int) -> tuple[int, int]:
    """(train, validation) examples drawn from `n_official` training examples under
    `data.train_subset` and `data.val_fraction`; an error naming the key when the subset is larger
    than the split or leaves no training example."""
    n = n_official
    if dc.train_subset:
        if dc.train_subset > n_official:
            raise ConfigError(
                f"data.train_subset: {dc.train_subset} examples asked for, but the {dc.dataset} "
                f"training split has {n_official}; use at most {n_official}, or 0 for all"
            )
        n = dc.train_subset
    n_val = max(1, int(round(dc.val_fraction * n)))
    if n - n_val < 1:
        raise ConfigError(
            f"data.train_subset: {n} examples leave none for training after the validation share "
            f"({n_val}, data.val_fraction {dc.val_fraction}); keep more examples"
        )
    return n - n_val, n_val


# ---------------------------------------------------------------- splits on the device
@dataclass
class Splits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    augment: bool
    resize: int
    source: dict = field(default_factory=dict)  # RawDataset.source

    @property
    def input_shape(self) -> tuple[int, ...]:
        shape = tuple(self.x_train.shape[1:])
        return (shape[0], self.resize, self.resize) if self.resize else shape

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-len(self.y_train) // batch_size)


def content_sha256(raw: RawDataset) -> str:
    """Fingerprint of the data a run trains and tests on (the arrays as loaded, before any split):
    records carry it, and a dense run is reused only by runs whose data has the same one."""
    h = hashlib.sha256()
    for a in (raw.x_train, raw.y_train, raw.x_test, raw.y_test):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_raw(raw: RawDataset, dc: DataConfig) -> None:
    where = f"data.dataset {dc.dataset} (data.data_dir {dc.data_dir})"
    for split, x, y in (("training", raw.x_train, raw.y_train), ("test", raw.x_test, raw.y_test)):
        if len(x) != len(y) or len(y) == 0:
            raise BadDataset(
                f"{where}: the {split} split has {len(x)} inputs and {len(y)} labels; "
                "re-fetch or replace its files"
            )
        if y.min() < 0 or y.max() >= raw.num_classes:
            raise BadDataset(
                f"{where}: a {split} label is {y.min() if y.min() < 0 else y.max()}, outside the "
                f"classes 0-{raw.num_classes - 1}; re-fetch or replace its files"
            )


SPLIT_TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
CACHE_FORMAT = (
    3  # bump whenever `_standardised_splits` changes what it computes, or the cache's layout
)
CACHE_HEADROOM = 256 * 2**20  # free bytes the dataset's filesystem keeps after a cache is written


def split_cache_file(dc: DataConfig, source: dict) -> Path:
    """Where the splits of a fetched dataset are cached, named by everything they are computed from:
    the verified files' content hashes (from the stamp, cheaply checked) and the split settings."""
    key = json.dumps(
        {
            "format": CACHE_FORMAT,
            "dataset": dc.dataset,
            "array_sha256": source["array_sha256"],
            "split_seed": dc.split_seed,
            "val_fraction": dc.val_fraction,
            "standardize": dc.standardize,
            "channels": dc.channels,
            **({"train_subset": dc.train_subset} if dc.train_subset else {}),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return fetch.raw_dir(dc.dataset, dc.data_dir).parent / "splits" / f"{digest}.pt"


def load_splits(dc: DataConfig, device: torch.device | str = "cpu") -> Splits:
    """Load a registered dataset, carve a seeded validation split, standardise, move to `device`.
    Fetched datasets go through the split cache; the provenance is always the current stamp's."""
    source = _fetched_source(dc.dataset, dc) if dc.dataset in fetch.FETCHABLE else None
    cache = split_cache_file(dc, source) if source else None
    saved = _read_split_cache(cache) if cache is not None else None
    if saved is not None:
        tensors, num_classes = [saved[name] for name in SPLIT_TENSORS], saved["num_classes"]
        source = {**source, "content_sha256": saved["content_sha256"]}  # verified with the tensors
    else:
        splits = _standardised_splits(dc)
        tensors, num_classes, source = (
            [getattr(splits, n) for n in SPLIT_TENSORS],
            splits.num_classes,
            splits.source,
        )
        if cache is not None:
            _write_split_cache(
                cache,
                {
                    **dict(zip(SPLIT_TENSORS, tensors)),
                    "num_classes": num_classes,
                    "content_sha256": source["content_sha256"],
                },
            )
    return Splits(*(t.to(device) for t in tensors), num_classes, dc.augment, dc.resize, source)


def _cache_checksum(saved: dict) -> str:
    """sha256 of everything a split cache holds: its tensors, the class count
    and the fingerprint."""
    return hashlib.sha256(
        f"{tensors_sha256({n: saved[n] for n in SPLIT_TENSORS})};{saved['num_classes']};"
        f"{saved['content_sha256']}".encode()
    ).hexdigest()


def _read_split_cache(cache: Path) -> dict | None:
    """The cached splits if the file is there, readable and passes its checksum;
    else None (rebuilt)."""
    if not cache.exists():
        return None
    try:
        saved = torch.load(cache, mmap=True, weights_only=True)
        if saved.get("sha256") == _cache_checksum(saved):
            return saved
        problem = "fails its checksum (its content changed since it was written)"
    except Exception as err:  # noqa: BLE001 - any unreadable cache is rebuilt, never trusted
        problem = f"is unreadable ({err!r})"
    log.warning(
        "split cache %s %s; rebuilding the splits from the verified dataset files", cache, problem
    )
    return None


def _write_split_cache(cache: Path, saved: dict) -> None:
    """Write the cache where it can be: a read-only or nearly full dataset directory gets a warning
    and no cache (every job then computes its splits), never an error."""
    size = sum(saved[n].numel() * saved[n].element_size() for n in SPLIT_TENSORS)
    try:
        free = shutil.disk_usage(
            cache.parent if cache.parent.is_dir() else cache.parent.parent
        ).free
        if free < size + CACHE_HEADROOM:
            raise OSError(
                f"{free / 2**20:.0f} MiB free, {(size + CACHE_HEADROOM) / 2**20:.0f} MiB needed"
            )
        atomic_torch_save({**saved, "sha256": _cache_checksum(saved)}, cache)
    except (OSError, RuntimeError) as err:  # torch reports a failed write as a RuntimeError
        log.warning(
            "split cache %s not written (%s); the splits are computed from the dataset files in "
            "every job, which costs seconds each",
            cache,
            err,
        )


def _standardised_splits(dc: DataConfig) -> Splits:
    """The registered dataset's seeded validation split, standardised by training-part statistics
    (`data.standardize`), grey channels repeated (`data.channels`); on the CPU."""
    raw = DATASETS[dc.dataset](dc)
    check_raw(raw, dc)
    x = raw.x_train.astype(np.float32)
    x_test = raw.x_test.astype(np.float32)
    if raw.x_train.dtype == np.uint8:
        x, x_test = x / 255.0, x_test / 255.0
    order = np.random.default_rng(dc.split_seed).permutation(len(raw.y_train))
    n_train, n_val = _train_val_sizes(dc, len(order))
    val, train = order[:n_val], np.sort(order[n_val : n_val + n_train])
    # per-channel statistics of the training part only
    axes = (0,) + tuple(range(2, x.ndim))
    mean = x[train].mean(axis=axes, keepdims=True) if dc.standardize else 0.0
    std = x[train].std(axis=axes, keepdims=True) + 1e-8 if dc.standardize else 1.0
    repeat = _channel_repeat(dc, x.shape[1])

    def norm(a: np.ndarray) -> torch.Tensor:
        a = (a - mean) / std
        return torch.from_numpy(
            np.ascontiguousarray(np.repeat(a, repeat, axis=1) if repeat > 1 else a)
        )

    label = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return Splits(
        norm(x[train]),
        label(raw.y_train[train]),
        norm(x[val]),
        label(raw.y_train[val]),
        norm(x_test),
        label(raw.y_test),
        raw.num_classes,
        dc.augment,
        dc.resize,
        {**raw.source, "content_sha256": content_sha256(raw)},
    )


def _channel_repeat(dc: DataConfig, channels: int) -> int:
    """How often each channel is repeated: 3 for grey images under `data.channels: 3`, else 1."""
    if dc.channels == 0 or dc.channels == channels:
        return 1
    if channels == 1:
        return dc.channels
    raise ConfigError(
        f"data.channels: {dc.channels} asked for, but {dc.dataset} images have {channels} "
        "channels; only grey (1-channel) images can be repeated. Set data.channels: 0 for "
        "this dataset"
    )


# ---------------------------------------------------------------- the generator streams of a run
# Every random draw of a run comes from a generator of its own stream, derived from the seed alone
# (so nothing but the seed needs saving to resume). The streams, declared here once:
#   data order  (seed, level, epoch), epoch >= 1    each epoch of every level
#                                                   (dense training: level 0)
#   probe set   (seed, PROBE_STREAM)                 the flow criteria's probe, once per run
#   pruning     level_draw_generator(..., PRUNE_STREAM)   a random pruner's draw at a level
#   reset       level_draw_generator(..., RESET_STREAM)   a fresh initialisation drawn at a level
# numpy's SeedSequence pads entropy with zero words, so (s, l, e) is (s, l, e, 0) and the probe's
# (s, 7) is (s, 7, 0, 0), an epoch 0 that data order never draws.
PROBE_STREAM, PRUNE_STREAM, RESET_STREAM = 7, 11, 13


def epoch_generator(seed: int, *stream: int) -> torch.Generator:
    """A CPU generator for one (seed, level, epoch, ...) stream: data order needs
    no saved RNG state."""
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([seed, *stream]).generate_state(1)[0]))
    return g


def device_generator(g: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator on `device` seeded by one draw of the CPU generator `g`: the draws that follow
    happen on the device, so nothing waits for the host."""
    seed = int(torch.randint(0, 2**62, (1,), generator=g))
    return torch.Generator(device=device).manual_seed(seed)


def level_draw_generator(seed: int, level: int, tag: int, cap: int) -> torch.Generator:
    """The generator of a level's pruning or reset draw (`tag`: PRUNE_STREAM or RESET_STREAM), for a
    level that trains at most `cap` epochs. Tagged (seed, level, 0, tag): no data-order stream has a
    fourth word, so none can equal it. Where the cap stays below the tag the stream is (seed, level,
    tag), the one runs drew before the tag had a word of its own: the data order of epoch `tag` of
    that level, which such a level never draws, so its records stay as they were."""
    return epoch_generator(seed, level, tag) if cap < tag else epoch_generator(seed, level, 0, tag)


def random_crop_flip(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Per-sample random translation by up to `pad` pixels (zero padding) and horizontal flip.

    The offsets and flips are drawn where `x` lives: from `g` itself when it is on that
    device (CPU), else from a device generator seeded by `g`, so a GPU step copies
    nothing from the host."""
    n, _, h, w = x.shape
    if g.device != x.device:
        g = device_generator(g, x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=x.device)
    flip = torch.rand(n, generator=g, device=x.device) < 0.5
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = dx[:, None] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, :]
    out = padded.permute(0, 2, 3, 1)[torch.arange(n, device=x.device)[:, None, None], rows, cols]
    return out.permute(0, 3, 1, 2).contiguous()


def prepare_batch(x: torch.Tensor, splits: Splits, g: torch.Generator | None) -> torch.Tensor:
    if g is not None and splits.augment:
        x = random_crop_flip(x, g)
    if splits.resize and x.shape[-1] != splits.resize:
        x = F.interpolate(
            x, size=(splits.resize, splits.resize), mode="bilinear", align_corners=False
        )
    return x


def train_batches(
    splits: Splits, batch_size: int, g: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    order = torch.randperm(len(splits.y_train), generator=g).to(splits.y_train.device)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield prepare_batch(splits.x_train[idx], splits, g), splits.y_train[idx]


def eval_batches(
    x: torch.Tensor, y: torch.Tensor, splits: Splits, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(y), batch_size):
        yield (
            prepare_batch(x[start : start + batch_size], splits, None),
            y[start : start + batch_size],
        )
