"""getitem's backward, ``Backend.index_add`` (``out[index] += values``, repeats accumulating):
each route of backends/index_add.py gives NumPy's ``add.at`` result exactly, and the gradient of
x[index] is the same through every route."""
import numpy as np
import pytest

import gradflow as gf
from gradflow.backends import NUMPY
from gradflow.backends.index_add import numpy_index_add, selects_each_once

RNG = np.random.default_rng(0)
SHAPE = (6, 5, 4)
MASK = RNG.random(SHAPE) < 0.5
INDEXES = {
    "rows_repeated": (np.array([0, 3, 3, -1, 5, 0, 3]),),
    "rows_unique": (np.array([4, 1, -6]),),
    "rows_2d": (np.array([[1, 1], [2, 5], [1, 0]]),),
    "axis1_repeated": (slice(None), np.array([4, 0, 4, 4, -5])),
    "axis2": (slice(None), slice(None), np.array([3, 3, 0])),
    "empty": (np.array([], dtype=np.int64),),
    "uint": (np.array([2, 2, 1], dtype=np.uint8),),
    "mask": (MASK,),
    "row_mask": (RNG.random(6) < 0.5, slice(1, 4)),
    "two_masks": (np.array([True, False, True, True, False, False]), slice(None), np.array([False, True, True, True])),
    "mask_and_int": (2, RNG.random((5, 4)) < 0.5),
    "int_and_slice_step": (np.array([1, 1, 0]), slice(None, None, 2)),
    "two_int_arrays": (np.array([1, 1, 0]), slice(None), np.array([2, 2, 3])),
    "int_beside_array": (1, np.array([0, 0, 4])),
    "ellipsis": (Ellipsis, np.array([1, 1])),
    "newaxis": (None, np.array([1, 1])),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(INDEXES))
def test_every_route_equals_add_at(name, dtype):
    index = INDEXES[name]
    values = RNG.standard_normal(np.zeros(SHAPE)[index].shape).astype(dtype)
    for start in (np.zeros(SHAPE, dtype), RNG.standard_normal(SHAPE).astype(dtype)):
        want = start.copy()
        np.add.at(want, index, values)
        for index_add in (numpy_index_add, NUMPY.index_add):
            got = start.copy()
            index_add(got, index, values)
            np.testing.assert_array_equal(got, want)  # the same additions in the same order


def test_broadcast_values_take_the_general_route():
    index = (np.array([1, 1, 2]),)
    want, got = np.zeros(SHAPE), np.zeros(SHAPE)
    np.add.at(want, index, 2.0)
    numpy_index_add(got, index, np.array(2.0))
    np.testing.assert_array_equal(got, want)


def test_what_counts_as_selecting_each_element_once():
    assert selects_each_once((MASK,)) and selects_each_once((slice(1), 2, None, Ellipsis))
    assert not selects_each_once((np.array([0, 1]),)) and not selects_each_once(([0, 1],))
    assert not selects_each_once((np.array(True), np.array([0])))


@pytest.mark.parametrize("name", ["rows_repeated", "axis1_repeated", "mask", "two_int_arrays"])
def test_getitem_gradient_counts_repeats(name):
    index = INDEXES[name]
    x = gf.tensor(RNG.standard_normal(SHAPE), requires_grad=True)
    upstream = RNG.standard_normal(np.zeros(SHAPE)[index].shape)
    x[tuple(gf.tensor(i) if isinstance(i, np.ndarray) else i for i in index)].backward(gf.tensor(upstream))
    want = np.zeros(SHAPE)
    np.add.at(want, index, upstream)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-15)


def test_a_full_mask_into_a_strided_out_takes_the_general_route():
    values = RNG.standard_normal(int(MASK.sum()))
    got = np.zeros(SHAPE[::-1]).transpose(2, 1, 0)  # SHAPE, not C-contiguous
    numpy_index_add(got, (MASK,), values)
    want = np.zeros(SHAPE)
    want[MASK] = values
    np.testing.assert_array_equal(got, want)
