"""Every dataset, the download-backed ones through tiny files in their real on-disk formats."""

import pickle

import numpy as np
import pytest
import torch

from infcop.foundations.config import ConfigError, DataConfig
from infcop.core import fetch as F
from infcop.core import data as D
from infcop.core.data import (
    DatasetNotFound,
    epoch_generator,
    load_splits,
    random_crop_flip,
    train_batches,
)
from helpers.idx_files import fake_mnist, stamped_mnist


def without_fingerprint(source: dict) -> dict:
    """A split's source, less the content hash every load adds (tests/test_faults.py
    checks what it does)."""
    assert len(source["content_sha256"]) == 64
    return {k: v for k, v in source.items() if k != "content_sha256"}


def fake_cifar(root, num_classes, n_per_batch=10):
    rng = np.random.default_rng(0)
    if num_classes == 10:
        folder, files, key, meta = (
            root / "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
            "labels",
            ("batches.meta", "label_names"),
        )
    else:
        folder, files, key, meta = (
            root / "cifar-100-python",
            ["train", "test"],
            "fine_labels",
            ("meta", "fine_label_names"),
        )
    folder.mkdir(parents=True)
    for name in files:
        data = rng.integers(0, 256, (n_per_batch, 3 * 32 * 32), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, key: list(rng.integers(0, num_classes, n_per_batch))}, f)
    with open(folder / meta[0], "wb") as f:
        pickle.dump({meta[1]: [f"c{i}" for i in range(num_classes)]}, f)
    return len(files) - 1 if num_classes == 10 else 1


def test_digits_splits():
    s = load_splits(DataConfig(dataset="digits", val_fraction=0.1))
    assert s.input_shape == (1, 8, 8) and s.num_classes == 10
    n = len(s.y_train) + len(s.y_val) + len(s.y_test)
    assert n == 1797 and len(s.y_test) == 1797 // 5
    assert without_fingerprint(s.source) == {"source": "embedded: scikit-learn digits"}
    assert abs(len(s.y_val) - 0.1 * (1797 - 359)) <= 1
    # standardised with training statistics
    assert abs(float(s.x_train.mean())) < 1e-4 and abs(float(s.x_train.std()) - 1) < 1e-2
    # the validation split depends on split_seed, not on anything else
    s2 = load_splits(DataConfig(dataset="digits", split_seed=1))
    assert not torch.equal(s.y_val, s2.y_val)


def test_mnist1d_generated_offline():
    s = load_splits(DataConfig(dataset="mnist1d", mnist1d_samples=1000))
    assert s.input_shape == (1, 40) and s.num_classes == 10
    assert len(s.y_train) + len(s.y_val) == 800 and len(s.y_test) == 200
    assert without_fingerprint(s.source) == {
        "source": "generated: MNIST-1D",
        "samples": 1000,
        "seed": DataConfig.mnist1d_seed,
    }
    state = np.random.get_state()[1].copy()
    load_splits(DataConfig(dataset="mnist1d", mnist1d_samples=1000))
    assert np.array_equal(state, np.random.get_state()[1]), (
        "mnist1d generation must not disturb numpy's global RNG"
    )


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_like_from_idx_files(tmp_path, name, monkeypatch):
    imgs, labels, stamp = stamped_mnist(tmp_path, name, monkeypatch)
    s = load_splits(DataConfig(dataset=name, data_dir=str(tmp_path), val_fraction=0.25))
    assert without_fingerprint(s.source) == {
        "source": "already present",
        "verified_at": stamp["verified_at"],
        "array_sha256": F.EXPECTED[name],
    }
    assert s.input_shape == (1, 28, 28)
    assert len(s.y_train) == 30 and len(s.y_val) == 10
    assert torch.equal(s.y_test, torch.as_tensor(labels["t10k"]))
    # the test images round-trip: undo the standardisation with the training statistics
    train = imgs["train"].astype(np.float32) / 255
    order = np.random.default_rng(0).permutation(40)
    kept = train[np.sort(order[10:])]
    expected = (imgs["t10k"] / 255 - kept.mean()) / (kept.std() + 1e-8)
    np.testing.assert_allclose(s.x_test[:, 0].numpy(), expected, rtol=1e-4, atol=1e-4)


