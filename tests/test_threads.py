"""Backward passes in several threads at once (grad_mode's note [state belongs to a call])."""
import sys
import threading

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F


@pytest.fixture
def switch_often():
    # Switch threads every microsecond, so each backward is interleaved with the others' many times.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def _work(seed, steps=20):
    """create_graph grad, then a backward through it: a gradient-penalty step, as arrays."""
    rng = np.random.default_rng(seed)
    x = gf.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    w = gf.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    b = gf.tensor(rng.standard_normal(4), requires_grad=True)
    for _ in range(steps):
        y = F.linear_act(x, w, b, "tanh") + gf.tanh(x @ w.T)
        loss = (y * y).sum() + F.relu(x @ w.T).sum()
        (gx,) = gf.autograd.grad(loss, [x], create_graph=True)
        ((gx * gx).sum() + loss).backward()
    return [t.grad.numpy().copy() for t in (x, w, b)]


def _in_threads(target, count):
    results, errors = [None] * count, []
    start = threading.Barrier(count)

    def run(i):
        try:
            start.wait()
            results[i] = target(i)
        except BaseException as exc:  # reported below with the thread's index
            errors.append((i, exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"thread {errors[0][0]} raised {errors[0][1]!r}"
    return results


def test_eight_threads_create_graph_then_backward_match_one_thread(switch_often):
    expected = [_work(i) for i in range(8)]
    for got, want in zip(_in_threads(_work, 8), expected):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_another_threads_backward_does_not_change_what_ops_return(switch_often):
    # While some threads run first-order backwards (rules on raw arrays), others call primitives
    # on arrays and record graphs: they must get Tensors and correct gradients.
    def work(i):
        if i % 2:
            return _work(i, steps=8)
        results = []
        for _ in range(200):
            out = gf.exp(np.ones(3))
            assert isinstance(out, gf.Tensor)
            x = gf.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
            (x * x).sum().backward()
            results.append(x.grad.numpy().tolist())
        assert results == [[2.0, 4.0]] * 200
        return results

    _in_threads(work, 6)


def test_saved_tensors_hooks_apply_to_their_own_thread_only(switch_often):
    def work(i):
        x = gf.tensor(np.linspace(0.1, 1.0, 6), requires_grad=True)
        packed = []
        if i % 2:
            with gf.autograd.graph.saved_tensors_hooks(lambda t: packed.append(1) or t, lambda t: t):
                outs = [gf.tanh(x * x).sum() for _ in range(400)]
            assert len(packed) == 400 * 3         # x twice for mul, tanh's output
        else:
            outs = [gf.tanh(x * x).sum() for _ in range(400)]
            assert all(out.grad_fn.next[0].unpackers is None for out in outs)
        for out in outs:
            out.backward()
        np.testing.assert_allclose(x.grad.numpy(), 400 * 2 * x.numpy() / np.cosh(x.numpy() ** 2) ** 2, rtol=1e-12)

    _in_threads(work, 6)
