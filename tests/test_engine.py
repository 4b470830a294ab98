"""Semantics of the reverse-mode engine: accumulation, freeing, hooks, grad modes, error paths."""
import sys

import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import Function, gradcheck, gradgradcheck


def leaf(value, dtype="float64"):
    return gf.tensor(value, dtype=dtype, requires_grad=True)


def test_chain_of_ten_thousand_ops_has_no_recursion_limit():
    x = leaf(1.0)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    assert sys.getrecursionlimit() < 10_000 * 2
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000, rel=1e-9)


def test_each_node_runs_once_with_the_summed_gradient():
    calls = []

    class Counted(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            calls.append(g.item())
            return g * 2.0

    x = leaf(1.0)
    y = Counted.apply(x)
    (y * 3.0 + y * 4.0).backward()       # diamond: y feeds two paths
    assert calls == [7.0]
    assert x.grad.item() == 14.0


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0 + 3.0, 4.0 + 3.0])
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_broadcasting_is_undone_by_summing():
    x = leaf(np.ones((3, 1)))
    b = leaf(np.ones(4))
    (x * b).sum().backward()
    assert x.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 1), 4.0))
    np.testing.assert_array_equal(b.grad.numpy(), np.full(4, 3.0))


def test_non_leaf_grad_only_after_retain_grad():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    z = x * 3.0
    z.retain_grad()
    (y.sum() + (z * z).sum()).backward()
    assert y.grad is None
    np.testing.assert_array_equal(z.grad.numpy(), 2 * z.numpy())
    assert y.is_leaf is False and x.is_leaf is True


def test_backward_twice_through_a_freed_graph_raises():
    x = leaf([1.0, 2.0])
    y = (gf.exp(x) * x).sum()
    y.backward()
    with pytest.raises(gf.GraphFreedError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (gf.exp(x) * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_saved_tensors_are_released_after_backward():
    x = leaf(np.ones(4))
    y = gf.exp(x)
    node = y.grad_fn
    y.sum().backward()
    assert node.is_freed


def test_non_scalar_backward_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(gf.BackwardError, match=r"non-scalar output of shape \(2,\)"):
        (x * 2.0).backward()
    (x * 2.0).backward(gf.tensor([1.0, 10.0], dtype="float64"))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 20.0])


def test_gradient_argument_is_checked():
    x = leaf([1.0, 2.0])
    with pytest.raises(gf.ShapeError, match=r"\(3,\).*\(2,\)"):
        (x * 2.0).backward(gf.tensor([1.0, 2.0, 3.0], dtype="float64"))
    with pytest.raises(gf.DTypeError, match="float32.*float64"):
        (x * 2.0).backward(gf.tensor([1.0, 2.0], dtype="float32"))


def test_backward_of_a_tensor_without_grad_raises():
    with pytest.raises(gf.BackwardError, match="does not require grad"):
        gf.tensor([1.0]).sum().backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(gf.DTypeError, match="int64"):
        gf.tensor([1, 2, 3], requires_grad=True)
    labels = gf.tensor([1, 2, 3])
    assert labels.dtype == gf.int64


def test_mismatched_shapes_dtypes_and_grads_are_named():
    a, b = gf.ones(2, 3), gf.ones(4, 5)
    with pytest.raises(gf.ShapeError, match=r"\(2, 3\).*\(4, 5\)"):
        a @ b
    with pytest.raises(gf.DTypeError, match="float32.*float64"):
        gf.ones(3) + gf.ones(3, dtype="float64")
    with pytest.raises(gf.ShapeError, match=r"\(2, 2\).*\(3,\)"):
        gf.ones(3, requires_grad=True).grad = gf.ones(2, 2)
    with pytest.raises(gf.ShapeError, match="cannot reshape"):
        gf.ones(6).reshape(4, 2)


def test_python_scalars_do_not_upcast():
    x = gf.ones(3)
    assert (x * 2.0).dtype == gf.float32
    assert (2.5 + x).dtype == gf.float32
    assert (x ** 2).dtype == gf.float32
    assert gf.tensor([1.5]).dtype == gf.float32
    assert gf.tensor(np.array([1.5])).dtype == gf.float64


