"""The multi-tensor Adam twin's plain path (numpy_twins' note [Adam's plain step on many tensors])
gives adam_update's results bit for bit, over several steps and the tensors it leaves alone."""
import numpy as np
import pytest

from gradflow.backends import numpy_kernels, numpy_twins


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_path_matches_adam_update_bitwise(dtype):
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,), (), (2, 1, 3)]  # the 0-d tensor takes adam_update's own path
    # parameter, first moment, second moment (non-negative, as Adam keeps it)
    ours = [[rng.standard_normal(s).astype(dtype), rng.standard_normal(s).astype(dtype),
             np.abs(rng.standard_normal(s)).astype(dtype)] for s in shapes]
    theirs = [[a.copy() for a in state] for state in ours]
    for step in range(1, 5):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        numpy_twins.adam_update_multi([p for p, _, _ in ours], grads, [m for _, m, _ in ours],
                                      [v for _, _, v in ours], step, 1e-2, beta1=0.8, beta2=0.99, eps=1e-6)
        for (p, m, v), g in zip(theirs, grads):
            numpy_kernels.adam_update(p, g, m, v, step, 1e-2, beta1=0.8, beta2=0.99, eps=1e-6)
    for a, b in zip(ours, theirs):
        for x, y in zip(a, b):
            assert x.dtype == y.dtype and np.isfinite(x).all() and np.array_equal(x, y)


def test_mixed_dtypes_and_weight_decay_take_the_general_path():
    rng = np.random.default_rng(1)
    p32, p64 = rng.standard_normal(5).astype(np.float32), rng.standard_normal(5)
    g32, g64 = rng.standard_normal(5).astype(np.float32), rng.standard_normal(5)
    states = [[p32, np.zeros(5, np.float32), np.zeros(5, np.float32)], [p64, np.zeros(5), np.zeros(5)]]
    expected = [[a.copy() for a in s] for s in states]
    numpy_twins.adam_update_multi([s[0] for s in states], [g32, g64], [s[1] for s in states],
                                  [s[2] for s in states], 1, 0.1, weight_decay=0.01)
    for s, g in zip(expected, [g32, g64]):
        numpy_kernels.adam_update(s[0], g, s[1], s[2], 1, 0.1, weight_decay=0.01)
    for a, b in zip(states, expected):
        for x, y in zip(a, b):
            assert np.array_equal(x, y)
