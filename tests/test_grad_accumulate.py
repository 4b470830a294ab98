"""linear's weight gradient added into .grad by gemm (beta = 1), and only where nobody can tell.

See the note [who owns a gradient array] in gradflow/autograd/engine.py for when the engine offers
a .grad array; each test here takes away one of those conditions and checks it falls back.
"""
import tracemalloc

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
import gradflow.optim
from gradflow.backends import numpy_kernels

rng = np.random.default_rng(0)
X = rng.standard_normal((16, 32))


def _weight(dtype=np.float64):
    return gf.tensor(rng.standard_normal((24, 32)).astype(dtype), requires_grad=True)


def _step(w, x=X, **backward):
    F.linear(gf.tensor(x.astype(w.dtype)), w).sum().backward(**backward)


def _expected(steps, x=X):
    return steps * np.ones((x.shape[0], 24)).T @ x


def _address(t):
    # ._grad: reading .grad hands the array to the caller, after which the engine never adds into
    # it again (test_reading_grad_hands_it_out); this probe looks without taking it.
    return t._grad.data.ctypes.data


def test_third_backward_adds_into_the_engines_own_buffer():
    w = _weight()
    _step(w)                       # .grad is the rule's new array: the engine's own
    _step(w)                       # added into in place: nobody has read .grad
    owned = _address(w)
    for _ in range(3):
        _step(w)
        assert _address(w) == owned
    np.testing.assert_allclose(w.grad.numpy(), _expected(5), rtol=1e-13)


def test_accumulating_allocates_no_gradient_sized_array():
    w = _weight()
    _step(w), _step(w)
    x = gf.tensor(X)
    loss = F.linear(x, w).sum()
    tracemalloc.start()
    loss.backward()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < w.nbytes, f"backward allocated {peak} bytes; a weight gradient is {w.nbytes}"


def test_training_loop_with_zero_grad_keeps_one_buffer_and_the_same_result():
    def train(set_to_none):
        w = gf.nn.Parameter(gf.tensor(np.linspace(-1, 1, 24 * 32).reshape(24, 32)))
        optimizer = gradflow.optim.SGD([w], lr=0.01, momentum=0.9)
        addresses = []
        for _ in range(5):
            optimizer.zero_grad(set_to_none=set_to_none)
            (F.linear(gf.tensor(X), w) ** 2).sum().backward()
            optimizer.step()
            addresses.append(_address(w))
        return w.numpy(), addresses

    reference, _ = train(set_to_none=True)
    accumulated, addresses = train(set_to_none=False)
    np.testing.assert_allclose(accumulated, reference, rtol=1e-12, atol=1e-14)
    assert len(set(addresses[1:])) == 1


def test_reading_grad_hands_it_out():
    w = _weight()
    _step(w)
    first = _address(w)
    _step(w)
    assert _address(w) == first            # nobody has looked: added in place
    seen = w.grad                          # now the caller may hold it ...
    before = seen.numpy().copy()
    _step(w)
    assert _address(w) != first            # ... so the next sum goes into a new array
    np.testing.assert_array_equal(seen.numpy(), before)
    np.testing.assert_allclose(w.grad.numpy(), _expected(3), rtol=1e-13)


def test_a_kept_grad_tensor_is_never_changed():
    w = _weight()
    _step(w), _step(w)
    old = w.grad
    before = old.numpy().copy()
    _step(w)
    np.testing.assert_array_equal(old.numpy(), before)
    np.testing.assert_allclose(w.grad.numpy(), _expected(3), rtol=1e-13)


@pytest.mark.parametrize("keep", [lambda g: g.data, lambda g: g.data[:2], lambda g: g.numpy()],
                         ids=["array", "view", "numpy"])
def test_a_kept_array_or_view_is_never_changed(keep):
    w = _weight()
    _step(w), _step(w)
    kept = keep(w.grad)
    before = np.array(kept, copy=True)
    _step(w)
    np.testing.assert_array_equal(kept, before)


