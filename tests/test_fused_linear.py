"""The fused linear + activation ops (gradflow/ops/fused.py) and MLP's use of them.

The op table checks each fused op against finite differences, second order and forward mode;
here: the closed-form gradients, that a fused MLP computes exactly what the op-by-op MLP does and
keeps the same bytes, which kernels run, and the errors.
"""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.backends import dispatch
from gradflow.errors import DTypeError, ShapeError
from graph_nodes import graph_nodes

rng = np.random.default_rng(7)


def _tensors(*shapes, dtype=np.float64):
    return [gf.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]


def test_relu_layer_gradients_match_the_closed_form():
    # h = relu(x Wᵀ + b), L = Σ c ⊙ h:  gz = c ⊙ 1[z > 0], gW = gzᵀ x, gb = Σ_rows gz, gx = gz W.
    x, w, b = _tensors((6, 5), (4, 5), (4,))
    c = rng.standard_normal((6, 4))
    (F.linear_act(x, w, b, "relu") * gf.tensor(c)).sum().backward()
    z = x.numpy() @ w.numpy().T + b.numpy()
    gz = c * (z > 0)
    np.testing.assert_allclose(w.grad.numpy(), gz.T @ x.numpy(), rtol=1e-13)
    np.testing.assert_allclose(b.grad.numpy(), gz.sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(x.grad.numpy(), gz @ w.numpy(), rtol=1e-13)


def test_tanh_layer_gradients_match_the_closed_form():
    x, w, b = _tensors((3, 2, 5), (4, 5), (4,))   # batched input: rows are the first two axes
    F.linear_act(x, w, b, "tanh").sum().backward()
    h = np.tanh(x.numpy() @ w.numpy().T + b.numpy())
    gz = (1 - h * h).reshape(-1, 4)
    np.testing.assert_allclose(w.grad.numpy(), gz.T @ x.numpy().reshape(-1, 5), rtol=1e-13)
    np.testing.assert_allclose(b.grad.numpy(), gz.sum(axis=0), rtol=1e-13)


def _mlp_pair(activation, sizes=(5, 7, 6, 3), dtype="float64"):
    fused = gf.nn.MLP(list(sizes), activation=activation, dtype=dtype)
    plain = gf.nn.MLP(list(sizes), activation=activation, dtype=dtype, fused=False)
    plain.load_state_dict(fused.state_dict())     # same modules and names: one checkpoint loads into both
    return fused, plain


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softplus", "gelu"])
def test_fused_mlp_computes_what_the_op_by_op_mlp_computes(activation):
    fused, plain = _mlp_pair(activation)
    x = rng.standard_normal((8, 5))
    labels = gf.tensor(rng.integers(0, 3, 8))
    losses = []
    for model in (fused, plain):
        loss = F.cross_entropy(model(gf.tensor(x)), labels)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-14)
    for (name, p), q in zip(fused.named_parameters(), plain.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12, atol=1e-15, err_msg=name)


def test_hessian_vector_products_agree_fused_and_unfused():
    fused, plain = _mlp_pair("tanh")
    x = gf.tensor(rng.standard_normal((4, 5)))
    v = [gf.tensor(rng.standard_normal(p.shape)) for p in fused.parameters()]
    hvps = []
    for model in (fused, plain):
        params = list(model.parameters())
        grads = gf.autograd.grad((model(x) ** 2).sum(), params, create_graph=True)
        dot = sum((g * t).sum() for g, t in zip(grads, v))
        hvps.append([h.numpy() for h in gf.autograd.grad(dot, params)])
    for a, b in zip(*hvps):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("activation, hidden_ops", [
    ("relu", {"linear_relu"}), ("softplus", {"linear_softplus"}),
    ("gelu", {"linear", "gelu"}),            # φ' needs z itself: nothing to gain, not fused
])
def test_which_layers_fuse(activation, hidden_ops):
    model = gf.nn.MLP([4, 5, 5, 2], activation=activation)
    names = {node.name for node in graph_nodes(model(gf.randn(3, 4)).grad_fn)}
    assert names == hidden_ops | {"linear"}


