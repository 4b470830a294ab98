"""Dataset loaders: the bundled digits, MNIST-style IDX folders, and user ``.npz`` / ``.csv`` files.

Every loader returns a ``Dataset``: float features (N, F), integer labels (N,), already split
into train and test. Files that bring no split of their own are split by ``train_test_split``
with a fixed seed, so the test set is the same whatever seed the training uses. Every loader
checks its input (``check_arrays``) and raises ``DatasetError`` with one clear sentence.
"""
from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checkpoint_io import read_npz
from ..errors import GradflowError
from .idx import IDXFormatError, read_idx

SPLIT_SEED = 0
TEST_FRACTION = 0.2
_DATASET_DIR = Path(__file__).resolve().parent.parent / "datasets"


class DatasetError(GradflowError, ValueError):
    """A dataset is missing, malformed, or holds values a model cannot train on."""


@dataclass
class Dataset:
    """Train and test arrays plus what a model needs to know about them."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    # "image": pixels on one scale, standardized with one mean/std; "table": one per column.
    kind: str = "table"
    info: dict = field(default_factory=dict)

    @property
    def n_features(self):
        return self.x_train.shape[1]

    def __repr__(self):
        return (f"Dataset({self.name!r}: {len(self.x_train)} train / {len(self.x_test)} test, "
                f"{self.n_features} features, {self.n_classes} classes)")


def train_test_split(x, y, test_fraction=TEST_FRACTION, seed=SPLIT_SEED, where=None):
    """A seeded random split: ``(x_train, y_train, x_test, y_test)``; ``where`` names the data in errors."""
    n = len(x)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = max(1, int(round(n * test_fraction)))
    if n - n_test < 1:
        raise DatasetError(f"{where + ': ' if where else ''}{n} sample{'s are' if n != 1 else ' is'} too few to "
                           "split into train and test sets (at least 2 rows are needed)")
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def check_arrays(x, y, where, n_classes=None):
    """Features finite and 2-D, labels non-negative integers (below ``n_classes`` if given).

    Returns ``(features as float, labels as int64)``.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 2:
        raise DatasetError(f"{where}: features must have shape (samples, features...), got {x.shape}")
    x = x.reshape(len(x), -1)
    if y.ndim != 1 or len(y) != len(x):
        raise DatasetError(f"{where}: labels of shape {y.shape} do not match {len(x)} samples (need ({len(x)},))")
    if len(x) == 0:
        raise DatasetError(f"{where}: no samples")
    if x.dtype.kind not in "fiub":
        raise DatasetError(f"{where}: features must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float64 if x.dtype == np.float64 else np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DatasetError(f"{where}: {int(bad.sum())} features are NaN or infinite "
                           f"(first at sample {row}, feature {col})")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise DatasetError(f"{where}: labels must be integer class indices, got non-integer values")
    elif y.dtype.kind not in "iub":
        raise DatasetError(f"{where}: labels must be integer class indices, got dtype {y.dtype}")
    # Bounds on the labels as stored: uint64 values of 2**63 and above would wrap to negative
    # numbers in int64 and be reported as labels the file does not hold.
    low, high = int(y.min()), int(y.max())
    if low < 0:
        raise DatasetError(f"{where}: labels must be >= 0, found {low}")
    if high > np.iinfo(np.int64).max:
        raise DatasetError(f"{where}: label {high} is too large for a class index (labels must be 0..C-1)")
    y = y.astype(np.int64)
    if n_classes is not None and high >= n_classes:
        raise DatasetError(f"{where}: label {high} is out of range for {n_classes} classes (labels must lie "
                           f"in [0, {n_classes}))")
    return x, y


def _finish(name, x_train, y_train, x_test, y_test, kind, where, n_classes=None, **info):
    x_train, y_train = check_arrays(x_train, y_train, f"{where} (train)", n_classes)
    x_test, y_test = check_arrays(x_test, y_test, f"{where} (test)", n_classes)
    if x_train.shape[1] != x_test.shape[1]:
        raise DatasetError(f"{where}: train has {x_train.shape[1]} features but test has {x_test.shape[1]}")
    if n_classes is None:
        n_classes = int(max(y_train.max(), y_test.max())) + 1
        if n_classes > 100_000:
            raise DatasetError(f"{where}: largest label {n_classes - 1} implies more than 100000 classes; "
                               "labels must be class indices 0..C-1")
    return Dataset(name, x_train, y_train, x_test, y_test, n_classes, kind, info)