def test_a_user_assigned_grad_is_never_changed():
    w = _weight()
    mine = gf.tensor(np.ones(w.shape))
    w.grad = mine
    for _ in range(2):
        _step(w)
    np.testing.assert_array_equal(mine.numpy(), np.ones(w.shape))
    np.testing.assert_allclose(w.grad.numpy(), 1 + _expected(2), rtol=1e-13)


def test_shared_packed_buffers_are_never_changed():
    # A view into a bigger buffer (as distributed packing assigns) is not the engine's array.
    w = _weight()
    flat = np.zeros(w.data.size + 5)
    w.grad = gf.tensor(flat[:w.data.size].reshape(w.shape))
    _step(w)
    assert not flat.any()


def test_hooks_inputs_and_grad_see_the_whole_gradient():
    w = _weight()
    _step(w), _step(w)
    seen = []
    handle = w.register_hook(lambda g: seen.append(g.numpy().copy()))
    _step(w)
    np.testing.assert_allclose(seen[0], _expected(1), rtol=1e-13)
    # Hooks run before .grad is written (no early accumulation by the GEMM); the engine then adds
    # the hooked gradient into its own .grad array.
    np.testing.assert_allclose(w.grad.numpy(), _expected(3), rtol=1e-13)
    handle.remove()

    w2 = _weight()
    _step(w2), _step(w2)
    before = w2.grad.numpy().copy()
    x = gf.tensor(X, requires_grad=True)
    F.linear(x, w2).sum().backward(inputs=[x])     # w2 not among inputs: its .grad is untouched
    np.testing.assert_array_equal(w2.grad.numpy(), before)
    (gw,) = gf.autograd.grad(F.linear(gf.tensor(X), w2).sum(), [w2])
    np.testing.assert_array_equal(w2.grad.numpy(), before)
    np.testing.assert_allclose(gw.numpy(), _expected(1), rtol=1e-13)


def test_second_gradient_into_the_same_weight_in_one_backward():
    w = _weight()
    _step(w), _step(w)
    x = gf.tensor(X)
    (F.linear(x, w).sum() + F.linear(x * 2.0, w).sum()).backward()
    np.testing.assert_allclose(w.grad.numpy(), _expected(2) + _expected(3), rtol=1e-13)


def test_float32_and_float16_weights():
    for dtype, rtol in [(np.float32, 1e-5), (np.float16, 1e-2)]:
        w = _weight(dtype)
        for _ in range(4):
            _step(w)
        assert w.grad.dtype == dtype
        np.testing.assert_allclose(w.grad.numpy(), _expected(4, X.astype(dtype)), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_numpy_gemm_contract(dtype, trans_a, trans_b):
    a = rng.standard_normal((5, 3) if trans_a else (3, 5)).astype(dtype)
    b = rng.standard_normal((4, 5) if trans_b else (5, 4)).astype(dtype)
    out = rng.standard_normal((3, 4)).astype(dtype)
    start, address = out.copy(), out.ctypes.data
    product = (a.T if trans_a else a) @ (b.T if trans_b else b)
    tolerance = dict(rtol=2e-2, atol=2e-2) if dtype == np.float16 else dict(rtol=1e-5)
    assert numpy_kernels.gemm(a, b, out, trans_a, trans_b, alpha=2.0, beta=1.0) is out
    assert out.ctypes.data == address
    np.testing.assert_allclose(out, 2.0 * product + start, **tolerance)
    out[...] = np.nan  # beta = 0 never reads out, as BLAS promises
    numpy_kernels.gemm(np.asfortranarray(a), b[::1], out, trans_a, trans_b)
    np.testing.assert_allclose(out, product, **tolerance)


def test_module_zero_grad_keeps_the_engines_buffer():
    layer = gf.nn.Linear(32, 24, bias=False)
    x = gf.tensor(X.astype(np.float32))
    addresses = []
    for _ in range(4):
        layer.zero_grad(set_to_none=False)
        F.linear(x, layer.weight).sum().backward()
        addresses.append(_address(layer.weight))
    assert len(set(addresses[1:])) == 1
    np.testing.assert_allclose(layer.weight.grad.numpy(), _expected(1, X.astype(np.float32)), rtol=1e-5)
