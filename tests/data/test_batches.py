"""BatchIterator: sizes, drop_last, seeded shuffling, dtype and no aliasing of the dataset."""
import numpy as np
import pytest

import gradflow as gf
from gradflow.data import BatchIterator
from gradflow.errors import ShapeError


def test_sizes_and_drop_last():
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    assert [len(b) for b, _ in BatchIterator(x, y, batch_size=4)] == [4, 4, 2]
    it = BatchIterator(x, y, batch_size=4, drop_last=True)
    assert len(it) == 2 and [len(b) for b, _ in it] == [4, 4]
    xb, yb = next(iter(BatchIterator(x, y, batch_size=3)))
    assert isinstance(xb, gf.Tensor) and yb.dtype == np.int64 and xb.tolist() == [[0, 1], [2, 3], [4, 5]]


def test_shuffle_is_seeded_and_covers_everything():
    y = np.arange(50)

    def epochs(seed):
        it = BatchIterator(y, batch_size=8, shuffle=True, seed=seed)
        return [np.concatenate([b.data for (b,) in it]) for _ in range(2)]

    a, b, c = epochs(1), epochs(1), epochs(2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0], a[1])
    assert sorted(a[0].tolist()) == list(range(50))


def test_seed_none_follows_manual_seed():
    y = np.arange(30)
    gf.manual_seed(4)
    first = [b.tolist() for (b,) in BatchIterator(y, batch_size=10, shuffle=True)]
    gf.manual_seed(4)
    assert first == [b.tolist() for (b,) in BatchIterator(y, batch_size=10, shuffle=True)]


def test_dtype_applies_to_floats_only_and_batches_do_not_alias():
    x = np.ones((4, 2))
    it = BatchIterator(x, np.arange(4), batch_size=4, dtype=np.float32)
    xb, yb = next(iter(it))
    assert xb.dtype == np.float32 and yb.dtype == np.int64
    xb.data[...] = 7
    assert it.arrays[0].max() == 1


def test_errors():
    with pytest.raises(ShapeError, match=r"share their first dimension, got shapes \(3, 2\), \(4,\)"):
        BatchIterator(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="batch_size must be positive"):
        BatchIterator(np.zeros(3), batch_size=0)