def test_train_subset_keeps_a_seeded_part_of_the_training_split(tmp_path, monkeypatch):
    """`data.train_subset: 20` of 40 training images: the first 20 of the split seed's
    permutation, the validation share carved from those, standardised by the 15 kept for training;
    the test split whole."""
    imgs, labels, _ = stamped_mnist(tmp_path, "mnist", monkeypatch)
    dc = DataConfig(dataset="mnist", data_dir=str(tmp_path), val_fraction=0.25, train_subset=20)
    s = load_splits(dc)
    order = np.random.default_rng(dc.split_seed).permutation(40)
    val, train = order[:5], np.sort(order[5:20])
    assert torch.equal(s.y_val, torch.as_tensor(labels["train"][val]))
    assert torch.equal(s.y_train, torch.as_tensor(labels["train"][train]))
    assert torch.equal(s.y_test, torch.as_tensor(labels["t10k"]))
    kept = imgs["train"][train].astype(np.float32) / 255
    np.testing.assert_allclose(
        s.x_train[:, 0].numpy(), (kept - kept.mean()) / (kept.std() + 1e-8), rtol=1e-4, atol=1e-4
    )
    assert D.split_sizes(dc)[2:] == (
        15,
        5,
        10000,
    )  # the official sizes `infcop plan` prices, cut the same way
    whole = DataConfig(dataset="mnist", data_dir=str(tmp_path), val_fraction=0.25)
    assert D.split_cache_file(dc, s.source) != D.split_cache_file(whole, s.source)


@pytest.mark.parametrize("subset, problem", [(41, "has 40"), (1, "leave none for training")])
def test_impossible_train_subset_names_the_key(tmp_path, monkeypatch, subset, problem):
    stamped_mnist(tmp_path, "mnist", monkeypatch)
    with pytest.raises(ConfigError, match=f"data.train_subset: .*{problem}"):
        load_splits(DataConfig(dataset="mnist", data_dir=str(tmp_path), train_subset=subset))


def _refuse_decoding(monkeypatch, name):
    def refuse(dc):
        raise AssertionError("decoded the IDX files although the split cache was valid")

    monkeypatch.setitem(D.DATASETS, name, refuse)


def test_later_loads_map_the_split_cache_instead_of_decoding(tmp_path, monkeypatch):
    stamped_mnist(tmp_path, "mnist", monkeypatch)
    dc = DataConfig(dataset="mnist", data_dir=str(tmp_path), val_fraction=0.25)
    first = load_splits(dc)
    cache = D.split_cache_file(dc, first.source)
    assert cache.exists() and cache.parent.parent == tmp_path / "MNIST"
    _refuse_decoding(monkeypatch, "mnist")
    again = load_splits(dc)
    assert all(torch.equal(getattr(first, n), getattr(again, n)) for n in D.SPLIT_TENSORS)
    assert again.source == first.source and again.num_classes == 10
    # other split settings are other tensors: another cache file, never the first one's
    other = DataConfig(dataset="mnist", data_dir=str(tmp_path), val_fraction=0.5)
    assert D.split_cache_file(other, first.source) != cache


def test_a_damaged_split_cache_is_rebuilt_from_the_files(tmp_path, monkeypatch, caplog):
    stamped_mnist(tmp_path, "mnist", monkeypatch)
    dc = DataConfig(dataset="mnist", data_dir=str(tmp_path))
    first = load_splits(dc)
    cache = D.split_cache_file(dc, first.source)
    cache.write_bytes(cache.read_bytes()[:100])
    rebuilt = load_splits(dc)
    assert "is unreadable" in caplog.text and str(cache) in caplog.text
    assert all(torch.equal(getattr(first, n), getattr(rebuilt, n)) for n in D.SPLIT_TENSORS)
    _refuse_decoding(monkeypatch, "mnist")
    load_splits(dc)  # the rebuilt cache is whole again


def test_a_file_altered_after_stamping_is_named(tmp_path, monkeypatch):
    stamped_mnist(tmp_path, "mnist", monkeypatch)
    path = F.raw_dir("mnist", tmp_path) / "t10k-images-idx3-ubyte"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(F.IntegrityError) as err:
        load_splits(DataConfig(dataset="mnist", data_dir=str(tmp_path)))
    assert err.value.path == path
    assert f"{path}: changed since it was verified" in str(err.value)
    assert f"infcop data fetch mnist --data-dir {tmp_path.resolve()}" in str(err.value)