def test_softplus_with_another_beta_and_layers_without_bias_are_not_fused():
    model = gf.nn.MLP([4, 5, 2], activation="softplus")
    model[1].beta = 2.0
    assert "linear_softplus" not in {n.name for n in graph_nodes(model(gf.randn(3, 4)).grad_fn)}
    no_bias = gf.nn.MLP([4, 5, 2], bias=False)
    assert {n.name for n in graph_nodes(no_bias(gf.randn(3, 4)).grad_fn)} == {"linear", "relu"}


def test_each_fused_layer_runs_one_forward_and_one_backward_kernel():
    model = gf.nn.MLP([16, 32, 32, 32, 4])                       # three hidden layers
    x, labels = gf.randn(10, 16), gf.randint(0, 4, (10,))
    with dispatch.counting() as forward:
        loss = F.cross_entropy(model(x), labels)
    with dispatch.counting() as backward:
        loss.backward()
    assert forward.rows[("kernel", "bias_act_forward")].calls == 3
    assert ("kernel", "act_forward") not in forward.rows
    assert backward.rows[("kernel", "bias_act_backward")].calls == 3
    assert ("kernel", "act_backward") not in backward.rows
    # gX and gW of every layer by gemm (the first layer's input needs no gradient): 3 + 4.
    assert backward.rows[("kernel", "gemm")].calls == 7


def test_fused_and_unfused_retain_the_same_bytes():
    fused, plain = _mlp_pair("relu", sizes=(32, 64, 64, 10), dtype="float32")
    x = gf.randn(128, 32)
    retained, by_kind = [], []
    for model in (fused, plain):
        with gf.memory.track(model) as tracker:
            loss = model(x).sum()
            retained.append(tracker.retained_bytes)
            by_kind.append(dict(tracker.live))
        loss.backward()
    # Activations: the two hidden outputs (each saved once, by its layer and by the next).
    assert retained[0] == retained[1] == 2 * 128 * 64 * 4
    assert by_kind[0] == by_kind[1]     # inputs and parameters too


def test_weight_gradient_is_added_into_the_engines_own_buffer():
    x, w, b = _tensors((16, 8), (12, 8), (12,))

    def step():
        F.linear_act(x, w, b, "sigmoid").sum().backward()

    step(), step()
    # ._grad: reading .grad would hand the array out, and the engine would stop adding into it.
    owned = w._grad.data.ctypes.data
    for _ in range(3):
        step()
        assert w._grad.data.ctypes.data == owned
    h = 1 / (1 + np.exp(-(x.numpy() @ w.numpy().T + b.numpy())))
    np.testing.assert_allclose(w.grad.numpy(), 5 * (h * (1 - h)).T @ x.numpy(), rtol=1e-12)


def test_bad_arguments_raise_clear_errors():
    x, w, b = _tensors((3, 4), (5, 4), (5,))
    with pytest.raises(ValueError, match="unknown activation 'relu6'"):
        F.linear_act(x, w, b, "relu6")
    with pytest.raises(ShapeError, match=r"bias of shape \(4,\)"):
        F.linear_act(x, w, gf.zeros(4, dtype="float64"), "relu")
    with pytest.raises(ShapeError, match="input has 3 features"):
        F.linear_act(gf.randn(2, 3, dtype="float64"), w, b, "tanh")
    with pytest.raises(DTypeError, match="float32"):
        F.linear_act(x, w, gf.zeros(5, dtype="float32"), "relu")


def test_fused_mlp_peaks_no_higher_than_the_op_by_op_mlp():
    # Forward writes h over x Wᵀ, and backward writes gz over g when the engine says nothing else
    # sees g: without those the fused model would hold one more batch-sized buffer at each peak.
    import gradflow.memory as M

    def make(n):
        return gf.randn(n, 32), gf.randint(0, 10, (n,))

    peaks = {}
    for fused in (True, False):
        gf.manual_seed(0)
        step = M.measure_step(gf.nn.MLP([32, 256, 256, 256, 10], fused=fused), make, 512)
        peaks[fused] = step["training_peak"], step["inference_peak"]
    # One batch-sized buffer is 512 KB here (the unfixed fused op held one more); the allowance
    # is for Python's own small allocations, which differ by a few hundred bytes run to run.
    allowance = 16 * 1024
    assert peaks[True][0] <= peaks[False][0] + allowance
    assert peaks[True][1] <= peaks[False][1] + allowance


