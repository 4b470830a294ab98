"""Max-pool's tiling fast path (gradflow/ops/pool_tiles.py) against its general window path, bit
for bit: values, argmax, and the scatter of backward, with ties (±0), NaN and infinities."""
import numpy as np
import pytest

import gradflow as gf
from gradflow.backends import of_array
from gradflow.ops.pool import (_index_dtype, _max_pool2d, window_max, window_scatter,
                               window_scatter_cols)
from gradflow.ops.pool_tiles import tiles


def _bits(a):
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def _awkward(rng, shape, dtype):
    """Random values with many exact ties, signed zeros, NaNs and infinities."""
    x = rng.integers(-2, 3, shape).astype(dtype)
    flat = x.reshape(-1)
    flat[rng.random(flat.size) < 0.2] = -0.0
    flat[rng.random(flat.size) < 0.05] = np.nan
    flat[rng.random(flat.size) < 0.03] = np.inf
    flat[rng.random(flat.size) < 0.03] = -np.inf
    return x


@pytest.mark.parametrize("shape,kernel,dtype", [
    ((3, 2, 8, 8), (2, 2), np.float32), ((2, 3, 6, 9), (3, 3), np.float64),
    ((2, 2, 4, 6), (2, 3), np.float32), ((1, 2, 4, 4), (1, 1), np.float32),
    ((2, 1, 4, 8), (4, 2), np.float16)])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_tiled_max_pool_is_bit_identical_to_the_window_path(shape, kernel, dtype, ceil_mode):
    rng = np.random.default_rng(sum(shape))
    x = _awkward(rng, shape, dtype)
    params = dict(kernel=kernel, stride=kernel, padding=(0, 0), dilation=(1, 1), ceil_mode=ceil_mode)
    assert tiles(shape[2:], kernel, kernel, (0, 0), (1, 1))
    backend = of_array(x)
    out, index = _max_pool2d.forward(backend, x, **params)
    ref_out, ref_index = window_max(backend, x, **params)
    assert index.dtype == ref_index.dtype == _index_dtype(kernel[0] * kernel[1])
    np.testing.assert_array_equal(index, ref_index)
    np.testing.assert_array_equal(_bits(out), _bits(ref_out))
    g = _awkward(rng, out.shape, dtype)
    with np.errstate(invalid="ignore"):   # both paths multiply the infinities of g by 0
        image = window_scatter.forward(backend, g, index, shape[2:], **params)
        ref_image = window_scatter_cols(backend, g, index, shape[2:], **params)
    assert image.shape == ref_image.shape == x.shape
    np.testing.assert_array_equal(_bits(image), _bits(ref_image))


@pytest.mark.parametrize("size,kernel,stride,padding,dilation", [
    ((8, 8), (2, 2), (1, 1), (0, 0), (1, 1)), ((8, 8), (2, 2), (2, 2), (1, 1), (1, 1)),
    ((8, 8), (2, 2), (2, 2), (0, 0), (2, 2)), ((7, 8), (2, 2), (2, 2), (0, 0), (1, 1))])
def test_other_windows_take_the_general_path(size, kernel, stride, padding, dilation):
    assert not tiles(size, kernel, stride, padding, dilation)


def test_tiled_pool_gradients_match_the_window_rule():
    """End to end: forward, backward and return_indices of a tiling pool (6×6) equal those of the
    general path on the same image grown to 7×7 by a -inf row and column (no window reads them)."""
    rng = np.random.default_rng(0)
    x = gf.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    wide = gf.tensor(np.pad(x.numpy(), ((0, 0), (0, 0), (0, 1), (0, 1)), constant_values=-np.inf),
                     requires_grad=True)
    y, idx = gf.nn.functional.max_pool2d(x, 2, return_indices=True)
    y2, idx2 = gf.nn.functional.max_pool2d(wide, 2, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), y2.numpy())
    rows, cols = np.divmod(idx2.numpy(), 7)
    np.testing.assert_array_equal(idx.numpy(), rows * 6 + cols)
    g = rng.standard_normal(y.shape)
    (y * gf.tensor(g)).sum().backward()
    (y2 * gf.tensor(g)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), wide.grad.numpy()[..., :6, :6])
