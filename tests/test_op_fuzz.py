"""Property-based tests over the whole op table (hypothesis): beyond the one input per row that
``test_ops.py`` checks.

- Every row of ``OP_CASES``: inputs drawn anew inside the row's domain, in float32 and float64;
  forward against the row's NumPy reference, the reverse-mode gradient against float64 central
  differences (``gradcheck``), and the forward-mode JVP against central differences.
- Rows marked ``elementwise`` (any broadcasting shapes work): random shapes, 0-d and empty ones and
  broadcast operands included, through the same checks.
- Reductions, softmax and squeeze with random axes, negative ones and 0-d tensors included.

Runs are derandomized (the same examples on every run, so CI is deterministic) and bounded.
"""
import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import func
from gradflow.autograd import gradcheck
from op_table import OP_CASES, sample_inputs

FUZZ = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
EPS = 1e-6


def _evaluate(fn, arrays):
    with gf.no_grad():
        return fn(*[gf.tensor(a) for a in arrays]).numpy()


def _check_row(case, arrays, dtype):
    """Forward vs NumPy in ``dtype``; in float32 the gradient vs float64's, in float64 reverse and
    forward mode vs central differences."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # references at masked-out values (nan_to_num's log)
        expected = case.reference(*arrays)
    xs = [gf.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    out = case.fn(*xs)
    assert out.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=case.atol32 * 10)
        # The float32 gradient agrees with the float64 one to float32 accuracy.
        xs64 = [gf.tensor(a, requires_grad=True) for a in arrays]
        out64 = case.fn(*xs64)
        u = np.random.default_rng(3).standard_normal(out.shape)
        out.backward(gf.tensor(u.astype(np.float32)))
        out64.backward(gf.tensor(u))
        for x, x64 in zip(xs, xs64):
            assert (x.grad is None) == (x64.grad is None)
            if x.grad is not None:
                assert x.grad.dtype == np.float32
                np.testing.assert_allclose(x.grad.numpy(), x64.grad.numpy(), rtol=1e-3, atol=case.atol32 * 10)
        return
    xs = [gf.tensor(a, requires_grad=True) for a in arrays]
    if out.numpy().size == 0:  # nothing to differentiate: backward still gives gradients of the inputs' shapes
        out = case.fn(*xs)
        out.backward(gf.ones_like(out))
        for x in xs:
            assert x.grad is None or x.grad.shape == x.shape
        return
    assert gradcheck(case.fn, xs)
    primals = [gf.tensor(a) for a in arrays]
    tangents = [gf.tensor(np.random.default_rng(7).standard_normal(a.shape)) for a in arrays]
    _, tangent = func.jvp(case.fn, primals, tangents)
    vs = [t.numpy() for t in tangents]
    plus = _evaluate(case.fn, [a + EPS * v for a, v in zip(arrays, vs)])
    minus = _evaluate(case.fn, [a - EPS * v for a, v in zip(arrays, vs)])
    np.testing.assert_allclose(tangent.numpy(), (plus - minus) / (2 * EPS), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", OP_CASES, ids=str)
@FUZZ
@given(seed=st.integers(0, 2 ** 32 - 1), dtype=st.sampled_from([np.float64, np.float32]))
def test_every_row_with_fresh_inputs(case, seed, dtype):
    _check_row(case, sample_inputs(case, np.random.default_rng(seed)), dtype)


@st.composite
def broadcast_shapes(draw, arity):
    """Shapes of ``arity`` operands that broadcast together: 0-d, size-0 and size-1 axes included."""
    ndim = draw(st.integers(0, 3))
    full = draw(st.lists(st.integers(0, 3), min_size=ndim, max_size=ndim))
    shapes = []
    for _ in range(arity):
        drop = draw(st.integers(0, ndim))  # leading axes this operand lacks
        ones = draw(st.lists(st.booleans(), min_size=ndim - drop, max_size=ndim - drop))
        shapes.append(tuple(1 if one else size for one, size in zip(ones, full[drop:])))
    return tuple(shapes)


ELEMENTWISE = [case for case in OP_CASES if case.elementwise]


@pytest.mark.parametrize("case", ELEMENTWISE, ids=str)
@FUZZ
@given(data=st.data(), seed=st.integers(0, 2 ** 32 - 1), dtype=st.sampled_from([np.float64, np.float32]))
def test_elementwise_rows_on_random_broadcast_shapes(case, data, seed, dtype):
    shapes = data.draw(broadcast_shapes(len(case.shapes)), label="shapes")
    reshaped = dataclasses.replace(case, shapes=shapes)
    _check_row(reshaped, sample_inputs(reshaped, np.random.default_rng(seed)), dtype)


# ----- axes ---------------------------------------------------------------------------------------
@st.composite
def shape_and_axes(draw, allow_empty=True):
    ndim = draw(st.integers(0, 3))
    shape = tuple(draw(st.lists(st.integers(0 if allow_empty else 1, 3), min_size=ndim, max_size=ndim)))
    bound = max(ndim, 1)
    axes = draw(st.lists(st.integers(-bound, bound - 1), min_size=1, max_size=bound, unique_by=lambda a: a % bound))
    return shape, tuple(axes)


REDUCTIONS = {
    "sum": (lambda x, axis, keep: x.sum(axis=axis, keepdims=keep), np.sum),
    "mean": (lambda x, axis, keep: gf.mean(x, dim=axis, keepdim=keep), np.mean),
    "max": (lambda x, axis, keep: x.max(axis=axis, keepdims=keep), np.max),
    "min": (lambda x, axis, keep: gf.min(x, axis, keep), np.min),
    "var": (lambda x, axis, keep: x.var(axis=axis, keepdims=keep), np.var),
    "std_ddof": (lambda x, axis, keep: gf.std(x, axis=axis, keepdims=keep, ddof=1),
                 lambda a, axis, keepdims: np.std(a, axis=axis, keepdims=keepdims, ddof=1)),
}


@pytest.mark.parametrize("name", REDUCTIONS)
@FUZZ
@given(shape_axes=shape_and_axes(), keep=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_reductions_over_random_axes(name, shape_axes, keep, seed):
    shape, axes = shape_axes
    fn, reference = REDUCTIONS[name]
    a = np.random.default_rng(seed).uniform(-2, 2, shape)
    # NumPy reduces a 0-d array over axis=None; PyTorch-style axis 0/-1 of a 0-d tensor means the same.
    numpy_axes = axes if a.ndim else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            expected = reference(a, axis=numpy_axes, keepdims=keep)
        except ValueError:  # max/min of an empty selection: gradflow must refuse as well
            with pytest.raises(gf.ShapeError):
                fn(gf.tensor(a), axes, keep)
            return
        got = fn(gf.tensor(a), axes, keep)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)
    if got.numpy().size and a.size and np.isfinite(expected).all():
        assert gradcheck(lambda x: fn(x, axes, keep), [gf.tensor(a, requires_grad=True)])


@FUZZ
@given(shape_axes=shape_and_axes(allow_empty=False), seed=st.integers(0, 2 ** 32 - 1), log=st.booleans())
def test_softmax_over_random_axes(shape_axes, seed, log):
    shape, axes = shape_axes
    axis = axes[0]
    a = np.random.default_rng(seed).uniform(-3, 3, shape)
    fn = (lambda x: F.log_softmax(x, axis)) if log else (lambda x: F.softmax(x, dim=axis))
    shifted = np.exp(a - a.max(axis=axis if a.ndim else None, keepdims=True))
    expected = shifted / shifted.sum(axis=axis if a.ndim else None, keepdims=True)
    np.testing.assert_allclose(fn(gf.tensor(a)).numpy(), np.log(expected) if log else expected, rtol=1e-10,
                               atol=1e-12)
    assert gradcheck(fn, [gf.tensor(a, requires_grad=True)])


@FUZZ
@given(shape_axes=shape_and_axes())
def test_squeeze_and_out_of_range_axes(shape_axes):
    shape, axes = shape_axes
    a = np.zeros(shape)
    x = gf.tensor(a)
    squeezable = tuple(ax for ax in axes if a.ndim == 0 or shape[ax] == 1)
    if a.ndim and squeezable:
        assert x.squeeze(squeezable).shape == np.squeeze(a, squeezable).shape
    if a.ndim == 0:
        assert x.squeeze(axes[0]).shape == ()
    with pytest.raises(gf.AxisError):
        x.sum(max(a.ndim, 1))
    with pytest.raises(IndexError):
        x.squeeze(-max(a.ndim, 1) - 1)
