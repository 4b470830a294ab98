"""Loaders on small files made here: IDX (gz or not), npz, csv; the bundled digits; input checks."""
import gzip

import numpy as np
import pytest

from gradflow.data import (DatasetError, IDXFormatError, Standardizer, load_csv, load_dataset, load_digits,
                           load_mnist, load_npz, read_idx, train_test_split, write_idx)


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "float32", "float64"])
def test_idx_round_trip(tmp_path, name, dtype):
    array = (np.arange(24).reshape(2, 3, 4) * 3).astype(dtype)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == array.dtype and np.array_equal(back, array)


def test_idx_truncated_and_bad_magic(tmp_path):
    write_idx(tmp_path / "x.idx", np.zeros((10, 4), np.uint8))
    raw = (tmp_path / "x.idx").read_bytes()
    (tmp_path / "short.idx").write_bytes(raw[:-5])
    with pytest.raises(IDXFormatError, match=r"shape \(10, 4\).*truncated"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "junk.idx").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(IDXFormatError, match="not an IDX file"):
        read_idx(tmp_path / "junk.idx")
    (tmp_path / "cut.idx.gz").write_bytes(gzip.compress(raw)[:-12])
    with pytest.raises(IDXFormatError, match="cannot read"):
        read_idx(tmp_path / "cut.idx.gz")


def make_mnist(folder, gz=True, n_train=20, n_test=8):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8))
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n_train, dtype=np.uint8))
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", np.arange(n_test, dtype=np.uint8) % 10)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_folder(tmp_path, gz):
    make_mnist(tmp_path, gz)
    data = load_mnist(tmp_path)
    assert data.x_train.shape == (20, 784) and data.x_test.shape == (8, 784)
    assert data.n_classes == 10 and data.kind == "image" and data.y_test.tolist() == list(range(8))
    assert load_dataset(f"fashion-mnist:{tmp_path}").name == "fashion-mnist"
    assert load_dataset(str(tmp_path)).x_train.shape == (20, 784)


def test_mnist_missing_file_and_count_mismatch(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="no t10k-labels-idx"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match="8 test images but 5 test labels"):
        load_mnist(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        load_mnist(tmp_path / "nope")


def test_npz_layouts(tmp_path):
    x, y = np.random.default_rng(0).standard_normal((50, 3)), np.arange(50) % 3
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    data = load_npz(tmp_path / "xy.npz")
    assert len(data.x_train) == 40 and len(data.x_test) == 10 and data.n_classes == 3
    np.savez(tmp_path / "split.npz", x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    data = load_dataset(str(tmp_path / "split.npz"))
    assert np.array_equal(data.x_test, x[30:].astype(np.float64)) and data.n_features == 3
    np.savez(tmp_path / "other.npz", features=x)
    with pytest.raises(DatasetError, match=r"expected arrays .* found \['features'\]"):
        load_npz(tmp_path / "other.npz")


def test_csv_with_header_and_label_column(tmp_path):
    rows = ["a,b,label"] + [f"{i},{i * 0.5},{i % 2}" for i in range(10)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    data = load_dataset(str(tmp_path / "t.csv"))
    assert data.n_features == 2 and data.n_classes == 2 and len(data.x_train) + len(data.x_test) == 10
    (tmp_path / "bad.csv").write_text("1,2,0\n3,x,1\n")
    with pytest.raises(DatasetError, match="not a numeric CSV"):
        load_csv(tmp_path / "bad.csv")


@pytest.mark.parametrize("x, y, message", [
    (np.array([[0.0, np.nan], [1, 2]] * 5), np.zeros(10, int), "NaN or infinite.*sample 0, feature 1"),
    (np.array([[0.0, np.inf], [1, 2]] * 5), np.zeros(10, int), "NaN or infinite"),
    (np.ones((10, 2)), np.array([0, 1, -1, 0, 1, 0, 1, 0, 1, 0]), "labels must be >= 0, found -1"),
    (np.ones((10, 2)), np.full(10, 0.5), "integer class indices"),
    (np.ones((10, 2)), np.zeros(9, int), "x has 10 samples but y has 9"),
])
def test_bad_input_is_one_clear_error(tmp_path, x, y, message):
    np.savez(tmp_path / "d.npz", x=x, y=y)
    with pytest.raises(DatasetError, match=message):
        load_npz(tmp_path / "d.npz")


def test_missing_dataset_path():
    with pytest.raises(DatasetError, match="not found"):
        load_dataset("/no/such/file.npz".replace(".npz", ""))
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("/no/such/file.npz")
    with pytest.raises(DatasetError, match="needs a folder"):
        load_dataset("mnist")


def test_digits_bundled_and_split_fixed():
    a, b = load_digits(), load_digits()
    assert a.x_train.shape == (1438, 64) and a.x_test.shape == (359, 64) and a.n_classes == 10
    assert a.x_train.min() == 0 and a.x_train.max() == 16
    assert np.array_equal(a.y_test, b.y_test) and np.array_equal(a.x_train, b.x_train)
    assert sorted(set(a.y_train.tolist())) == list(range(10))


def test_train_test_split_seeded():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    first, second = train_test_split(x, y, 0.3, seed=1), train_test_split(x, y, 0.3, seed=1)
    assert all(np.array_equal(p, q) for p, q in zip(first, second))
    assert sorted(first[1].tolist() + first[3].tolist()) == list(range(10)) and len(first[3]) == 3


def test_standardizer():
    x = np.array([[0.0, 10.0, 5.0], [2.0, 30.0, 5.0]])
    per_column = Standardizer.fit(x, per_feature=True)(x, np.float64)
    np.testing.assert_allclose(per_column, [[-1, -1, 0], [1, 1, 0]])
    shared = Standardizer.fit(x, per_feature=False)
    assert np.all(shared.mean == x.mean()) and np.all(shared.std == x.std())
