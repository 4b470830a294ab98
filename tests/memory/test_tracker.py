"""The tracker's byte accounting: the textbook's hand derivation, dedup, freeing, the allocator."""
import gc

import numpy as np

import gradflow as gf
import gradflow.memory as M
import gradflow.nn.functional as F

from memory_models import D, H, Q, make_batch, textbook_loss


def test_textbook_retained_bytes_equal_the_hand_derivation(textbook):
    # README.md: h = relu(z) (N×H) and the logits o (N×Q) are kept, float32: 4·N·(H + Q) bytes.
    n = 64
    x, y = make_batch(n)
    with M.track(textbook) as t:
        loss = textbook_loss(textbook)(textbook(x), y)
    assert t.retained_bytes == 4 * n * (H + Q) == 68096
    assert t.saved_input_bytes == 4 * n * D + 8 * n                # x, labels (l2_penalty saves only W)
    assert t.saved_parameter_bytes == t.parameter_bytes == 4 * (H * D + Q * H)
    assert t.by_op() == {"relu": {"bytes": 4 * n * H, "share": H / (H + Q), "count": 1},
                         "cross_entropy": {"bytes": 4 * n * Q, "share": Q / (H + Q), "count": 1}}
    assert set(t.by_module()) == {"1", "(top level)"}
    loss.backward()
    assert t.retained_bytes == 0 and t.peak_bytes == 4 * n * (H + Q)
    assert t.gradient_bytes == t.parameter_bytes
    assert "relu" in t.report() and t.to_dict()["by_op"]["relu"]["bytes"] == 4 * n * H


def test_a_view_and_a_shared_tensor_are_counted_once():
    W = gf.randn(8, 4, requires_grad=True)
    h = gf.randn(3, 4, requires_grad=True) * 2.0   # an activation
    with M.track() as t:
        out = (h @ W.T).sum() + (h * h).sum()      # W.T is W's memory; h saved by two nodes
    assert t.saved_parameter_bytes == W.nbytes
    assert t.retained_bytes == h.nbytes
    out.backward()


def test_no_grad_retains_nothing_and_a_dropped_graph_frees(textbook):
    x, y = make_batch(32)
    with M.track() as t, gf.no_grad():
        textbook(x)
    assert t.peak_bytes == 0
    with M.track() as t:
        loss = F.cross_entropy(textbook(x), y)
    assert t.retained_bytes > 0
    del loss
    assert t.retained_bytes == 0


def test_retained_bytes_agree_with_tracemalloc(six_layer):
    x, y = make_batch(512)
    for _ in range(2):  # the first pass also allocates one-time caches
        gc.collect()
        with M.meter() as m, M.track() as t:
            loss = F.cross_entropy(six_layer(x), y)
            held = m.current
        assert abs(held - t.retained_bytes) <= max(0.02 * t.retained_bytes, 64 * 1024), (held, t.retained_bytes)
        loss.backward()
        six_layer.zero_grad()


def test_backward_returns_memory_to_the_pre_forward_level_over_100_steps():
    gf.manual_seed(1)
    model = gf.nn.MLP([64, 128, 128, 10])
    x, y = make_batch(128, d=64)

    def step():
        F.cross_entropy(model(x), y).backward()
        model.zero_grad()  # to None: memory allocated before the meter started is invisible to it

    step()
    gc.collect()
    with M.meter() as m:
        for _ in range(100):
            step()
        gc.collect()
        leaked = m.current
    assert leaked < 16 * 1024, leaked
    assert not gf.autograd.node.observers


def test_retain_graph_keeps_buffers_until_the_graph_goes():
    w = gf.randn(16, 16, requires_grad=True)
    with M.track() as t:
        out = gf.tanh(gf.randn(4, 16) @ w).sum()
    out.backward(retain_graph=True)
    assert t.retained_bytes == 4 * 16 * 4
    out.backward()
    assert t.retained_bytes == 0
    np.testing.assert_allclose(w.grad.numpy().shape, (16, 16))


def test_live_nodes_are_the_savers_not_yet_freed(textbook):
    x, y = make_batch(4)
    with M.track() as t:
        loss = F.cross_entropy(textbook(x), y)
    nodes = t.live_nodes()
    names = [n.op.name for n in nodes]            # how linear layers decompose is not pinned
    assert names.index("relu") < names.index("cross_entropy") == len(names) - 1
    assert [n.seq for n in nodes] == sorted(n.seq for n in nodes)
    assert nodes[names.index("relu")].module == "1"   # the MLP's second layer
    loss.backward()
    assert t.live_nodes() == []