def test_files_without_a_stamp_are_refused_with_the_fetch_command(tmp_path):
    fake_mnist(tmp_path, "MNIST")
    with pytest.raises(DatasetNotFound) as err:
        load_splits(DataConfig(dataset="mnist", data_dir=str(tmp_path)))
    msg = str(err.value)
    assert (
        f"{(tmp_path / 'MNIST' / 'raw').resolve()} holds mnist files that were never verified"
        in msg
    )
    assert (
        f"`infcop data fetch mnist --data-dir {tmp_path.resolve()}`: it verifies and stamps" in msg
    )


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_missing_fetched_dataset_gives_the_fetch_command(tmp_path, name, folder):
    with pytest.raises(DatasetNotFound) as err:
        load_splits(DataConfig(dataset=name, data_dir=str(tmp_path / "nothing")))
    msg = str(err.value)
    assert f"{name} is not in {(tmp_path / 'nothing' / folder / 'raw').resolve()}" in msg
    assert f"`infcop data fetch {name} --data-dir {(tmp_path / 'nothing').resolve()}`" in msg


def test_download_fetches_and_stamps_on_load(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    arrays = F.Arrays(
        rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        np.arange(40, dtype=np.uint8) % 10,
        rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        np.arange(20, dtype=np.uint8) % 10,
    )
    monkeypatch.setitem(
        F.EXPECTED, "mnist", {f: F.array_sha256(a) for f, a in arrays.by_file().items()}
    )
    monkeypatch.setattr(
        F, "SOURCES", (F.Source("mirror", ("mnist",), lambda dataset, scratch: arrays),)
    )
    s = load_splits(DataConfig(dataset="mnist", data_dir=str(tmp_path / "data"), download=True))
    assert (
        s.source["source"] == "mirror"
        and F.verify_stamp("mnist", tmp_path / "data")["source"] == "mirror"
    )
    assert torch.equal(s.y_test, torch.as_tensor(arrays.y_test, dtype=torch.int64))


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_from_pickled_batches(tmp_path, name, classes):
    n_train_batches = fake_cifar(tmp_path, classes)
    dc = DataConfig(dataset=name, data_dir=str(tmp_path), verify_checksums=False, val_fraction=0.2)
    s = load_splits(dc)
    assert s.input_shape == (3, 32, 32) and s.num_classes == classes
    assert len(s.y_train) + len(s.y_val) == 10 * n_train_batches and len(s.y_test) == 10
    assert without_fingerprint(s.source) == {
        "source": f"torchvision: {name.upper()}",
        "md5_checked": False,
    }
    # with checksums on, torchvision rejects our tiny files as corrupt, with a clear message
    with pytest.raises(DatasetNotFound, match="not found \\(or corrupt\\)"):
        load_splits(DataConfig(dataset=name, data_dir=str(tmp_path)))


@pytest.mark.parametrize(
    "name, folder", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")]
)
def test_missing_dataset_names_directory_and_fix(tmp_path, name, folder):
    with pytest.raises(DatasetNotFound) as err:
        load_splits(DataConfig(dataset=name, data_dir=str(tmp_path / "nothing")))
    msg = str(err.value)
    assert str((tmp_path / "nothing" / folder).resolve()) in msg and "data.download=true" in msg


def test_resize_option(tmp_path):
    fake_cifar(tmp_path, 10)
    s = load_splits(
        DataConfig(dataset="cifar10", data_dir=str(tmp_path), verify_checksums=False, resize=64)
    )
    x, _ = next(train_batches(s, 4, epoch_generator(0, 0)))
    assert s.input_shape == (3, 64, 64) and x.shape == (4, 3, 64, 64)


def test_crop_flip_is_a_translation_or_mirror():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8) + 1
    g = epoch_generator(0, 1)
    out = random_crop_flip(x, g, pad=2)
    assert out.shape == x.shape
    for i in range(2):
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        candidates = [padded[:, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(out[i], c) for c in candidates)


def test_data_order_depends_only_on_seed_stream():
    s = load_splits(DataConfig(dataset="digits"))
    first = lambda seed, epoch: next(  # noqa: E731
        train_batches(s, 32, epoch_generator(seed, 0, epoch))
    )[1]
    assert torch.equal(first(0, 1), first(0, 1))
    assert not torch.equal(first(0, 1), first(0, 2))
    assert not torch.equal(first(0, 1), first(1, 1))


def test_digits_file_matches_sklearn_loader():
    from sklearn.datasets import load_digits

    from infcop.core.data import DATASETS

    raw = DATASETS["digits"](DataConfig())
    ref = load_digits()
    x = np.concatenate([raw.x_train, raw.x_test]).reshape(len(ref.target), 64) * 16
    y = np.concatenate([raw.y_train, raw.y_test])
    order = np.lexsort(np.column_stack([x, y]).T)
    ref_order = np.lexsort(np.column_stack([ref.data, ref.target]).T)
    np.testing.assert_array_equal(x[order], ref.data[ref_order])
    np.testing.assert_array_equal(y[order], ref.target[ref_order])