def test_no_grad_records_nothing_and_works_as_decorator():
    x = leaf([1.0])
    with gf.no_grad():
        y = x * 2.0
        with gf.enable_grad():
            z = x * 2.0
    assert y.grad_fn is None and not y.requires_grad
    assert z.grad_fn is not None

    @gf.no_grad()
    def f(t):
        return t * 3.0

    assert f(x).grad_fn is None and gf.is_grad_enabled()
    with gf.set_grad_enabled(False):
        assert not gf.is_grad_enabled()
    assert gf.is_grad_enabled()


def test_hooks_see_and_can_replace_gradients():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    y = x * 3.0
    handle = y.register_hook(lambda g: g * 10.0)
    y.sum().backward()
    np.testing.assert_array_equal(seen[0], [30.0, 30.0])
    np.testing.assert_array_equal(x.grad.numpy(), [30.0, 30.0])
    handle.remove()


def test_leaf_hook_gets_the_summed_gradient_once():
    x = leaf(1.0)
    seen = []
    x.register_hook(lambda g: seen.append(g.item()))
    (x * 2.0 + x * 3.0).backward()
    assert seen == [5.0]


def test_grad_returns_gradients_without_touching_dot_grad():
    x, y = leaf(2.0), leaf(3.0)
    gx, gy = gf.autograd.grad(x * y, [x, y])
    assert (gx.item(), gy.item()) == (3.0, 2.0)
    assert x.grad is None and y.grad is None
    unused = leaf(1.0)
    with pytest.raises(gf.BackwardError, match="not used"):
        gf.autograd.grad(x * 2.0, [x, unused])
    assert gf.autograd.grad(x * 2.0, [x, unused], allow_unused=True)[1] is None


def test_grad_of_an_intermediate_tensor():
    x = leaf(2.0)
    h = x * x
    (gh,) = gf.autograd.grad(h * 5.0, h)
    assert gh.item() == 5.0


def test_double_backward_for_a_second_derivative():
    x = leaf(3.0)
    (g,) = gf.autograd.grad(x ** 3, x, create_graph=True)
    assert g.item() == 27.0 and g.requires_grad
    (gg,) = gf.autograd.grad(g, x)
    assert gg.item() == 18.0


def test_backward_with_create_graph_leaves_differentiable_grads():
    x = leaf(2.0)
    (x ** 3).backward(create_graph=True)
    gx = x.grad
    x.grad = None
    gx.backward()
    assert x.grad.item() == 12.0   # d(3x²)/dx


def test_custom_function_with_save_for_backward_and_double_backward():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3.0 * x ** 2

    x = leaf([0.5, -1.5])
    assert gradcheck(Cube.apply, [x])
    assert gradgradcheck(Cube.apply, [x])
    assert "Cube" in repr(Cube.apply(x))


def test_custom_function_saving_its_output_and_taking_non_tensor_args():
    class ScaledExp(Function):
        @staticmethod
        def forward(ctx, x, scale):
            out = gf.exp(x) * scale
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, g):
            (out,) = ctx.saved_tensors
            return g * out, None

    x = leaf([0.1, 0.2])
    assert gradcheck(lambda t: ScaledExp.apply(t, 2.0), [x])


def test_custom_function_returning_a_wrong_shape_is_reported():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, g):
            return g   # should be broadcast to x's shape

    with pytest.raises(gf.ShapeError, match=r"Bad backward returned a gradient of shape \(\) for input 0 of shape \(3,\)"):
        Bad.apply(leaf([1.0, 2.0, 3.0])).backward()


def test_detect_anomaly_names_the_op():
    x = leaf([0.0, 1.0])
    with gf.autograd.detect_anomaly(), np.errstate(all="ignore"):
        with pytest.raises(gf.AnomalyError, match="log"):
            gf.log(x - 1.0)
        y = gf.sqrt(x)        # fine forward, infinite gradient at 0
        with pytest.raises(gf.AnomalyError, match="sqrt backward"):
            y.sum().backward()
    with np.errstate(all="ignore"):
        gf.log(x)  # off again: no error


def test_index_gradient_scatter_adds_repeated_indices():
    x = leaf([1.0, 2.0, 3.0])
    x[[0, 0, 2]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 1.0])


def test_views_share_memory_and_detach_cuts_the_graph():
    x = leaf(np.arange(6.0))
    assert np.shares_memory(x.reshape(2, 3).data, x.data)
    d = x.detach()
    assert d.grad_fn is None and not d.requires_grad and np.shares_memory(d.data, x.data)


