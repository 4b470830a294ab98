"""What the CNN layers keep for backward, byte for byte (gradflow/memory/README.md, "The CNN")."""
import json

import numpy as np
import pytest

import gradflow as gf
import gradflow.memory as M
import gradflow.nn.functional as F
import gradflow.viz  # noqa: F401
from gradflow.models import build
from test_memory_cli import gradflow_memory

# The README's derivation for build("cnn") on 1×8×8 images, float32, per example.
PER_EXAMPLE = {
    "batch_norm": 4 * 16 * 8 * 8 + 4 * 32 * 4 * 4,   # x̂ of each BatchNorm
    "relu": 4 * 16 * 8 * 8 + 4 * 32 * 4 * 4,         # each ReLU's output
    "max_pool2d": 16 * 4 * 4 + 32 * 2 * 2,           # one uint8 argmax per pooled output
    "conv2d": 4 * 16 * 4 * 4,                        # the second conv's input (the first pool's output)
    "linear": 4 * 32 * 2 * 2,                        # the flattened second pool's output
    "cross_entropy": 4 * 10,                         # the logits
}
FIXED = {"batch_norm": 4 * (16 + 32)}                # 1/σ per channel


def test_max_pool_keeps_only_narrow_argmax_indices():
    x = gf.randn(2, 3, 8, 8, requires_grad=True)
    with M.track() as t:
        out = F.max_pool2d(x * 1.0, 2)                 # an activation input, which max-pool does not keep
    (saved,) = [n["saved"] for n in t.nodes if n["op"] == "max_pool2d"]
    assert saved == [{"shape": (2, 3, 4, 4), "dtype": "uint8", "kind": "activation", "bytes": 96, "device": "cpu"}]
    assert t.by_op() == {"max_pool2d": {"bytes": 2 * 3 * 4 * 4, "share": 1.0, "count": 1}}
    assert gf.viz.saved_bytes(out.grad_fn) == 96                   # the graph drawing's count agrees
    out.sum().backward()
    assert t.retained_bytes == 0
    with M.track() as t:
        F.max_pool2d(gf.randn(1, 1, 17, 17, requires_grad=True), 16, stride=1)   # 256 cells: uint8 still
        F.max_pool2d(gf.randn(1, 1, 17, 17, requires_grad=True), 17)             # 289 cells: uint16
    assert [n["saved"][0]["dtype"] for n in t.nodes] == ["uint8", "uint16"]


def test_max_pool_options_keep_the_same_narrow_argmax():
    """ceil mode, dilation, return_indices and the 1-D pool keep one uint8 per output, nothing more:
    the int64 indices returned to the caller are the caller's, not the graph's."""
    x = gf.randn(2, 3, 7, 7, requires_grad=True)
    with M.track() as t:
        out, indices = F.max_pool2d(x * 1.0, 3, 2, 1, dilation=2, ceil_mode=True, return_indices=True)
        out1d = F.max_pool1d(gf.randn(2, 3, 9, requires_grad=True) * 1.0, 2, ceil_mode=True)
    assert out.shape == (2, 3, 3, 3) and indices.dtype == gf.int64 and out1d.shape == (2, 3, 5)
    assert [(n["saved"][0]["dtype"], n["saved"][0]["bytes"]) for n in t.nodes if n["op"] == "max_pool2d"] == [
        ("uint8", 2 * 3 * 3 * 3), ("uint8", 2 * 3 * 5)]
    assert t.by_op()["max_pool2d"]["bytes"] == 2 * 3 * 3 * 3 + 2 * 3 * 5


def test_batch_norm_keeps_xhat_and_inverse_std():
    x = gf.randn(4, 3, 5, 5, requires_grad=True) * 2.0
    weight, bias = gf.ones(3, requires_grad=True), gf.zeros(3, requires_grad=True)
    with M.track() as t:
        out = F.batch_norm(x, None, None, weight, bias, training=True)
    (saved,) = [n["saved"] for n in t.nodes if n["op"] == "batch_norm"]
    assert [(s["shape"], s["kind"], s["bytes"]) for s in saved] == [
        ((3,), "parameter", 12), ((4, 3, 5, 5), "activation", 4 * 300), ((3,), "activation", 12)]
    assert t.retained_bytes == 4 * 300 + 4 * 3            # x̂ and 1/σ; not x
    out.sum().backward()
    assert t.retained_bytes == 0


def test_avg_pool_and_interpolate_keep_nothing():
    x = gf.randn(2, 3, 6, 6, requires_grad=True) * 1.0
    with M.track() as t:
        outs = [F.avg_pool2d(x, 2), F.adaptive_avg_pool2d(x, (2, 3)), F.interpolate(x, scale_factor=2, mode="bilinear"),
                F.max_pool2d(x, 2)]
    assert all(o.requires_grad for o in outs)
    assert t.by_op() == {"max_pool2d": {"bytes": 2 * 3 * 3 * 3, "share": 1.0, "count": 1}}  # only the pool's argmax


@pytest.mark.parametrize("n", [1, 64])
def test_cnn_retained_bytes_equal_the_hand_derivation(n):
    gf.manual_seed(0)
    model = build("cnn")
    x, y = gf.randn(n, 64), gf.randint(0, 10, (n,))
    with M.track(model) as t:
        loss = F.cross_entropy(model(x), y)
    assert t.retained_bytes == 14248 * n + 192 == sum(PER_EXAMPLE.values()) * n + sum(FIXED.values())
    assert {op: v["bytes"] for op, v in t.by_op().items()} == {
        op: b * n + FIXED.get(op, 0) for op, b in PER_EXAMPLE.items()}
    loss.backward()
    assert t.retained_bytes == 0 and t.peak_bytes == 14248 * n + 192


def test_memory_profile_and_cli_fit_the_derivation(tmp_path):
    gf.manual_seed(0)
    model = build("cnn")
    result = M.profile(model, lambda n: (gf.randn(n, 64), gf.randint(0, 10, (n,))), [4, 8, 16])
    fit = result.fits["retained"]
    assert fit.per_example == pytest.approx(14248) and fit.fixed == pytest.approx(192, abs=1e-6)
    out = tmp_path / "cnn.json"
    run = gradflow_memory("--model", "cnn:1x8x8", "--batch-sizes", "4,8,16", "--device", "cpu", "--json", out,
                          "--no-progress", "--budget", "16MiB")
    assert run.returncode == 0, run.stderr
    summary = json.loads(out.read_text())
    assert summary["model"] == "cnn 1x8x8" and [row["retained"] for row in summary["rows"]] == [
        14248 * n + 192 for n in (4, 8, 16)]
    assert summary["max_batch"] > 16
    bad = gradflow_memory("--model", "cnn:8", "--batch-sizes", "4,8", "--no-progress")
    assert bad.returncode != 0 and "CxHxW" in bad.stderr