def _spy_on_gradient_reuse(monkeypatch):
    """Record, per bias_act_backward call, whether gz was written over the incoming gradient."""
    from gradflow.backends import NUMPY

    reused, plain = [], NUMPY.kernels.bias_act_backward

    def spy(name, g, saved, alpha=0.01, out=None):
        reused.append(out is g)
        return plain(name, g, saved, alpha, out=out)

    monkeypatch.setattr(NUMPY.kernels, "bias_act_backward", spy)
    return reused


def test_gradient_is_overwritten_only_where_nothing_else_can_see_it(monkeypatch):
    reused = _spy_on_gradient_reuse(monkeypatch)
    fused, plain = _mlp_pair("tanh", sizes=(5, 6, 6, 6, 3))
    x = gf.tensor(rng.standard_normal((4, 5)))
    F.cross_entropy(fused(x), gf.tensor([0, 1, 2, 0])).backward()
    assert reused == [True, True, True]        # each hidden layer's g came fresh from a gemm

    # Now the gradients reaching two of the layers are visible to a hook and to retain_grad.
    reused.clear()
    seen = {}
    h1 = fused[0](x, activation="tanh")
    h2 = fused[2](h1, activation="tanh")
    h2.register_hook(lambda g: seen.setdefault("h2", g))
    h3 = fused[4](h2, activation="tanh")
    h3.retain_grad()
    F.cross_entropy(fused[6](h3), gf.tensor([0, 1, 2, 0])).backward()
    assert reused == [False, False, True]      # h3's (retained) and h2's (hooked) were not reused

    q1 = plain[1](plain[0](x))
    q2 = plain[3](plain[2](q1))
    q2.retain_grad()
    q3 = plain[5](plain[4](q2))
    q3.retain_grad()
    F.cross_entropy(plain[6](q3), gf.tensor([0, 1, 2, 0])).backward()
    np.testing.assert_allclose(h3.grad.numpy(), q3.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(seen["h2"].numpy(), q2.grad.numpy(), rtol=1e-13)


def test_tracker_follows_outputs_released_early_and_retain_graph_keeps_them():
    model = gf.nn.MLP([32, 64, 64, 10])
    x = gf.randn(128, 32)
    with gf.memory.track(model) as tracker:
        loss = model(x).sum()
        loss.backward(retain_graph=True)            # nothing may be released early here
        assert tracker.retained_bytes == 2 * 128 * 64 * 4
        first = [p.grad.numpy().copy() for p in model.parameters()]
        loss.backward()                             # frees as it goes, h before each layer's GEMMs
        assert tracker.retained_bytes == 0
    assert tracker.to_dict()["by_op"]["linear_relu"]["bytes"] == 2 * 128 * 64 * 4
    for p, once in zip(model.parameters(), first):
        np.testing.assert_allclose(p.grad.numpy(), 2 * once, rtol=1e-6)


def test_fused_layers_inside_a_checkpoint_give_the_same_gradients():
    # The checkpoint reruns them in a nested backward, where g may be written over and h let go.
    x0 = rng.standard_normal((8, 5))
    x, w1, b1, w2, b2 = _tensors((8, 5), (6, 5), (6,), (3, 6), (3,))
    grads = []
    for checkpointed in (False, True):
        for t in (x, w1, b1, w2, b2):
            t.grad = None
        x.data[...] = x0

        def layers(h):
            return F.linear_act(F.linear_act(h, w1, b1, "tanh"), w2, b2, "sigmoid")

        out = gf.checkpoint(layers, x) if checkpointed else layers(x)
        (out * out).sum().backward()
        grads.append([t.grad.numpy() for t in (x, w1, b1, w2, b2)])
    for plain, recomputed in zip(*grads):
        np.testing.assert_allclose(recomputed, plain, rtol=1e-13)
