"""BatchIterator: minibatches over in-memory arrays, shuffled reproducibly, moved to a device."""
from __future__ import annotations

import math

import numpy as np

from .. import creation
from ..backends import NUMPY, for_device, of_array, resolve as resolve_device
from ..errors import ShapeError
from ..tensor import Tensor


def _host(array):
    if isinstance(array, Tensor):
        return array.numpy()
    try:
        return of_array(array).to_numpy(array)
    except Exception:  # lists and other array-likes
        return np.asarray(array)


class BatchIterator:
    """Iterate ``(x_batch, y_batch)`` Tensors over arrays that share their first dimension.

    With ``shuffle`` every pass draws a new order from a generator seeded once by ``seed`` (or by
    gradflow's generator when ``seed`` is None, so ``gradflow.manual_seed`` governs it): the
    sequence of epochs is the same for the same seed. ``drop_last`` skips a final short batch.
    Batches are gathered on the host and copied to ``device`` one at a time.

    >>> import numpy as np, gradflow as gf
    >>> from gradflow.data import BatchIterator
    >>> batches = BatchIterator(np.zeros((10, 3)), np.arange(10), batch_size=4, shuffle=True, seed=0)
    >>> [tuple(x.shape) for x, y in batches]
    [(4, 3), (4, 3), (2, 3)]
    """

    def __init__(self, *arrays, batch_size=64, shuffle=False, seed=None, drop_last=False, device=None,
                 dtype=None):
        if not arrays:
            raise ValueError("BatchIterator needs at least one array")
        if int(batch_size) <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.arrays = [_host(a) for a in arrays]
        lengths = [a.shape[0] if a.ndim else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ShapeError(f"BatchIterator arrays must share their first dimension, got shapes {shapes}")
        if dtype is not None:
            # Only floating arrays take the dtype: integer labels stay integer.
            self.arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in self.arrays]
        self.n = lengths[0]
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.device = resolve_device(device)
        seed = creation.generator().integers(2 ** 63) if seed is None else seed
        self._rng = np.random.default_rng(seed)

    def __len__(self):
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def skip_epochs(self, count):
        """Advance the shuffling as if ``count`` passes had run (a resumed run sees the same batches)."""
        if self.shuffle:
            for _ in range(count):
                self._rng.permutation(self.n)

    def __iter__(self):
        order = self._rng.permutation(self.n) if self.shuffle else None
        backend = for_device(self.device)
        for b in range(len(self)):
            if order is None:
                picked = [a[b * self.batch_size:(b + 1) * self.batch_size] for a in self.arrays]
            else:
                index = order[b * self.batch_size:(b + 1) * self.batch_size]
                picked = [a[index] for a in self.arrays]
            if backend is NUMPY:
                # A contiguous copy: a slice must not let the model write into the dataset.
                yield tuple(Tensor(np.array(p)) for p in picked)
            else:
                yield tuple(Tensor(backend.xp.asarray(p)) for p in picked)
