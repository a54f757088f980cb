"""Every dataset, the download-backed ones through tiny files in their real on-disk formats."""
import pickle
import struct

import numpy as np
import pytest
import torch

from infcop.config import DataConfig
from infcop.core.data import DatasetNotFound, epoch_generator, load_splits, random_crop_flip, train_batches


def write_idx(path, array: np.ndarray) -> None:
    """IDX format: magic (0,0,dtype=0x08 ubyte,ndim), big-endian dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        f.write(struct.pack(">" + "I" * array.ndim, *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def fake_mnist(root, folder, n_train=40, n_test=20):
    rng = np.random.default_rng(0)
    raw = root / folder / "raw"
    imgs = {"train": rng.integers(0, 256, (n_train, 28, 28)), "t10k": rng.integers(0, 256, (n_test, 28, 28))}
    labels = {"train": np.arange(n_train) % 10, "t10k": np.arange(n_test) % 10}
    for split in ("train", "t10k"):
        write_idx(raw / f"{split}-images-idx3-ubyte", imgs[split])
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels[split])
    return imgs, labels


def fake_cifar(root, num_classes, n_per_batch=10):
    rng = np.random.default_rng(0)
    if num_classes == 10:
        folder, files, key, meta = root / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], "labels", ("batches.meta", "label_names")
    else:
        folder, files, key, meta = root / "cifar-100-python", ["train", "test"], "fine_labels", ("meta", "fine_label_names")
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
    state = np.random.get_state()[1].copy()
    load_splits(DataConfig(dataset="mnist1d", mnist1d_samples=1000))
    assert np.array_equal(state, np.random.get_state()[1]), "mnist1d generation must not disturb numpy's global RNG"


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_from_idx_files(tmp_path, name, folder):
    imgs, labels = fake_mnist(tmp_path, folder)
    s = load_splits(DataConfig(dataset=name, data_dir=str(tmp_path), val_fraction=0.25))
    assert s.input_shape == (1, 28, 28)
    assert len(s.y_train) == 30 and len(s.y_val) == 10
    assert torch.equal(s.y_test, torch.as_tensor(labels["t10k"]))
    # the test images round-trip: undo the standardisation with the training statistics
    train = imgs["train"].astype(np.float32) / 255
    order = np.random.default_rng(0).permutation(40)
    kept = train[np.sort(order[10:])]
    expected = (imgs["t10k"] / 255 - kept.mean()) / (kept.std() + 1e-8)
    np.testing.assert_allclose(s.x_test[:, 0].numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_from_pickled_batches(tmp_path, name, classes):
    n_train_batches = fake_cifar(tmp_path, classes)
    dc = DataConfig(dataset=name, data_dir=str(tmp_path), verify_checksums=False, val_fraction=0.2)
    s = load_splits(dc)
    assert s.input_shape == (3, 32, 32) and s.num_classes == classes
    assert len(s.y_train) + len(s.y_val) == 10 * n_train_batches and len(s.y_test) == 10
    # with checksums on, torchvision rejects our tiny files as corrupt, with a clear message
    with pytest.raises(DatasetNotFound, match="not found \\(or corrupt\\)"):
        load_splits(DataConfig(dataset=name, data_dir=str(tmp_path)))


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")])
def test_missing_dataset_names_directory_and_fix(tmp_path, name, folder):
    with pytest.raises(DatasetNotFound) as err:
        load_splits(DataConfig(dataset=name, data_dir=str(tmp_path / "nothing")))
    msg = str(err.value)
    assert str((tmp_path / "nothing" / folder).resolve()) in msg and "data.download=true" in msg


def test_resize_option(tmp_path):
    fake_cifar(tmp_path, 10)
    s = load_splits(DataConfig(dataset="cifar10", data_dir=str(tmp_path), verify_checksums=False, resize=64))
    x, _ = next(train_batches(s, 4, epoch_generator(0, 0)))
    assert s.input_shape == (3, 64, 64) and x.shape == (4, 3, 64, 64)


def test_crop_flip_is_a_translation_or_mirror():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8) + 1
    g = epoch_generator(0, 1)
    out = random_crop_flip(x, g, pad=2)
    assert out.shape == x.shape
    for i in range(2):
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        candidates = [padded[:, dy:dy + 8, dx:dx + 8] for dy in range(5) for dx in range(5)]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(out[i], c) for c in candidates)


def test_data_order_depends_only_on_seed_stream():
    s = load_splits(DataConfig(dataset="digits"))
    first = lambda seed, epoch: next(train_batches(s, 32, epoch_generator(seed, 0, epoch)))[1]  # noqa: E731
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
