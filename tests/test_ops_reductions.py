"""Reductions, scans, sorting and norms beyond the op table's random rows: zeros in products,
PyTorch's conventions at ties, the singular-value norms to second and third order, ``dtype=``, errors.

The table (tests/op_table.py, the "issue 13 part B" block) already runs every op through
forward-vs-NumPy, gradcheck, gradgradcheck, JVP and float32; here are the inputs random draws never hit.
"""
import inspect

import numpy as np
import pytest

import gradflow as gf
import gradflow.ops.einsum
import gradflow.ops.indexing
import gradflow.ops.norms
import gradflow.ops.scan
import gradflow.ops.sorting
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.errors import ShapeError
from gradflow.ops.registry import Op
from op_table import INDEX_CASES

torch = pytest.importorskip("torch")


def _t(array, requires_grad=True):
    return gf.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


def _torch(array):
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


@pytest.mark.parametrize("case", INDEX_CASES, ids=str)
def test_integer_outputs_match_numpy(case):
    x = gf.tensor(np.random.default_rng(0).uniform(-2, 2, case.shape))
    out = case.fn(x)
    expected = case.reference(x.numpy())
    assert out.dtype.kind in "iub" and out.shape == expected.shape
    np.testing.assert_array_equal(out.numpy(), expected)


def test_every_new_primitive_declares_vjp_and_jvp():
    modules = (gf.ops.scan, gf.ops.sorting, gf.ops.indexing, gf.ops.einsum, gf.ops.norms)
    ops = {v for m in modules for _, v in inspect.getmembers(m) if isinstance(v, Op)}
    assert len(ops) >= 10
    assert not [op.name for op in ops if op.vjp_rule is None or op.jvp_rule is None]


# ----- products with zeros -------------------------------------------------------------------------
ZEROS = [[1.5, 0.0, -2.0, 0.5], [0.0, 3.0, 0.0, 2.0], [1.0, -1.0, 2.0, 0.5]]  # one, two, no zeros per row


@pytest.mark.parametrize("axis", [0, 1, None])
def test_prod_gradient_with_zeros_matches_torch(axis):
    x, t = _t(ZEROS), _torch(ZEROS)
    out = gf.prod(x, axis=axis)
    expected = t.prod() if axis is None else t.prod(axis)
    upstream = np.random.default_rng(1).standard_normal(expected.shape)
    out.backward(gf.tensor(upstream))
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy())
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_prod_and_cumprod_with_zeros_pass_gradcheck_to_second_order():
    for fn in (lambda x: gf.prod(x, axis=1), lambda x: gf.cumprod(x, dim=1), lambda x: gf.cumprod(x, dim=0)):
        assert gradcheck(fn, [_t(ZEROS)])
        assert gradgradcheck(fn, [_t(ZEROS)])


@pytest.mark.parametrize("dim", [0, 1])
def test_cumprod_gradient_with_zeros_matches_torch(dim):
    x, t = _t(ZEROS), _torch(ZEROS)
    upstream = np.random.default_rng(2).standard_normal((3, 4))
    gf.cumprod(x, dim=dim).backward(gf.tensor(upstream))
    t.cumprod(dim).backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_cumprod_jvp_with_zeros_matches_finite_differences():
    x = _t(ZEROS, requires_grad=False)
    v = gf.tensor(np.random.default_rng(3).standard_normal((3, 4)))
    _, tangent = gf.func.jvp(lambda x: gf.cumprod(x, dim=1), (x,), (v,))
    eps = 1e-6
    numeric = (np.cumprod(x.numpy() + eps * v.numpy(), 1) - np.cumprod(x.numpy() - eps * v.numpy(), 1)) / (2 * eps)
    np.testing.assert_allclose(tangent.numpy(), numeric, rtol=1e-6, atol=1e-8)


