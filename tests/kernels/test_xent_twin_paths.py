"""The NumPy twin's softmax cross-entropy on the logits' columns (short rows) gives the general
code's results bit for bit (numpy_twins.py's note [the loss on the logits' columns]), non-finite
logits included, and never writes into the logits."""
import numpy as np
import pytest

from gradflow.backends import numpy_twins as twin


def _cases(dtype):
    rng = np.random.default_rng(0)
    for rows, classes in ((1, 1), (1, 5), (3, 1), (2, 3), (64, 10), (7, 64)):
        for special in (None, "all -inf row", "+inf", "nan", "-inf at the label"):
            z = (rng.standard_normal((rows, classes)) * 5).astype(dtype)
            labels = rng.integers(0, classes, rows)
            if special == "all -inf row":
                z[0] = -np.inf
            elif special == "+inf":
                z[0, 0] = np.inf
            elif special == "nan":
                z[-1, -1] = np.nan
            elif special == "-inf at the label":
                z[0, labels[0]] = -np.inf
            yield z, labels, (None if special else rng.standard_normal(classes).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_the_columns_path_is_the_general_code_bit_for_bit(dtype):
    for z, labels, bias in _cases(dtype):
        before = z.copy()
        shifted = z if bias is None else z + bias
        with np.errstate(all="ignore"):
            for reduction in ("mean", "sum", "none"):
                got = twin.softmax_xent_forward(z, labels, bias=bias, reduction=reduction)
                want = twin._softmax_xent_forward(shifted, labels, reduction)
                assert type(got) is type(want) and got.dtype == want.dtype
                assert np.array_equal(got, want, equal_nan=True), (z, labels, reduction)
            for scale in (np.array(0.5, dtype), np.linspace(0.5, 2, z.shape[0]).astype(dtype)):
                got = twin.softmax_xent_backward(z, labels, scale, 1 / z.shape[0], bias=bias)
                want = twin._softmax_xent_backward(shifted, labels, scale * dtype(1 / z.shape[0]))
                assert got.dtype == want.dtype and got.flags.c_contiguous and got.base is None
                assert np.array_equal(got, want, equal_nan=True), (z, labels)
        np.testing.assert_array_equal(z, before)  # a (1, C) or (N, 1) z.T is contiguous: still copied