def test_relu_saves_only_its_output():
    x = leaf(np.linspace(-1, 1, 5))
    y = gf.relu(x)
    saved = y.grad_fn.saved_raw
    assert len(saved) == 1 and saved[0].data is y.data


def test_first_layer_matmul_does_not_keep_its_weight():
    x = gf.ones(4, 3)                      # the batch: no grad
    w = leaf(np.ones((3, 2)), dtype="float32")
    node = (x @ w).grad_fn
    kept = [v for v in node.saved_raw if v is not None]
    assert len(kept) == 1 and kept[0] is x


def test_linear_keeps_the_batch_not_the_weight_and_skips_the_input_gradient():
    import gradflow.nn.functional as F

    x = gf.ones(4, 3)
    w = gf.tensor(np.full((2, 3), 0.5, np.float32), requires_grad=True)
    b = gf.tensor(np.zeros(2, np.float32), requires_grad=True)
    y = F.linear(x, w, b)
    kept = [v for v in y.grad_fn.saved_raw if v is not None]
    assert len(kept) == 1 and kept[0] is x
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full((2, 3), 4.0))
    np.testing.assert_array_equal(b.grad.numpy(), [4.0, 4.0])


def test_custom_function_carries_forward_mode_tangents():
    from gradflow.autograd import forward_ad

    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 2.0 * x

    class Opaque(Function):
        @staticmethod
        def forward(ctx, x):
            return gf.tensor(x.data * 2)

        @staticmethod
        def backward(ctx, g):
            return g * 2.0

    x = leaf([1.0, 3.0])
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(x, gf.tensor([1.0, 1.0], dtype="float64"))
        _, tangent = forward_ad.unpack_dual(Square.apply(dual))
        np.testing.assert_array_equal(tangent.numpy(), [2.0, 6.0])
        with pytest.raises(forward_ad.ForwardADError, match="Opaque.forward"):
            Opaque.apply(dual)


def test_custom_function_frees_its_saved_tensors_after_backward():
    import weakref

    class Keep(Function):
        @staticmethod
        def forward(ctx, x):
            big = x * 1.0
            ctx.save_for_backward(big)
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            (big,) = ctx.saved_tensors
            return g * 2.0 + big * 0.0

    x = leaf(np.ones(3))
    y = Keep.apply(x)
    saved = weakref.ref(y.grad_fn.saved_raw[0])
    y.sum().backward()
    assert saved() is None


def test_gradient_sums_never_write_into_arrays_others_can_see():
    # The root gradient reaches x twice unchanged (add passes it through): summing the two
    # contributions must not write into the caller's gradient array.
    x = leaf(np.ones(3))
    upstream = gf.tensor(np.array([1.0, 2.0, 3.0]))
    (x + x).backward(upstream)
    np.testing.assert_array_equal(upstream.numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0, 6.0])
    # A retained intermediate gradient stays what it was when other contributions arrive later.
    w = leaf(np.ones(3))
    h = w * 2.0
    h.retain_grad()
    (h * 3.0 + h * 5.0).sum().backward()
    np.testing.assert_array_equal(h.grad.numpy(), [8.0, 8.0, 8.0])
    np.testing.assert_array_equal(w.grad.numpy(), [16.0, 16.0, 16.0])


def test_gradient_sums_are_taken_in_place_only_in_arrays_the_engine_owns():
    from gradflow.autograd import engine

    owned = set()
    theirs = np.zeros(3)
    table = {0: theirs}                       # a gradient the engine did not make
    engine._accumulate(table, 0, np.ones(3), False, owned)
    total = table[0]
    assert total is not theirs and theirs.tolist() == [0.0, 0.0, 0.0]
    assert 0 in owned                         # the sum is the engine's own array ...
    engine._accumulate(table, 0, np.ones(3), False, owned)
    assert table[0] is total and total.tolist() == [2.0, 2.0, 2.0]   # ... so it is added into
    fresh = np.ones(3)                        # a new contribution the engine owns takes the sum
    table, owned = {0: theirs}, set()         # (ownership is per table entry)
    engine._accumulate(table, 0, fresh, True, owned)
    assert table[0] is fresh and fresh.tolist() == [1.0, 1.0, 1.0] and theirs.tolist() == [0.0, 0.0, 0.0]