def load_digits(test_fraction=TEST_FRACTION):
    """The bundled 8x8 handwritten digits (1,797 images, UCI test set, CC BY 4.0; see datasets/).

    Pixels are counts 0..16; 20% of the images (fixed seed) form the test set.

    >>> from gradflow.data import load_digits
    >>> load_digits()
    Dataset('digits': 1438 train / 359 test, 64 features, 10 classes)
    """
    with gzip.open(_DATASET_DIR / "digits.csv.gz", "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x, y = table[:, :-1], table[:, -1].astype(np.int64)
    split = train_test_split(x, y, test_fraction)
    return _finish("digits", *split, kind="image", where="bundled digits", n_classes=10, image_shape=(8, 8))


_IDX_NAMES = {"x_train": "train-images", "y_train": "train-labels", "x_test": "t10k-images",
              "y_test": "t10k-labels"}


def _find_idx(folder: Path, stem: str):
    # Mirrors spell the files "train-images-idx3-ubyte" or "train-images.idx3-ubyte", gzipped or not.
    for candidate in sorted(folder.iterdir()):
        name = candidate.name.replace(".", "-")
        if name.startswith(stem + "-idx") and candidate.is_file():
            return candidate
    return None


def load_mnist(folder, name="mnist"):
    """MNIST or Fashion-MNIST from a folder with the four standard IDX files (``.gz`` or not).

    Uses the files' own train (60,000) / test (10,000) split; images become 784 features.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{name}: dataset folder {str(folder)!r} does not exist")
    arrays = {}
    for key, stem in _IDX_NAMES.items():
        path = _find_idx(folder, stem)
        if path is None:
            raise DatasetError(f"{name}: no {stem}-idx*-ubyte[.gz] file in {str(folder)!r} (an MNIST folder "
                               "holds train-images, train-labels, t10k-images and t10k-labels IDX files)")
        try:
            arrays[key] = read_idx(path)
        except IDXFormatError as exc:
            raise DatasetError(str(exc)) from None
    for part in ("train", "test"):
        images, labels = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if len(images) != len(labels):
            raise DatasetError(f"{name}: {len(images)} {part} images but {len(labels)} {part} labels")
    image_shape = arrays["x_train"].shape[1:]
    return _finish(name, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                   kind="image", where=f"{name} in {folder}", image_shape=image_shape)


def load_npz(path, test_fraction=TEST_FRACTION):
    """Arrays ``x_train, y_train, x_test, y_test`` or ``x, y`` (split with a fixed seed) from a .npz."""
    path = Path(path)
    arrays = read_npz(path, DatasetError, "dataset file")
    scalars = sorted(name for name, array in arrays.items() if array.ndim == 0)
    if scalars:
        raise DatasetError(f"{path}: arrays {scalars} are 0-d scalars; a dataset needs one row per sample")
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        parts = (arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"])
    elif {"x", "y"} <= arrays.keys():
        x, y = arrays["x"], arrays["y"]
        if len(x) != len(y):
            raise DatasetError(f"{path}: x has {len(x)} samples but y has {len(y)}")
        parts = train_test_split(x, y, test_fraction, where=str(path))
    else:
        raise DatasetError(f"{path}: expected arrays x_train, y_train, x_test, y_test or x, y; found "
                           f"{sorted(arrays)}")
    return _finish(path.stem, *parts, kind="table", where=str(path))


def load_csv(path, label_column=-1, test_fraction=TEST_FRACTION):
    """A numeric CSV (an optional header row is skipped); the label is the last column by default."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {str(path)!r} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path}: not a readable {'gzip-compressed ' if opener is gzip.open else ''}"
                           f"CSV file ({exc})") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a text CSV file (it holds bytes that are not UTF-8)") from None
    if not lines:
        raise DatasetError(f"{path}: empty file")
    try:
        [float(v) for v in lines[0].split(",")]
        start = 0
    except ValueError:
        start = 1  # the first row is a header
    try:
        table = np.loadtxt(lines[start:], delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DatasetError(f"{path}: not a numeric CSV table ({exc})") from None
    if table.shape[1] < 2:
        raise DatasetError(f"{path}: needs at least one feature column and a label column")
    y = table[:, label_column]
    x = np.delete(table, label_column, axis=1).astype(np.float32)
    if not np.isfinite(x).all():
        check_arrays(x, np.zeros(len(x), np.int64), str(path))
    parts = train_test_split(x, y, test_fraction, where=str(path))
    return _finish(path.name.split(".")[0], *parts, kind="table", where=str(path))


def load_dataset(spec):
    """Load by name or path: ``digits``, ``mnist:DIR``, ``fashion-mnist:DIR``, an IDX folder, ``.npz``, ``.csv``."""
    spec = str(spec)
    if spec == "digits":
        return load_digits()
    kind, sep, rest = spec.partition(":")
    # `~` is expanded here: the shell leaves it alone after `mnist:` or `--dataset=`.
    if sep and kind in ("mnist", "fashion-mnist", "fashion_mnist"):
        return load_mnist(Path(rest).expanduser(), name=kind.replace("_", "-"))
    if kind in ("mnist", "fashion-mnist") and not sep:
        raise DatasetError(f"dataset {spec!r} needs a folder of IDX files: --dataset {spec}:PATH")
    path = Path(spec).expanduser()
    if path.is_dir():
        return load_mnist(path, name=path.name or "idx")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".npz"]:
        return load_npz(path)
    if ".csv" in suffixes[-2:]:
        return load_csv(path)
    if not path.exists():
        raise DatasetError(f"dataset {spec!r} not found: give 'digits', 'mnist:DIR', 'fashion-mnist:DIR', "
                           "a folder of IDX files, or a .npz/.csv file")
    raise DatasetError(f"dataset {spec!r}: unknown file type (expected .npz or .csv)")


class Standardizer:
    """``(x - mean) / std`` with statistics from the training features.

    Images share one mean and std across pixels (a pixel that never lights up in training must
    not get a huge scale); tables get one per column. Constant columns are left unscaled.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, np.float64)
        self.std = np.asarray(std, np.float64)

    @classmethod
    def fit(cls, x, per_feature):
        x = np.asarray(x, np.float64)
        if per_feature:
            mean, std = x.mean(axis=0), x.std(axis=0)
        else:
            mean, std = np.full(x.shape[1], x.mean()), np.full(x.shape[1], x.std())
        std = np.where(std > 1e-12, std, 1.0)
        return cls(mean, std)

    def __call__(self, x, dtype=np.float32):
        return ((np.asarray(x, np.float64) - self.mean) / self.std).astype(dtype)
