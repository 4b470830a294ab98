"""In-place writes into tensors a graph saved are caught in backward (node.py's note [version counters])."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import InplaceModificationError


def _model():
    gf.manual_seed(0)
    return gf.nn.Sequential(gf.nn.Linear(3, 4), gf.nn.Tanh(), gf.nn.Linear(4, 2))


def test_an_optimizer_step_between_two_backwards_raises():
    model = _model()
    optimizer = gf.optim.SGD(model.parameters(), lr=0.1)
    loss = (model(gf.randn(5, 3)) ** 2).sum()
    loss.backward(retain_graph=True)
    optimizer.step()
    with pytest.raises(InplaceModificationError, match=r"'linear' in module '2'.*input 1 of 'linear'.*"
                                                        r"float32 tensor of shape \(2, 4\), is at version 2"):
        loss.backward()
    assert isinstance(InplaceModificationError("x"), RuntimeError)


def test_a_training_loop_never_raises_and_counts_versions():
    model = _model()
    weight = model[0].weight
    assert weight._version == 1                      # nn.init wrote it once
    for optimizer in (gf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), gf.optim.Adam(model.parameters())):
        for _ in range(3):
            optimizer.zero_grad(set_to_none=False)
            (model(gf.randn(5, 3)) ** 2).sum().backward()
            optimizer.step()
    assert weight._version == 7


def _assign(w):
    w.data = w.data * 2.0


def _isub(w):
    w.data -= 1.0                                      # in place, then assigned back: seen


def _load(w):
    layer = gf.nn.Linear(3, 4)
    layer.weight = w
    layer.load_state_dict({"weight": np.ones((4, 3), np.float32)}, strict=False)


@pytest.mark.parametrize("write", [_assign, _isub, lambda w: gf.nn.init.constant_(w, 0.5), _load],
                         ids=["assign", "isub", "init", "load_state_dict"])
def test_writes_after_saving_raise(write):
    w = gf.nn.Parameter(gf.randn(4, 3))
    x = gf.randn(2, 3, requires_grad=True)
    out = F.linear(x, w).sum()                         # saves w (x needs a gradient)
    write(w)
    assert w._version == 1
    with pytest.raises(InplaceModificationError, match=r"shape \(4, 3\)"):
        out.backward()


def test_recomputing_after_the_write_is_fine_and_exact():
    w = gf.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    x = gf.tensor(np.ones((1, 3)), requires_grad=True)
    F.linear(x, w).sum().backward()
    w.data -= 1.0                                      # the manual SGD idiom
    x.grad = None
    F.linear(x, w).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [(np.arange(6.0).reshape(2, 3) - 1).sum(axis=0)])


def test_custom_function_saved_tensors_are_checked():
    class Square(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2.0 * g * x

    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = Square.apply(x).sum()
    x.data = x.data + 1.0
    with pytest.raises(InplaceModificationError, match="'Square'"):
        y.backward()


def test_tensors_kept_by_a_pack_hook_are_checked():
    w = gf.nn.Parameter(gf.randn(4, 3))
    with gf.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        out = F.linear(gf.randn(2, 3, requires_grad=True), w).sum()
    gf.autograd.graph.increment_version(w)
    with pytest.raises(InplaceModificationError):
        out.backward()


def test_writes_into_the_array_itself_are_not_seen():
    # Documented limit (like PyTorch's .data): the array .numpy() returns is an escape hatch.
    w = gf.tensor(np.ones((2, 3)), requires_grad=True)
    x = gf.tensor(np.ones((1, 3)), requires_grad=True)
    out = F.linear(x, w).sum()
    w.numpy()[...] = 2.0
    out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[4.0, 4.0, 4.0]])
    assert w._version == 0


def test_a_write_during_backward_is_caught_by_the_nodes_still_to_run():
    # The engine checks a node's saved tensors when any write came after the node was made
    # (node.py's last_write); a hook that writes mid-backward must still be seen.
    w = gf.nn.Parameter(gf.randn(4, 3))
    y = F.linear(gf.randn(2, 3, requires_grad=True), w)   # saves w
    y.register_hook(lambda g: _isub(w))
    with pytest.raises(InplaceModificationError, match="'linear'"):
        (y * 2.0).sum().backward()


def test_a_write_from_another_thread_is_caught():
    import threading

    w = gf.nn.Parameter(gf.randn(4, 3))
    out = F.linear(gf.randn(2, 3, requires_grad=True), w).sum()
    writer = threading.Thread(target=_isub, args=(w,))
    writer.start()
    writer.join()
    with pytest.raises(InplaceModificationError, match="'linear'"):
        out.backward()