# ----- logsumexp ----------------------------------------------------------------------------------
def test_logsumexp_is_stable_and_handles_infinities():
    x = _t([[1000.0, 1000.0], [-np.inf, -np.inf], [-np.inf, 0.0]])
    with np.errstate(divide="ignore", invalid="ignore"):  # the all -inf row: log(0), as in torch
        out = gf.logsumexp(x, dim=1)
    np.testing.assert_allclose(out.numpy(), [1000.0 + np.log(2), -np.inf, 0.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        out[np.array([0, 2])].sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[[0, 2]], [[0.5, 0.5], [0.0, 1.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logcumsumexp_matches_torch_across_any_range(dtype):
    # Entries far below a later maximum must not underflow to -inf (float32's exp underflows at -104).
    data = np.array([[-100.0, 0.0, -50.0, 3.0, -1000.0], [800.0, 801.0, -5.0, 0.0, 802.0]], dtype=dtype)
    # The reference is float64 PyTorch; float32 is held to its own precision (an ulp of 800 is 6e-5).
    tolerance = dict(rtol=2e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-300)
    x, t = gf.tensor(data, requires_grad=True), torch.tensor(data.astype(np.float64), requires_grad=True)
    out, expected = gf.logcumsumexp(x, dim=1), torch.logcumsumexp(t, 1)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **tolerance)
    upstream = np.random.default_rng(7).standard_normal(data.shape)
    out.backward(gf.tensor(upstream.astype(dtype)))
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), **tolerance)


def test_logcumsumexp_wide_range_to_second_order():
    x = _t([[-60.0, 0.0, -30.0, 2.0, -300.0, 1.0, 0.5], [800.0, 801.0, -5.0, 0.0, 802.0, 790.0, 803.0]])
    assert gradcheck(lambda x: gf.logcumsumexp(x, dim=1), [x])
    assert gradgradcheck(lambda x: gf.logcumsumexp(x, dim=1), [x])


# ----- ties: PyTorch's conventions --------------------------------------------------------------------
def test_cummax_ties_take_the_latest_index_and_route_the_gradient_there():
    data = [1.0, 3.0, 3.0, 2.0, 3.0]
    x, t = _t(data), _torch(data)
    ours, theirs = gf.cummax(x, 0), torch.cummax(t, 0)
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    upstream = np.arange(1.0, 6.0)
    ours.values.backward(gf.tensor(upstream))
    theirs.values.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())


def test_median_is_the_lower_middle_value_like_torch():
    data = [[4.0, 1.0, 3.0, 2.0], [0.5, -1.0, 7.0, 6.0]]
    ours, theirs = gf.median(_t(data), dim=1), torch.median(_torch(data), 1)
    np.testing.assert_allclose(ours.values.numpy(), theirs.values.detach().numpy())
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    assert gf.median(_t(data)).item() == torch.median(_torch(data)).item() == 2.0


def test_sort_and_topk_match_torch():
    data = np.random.default_rng(4).standard_normal((3, 6))
    for ours, theirs in [(gf.sort(_t(data), descending=True), torch.sort(_torch(data), descending=True)),
                         (gf.topk(_t(data), 3, dim=0, largest=False), torch.topk(_torch(data), 3, dim=0, largest=False))]:
        np.testing.assert_allclose(ours.values.numpy(), theirs.values.detach().numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())


# ----- norms ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3, 4), (4, 3), (3, 3)], ids=str)
@pytest.mark.parametrize("ord", [2, -2, "nuc"])
def test_singular_value_norms_to_second_order(ord, shape):
    data = np.random.default_rng(5).standard_normal(shape)
    x = _t(data)
    np.testing.assert_allclose(gf.linalg.norm(x, ord, axis=(-2, -1)).numpy(), np.linalg.norm(data, ord, axis=(-2, -1)))
    assert gradcheck(lambda x: gf.linalg.norm(x, ord, axis=(-1, -2)), [x])
    assert gradgradcheck(lambda x: gf.linalg.norm(x, ord, axis=(-1, -2)), [x])


def test_nuclear_norm_hessian_closed_form():
    # For square invertible X, d||X||_* = UVᵀ (the polar factor Q); its derivative in direction E
    # is Q·skew-part: dQ = U (G ∘ (Uᵀ E V − Vᵀ Eᵀ U)) Vᵀ, G_ij = 1 / (s_i + s_j).
    rng = np.random.default_rng(8)
    data, e = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    x = _t(data)
    (grad,) = gf.autograd.grad(gf.linalg.norm(x, "nuc"), [x], create_graph=True)
    (hess_e,) = gf.autograd.grad((grad * _t(e)).sum(), [x])
    u, s, vh = np.linalg.svd(data)
    m = u.T @ e @ vh.T
    want = u @ ((m - m.T) / (s[:, None] + s[None, :])) @ vh
    np.testing.assert_allclose(grad.numpy(), u @ vh, atol=1e-12)
    np.testing.assert_allclose(hess_e.numpy(), want, atol=1e-10)


def test_svdvals_third_order_and_forward_mode():
    from gradflow.ops.norms import _svd_u, _svd_vh

    x = _t(np.random.default_rng(9).standard_normal((3, 4)))
    # A gauge-invariant use of the singular vectors (signs cancel), first and second order.
    w = _t([0.5, -1.0, 2.0])
    assert gradgradcheck(lambda x: (_svd_u(x) * w) @ _svd_vh(x), [x])
    # Third order: the second derivative's own gradient.
    assert gradgradcheck(lambda x: gf.autograd.grad(gf.linalg.norm(x, 2), [x], create_graph=True)[0], [x])
    t = _t(np.random.default_rng(10).standard_normal((3, 4)))
    _, tangent = gf.func.jvp(gf.linalg.svdvals, (x,), (t,))
    h = 1e-6
    fd = (np.linalg.svd(x.numpy() + h * t.numpy(), compute_uv=False)
          - np.linalg.svd(x.numpy() - h * t.numpy(), compute_uv=False)) / (2 * h)
    np.testing.assert_allclose(tangent.numpy(), fd, rtol=1e-6, atol=1e-8)


def test_norm_gradient_at_zero_is_zero_like_torch():
    x = _t([[0.0, 0.0], [3.0, 4.0]])
    gf.linalg.norm(x, axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 0.0], [0.6, 0.8]])


def test_vector_and_matrix_norm_names_match_torch():
    data = np.random.default_rng(6).standard_normal((3, 4))
    np.testing.assert_allclose(gf.linalg.vector_norm(_t(data), 3, dim=1).numpy(),
                               torch.linalg.vector_norm(_torch(data), 3, dim=1).detach().numpy())
    np.testing.assert_allclose(gf.linalg.matrix_norm(_t(data), "nuc").numpy(),
                               torch.linalg.matrix_norm(_torch(data), "nuc").detach().numpy())
    assert gf.linalg.norm(_t(data), 0, axis=1).tolist() == [4.0, 4.0, 4.0]


# ----- dtype= --------------------------------------------------------------------------------------------------
def test_sum_and_mean_take_a_dtype():
    ints = gf.tensor([1, 2, 4])
    assert ints.sum(dtype=gf.float64).dtype == np.float64 and ints.sum(dtype=gf.float64).item() == 7.0
    assert gf.mean(ints, dtype="float32").dtype == np.float32
    x = gf.tensor(np.ones(3, np.float32), requires_grad=True)
    x.sum(dtype=gf.float64).backward()
    assert x.grad.dtype == np.float32
    assert gf.prod(ints, dtype=gf.float64).item() == 8.0
    assert gf.cumsum(ints, 0, dtype=gf.float64).dtype == np.float64


# ----- errors --------------------------------------------------------------------------------------------------
def test_bad_axes_and_sizes_raise_with_the_shape():
    x = _t(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"\(2, 3\)"):
        gf.cumsum(x, dim=2)
    with pytest.raises(ShapeError, match="k=4"):
        gf.topk(x, 4)
    with pytest.raises(ValueError, match="matrix norm"):
        gf.linalg.norm(x, "fro", axis=0)
    with pytest.raises(ShapeError):
        gf.linalg.norm(_t(np.ones((2, 2, 2))), 1)


def test_scans_accept_0d_tensors():
    x = _t(2.0)
    for fn in (gf.cumsum, gf.cumprod, gf.logcumsumexp):
        out = fn(x, 0)
        assert out.shape == ()
    assert gf.sort(x).values.shape == () and gf.cummax(x, 0).indices.shape == ()
