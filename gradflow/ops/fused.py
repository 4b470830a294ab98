"""Fused linear + activation: ``φ(x Wᵀ + b)`` as one primitive per activation (``linear_relu``...).

# Note: [fusing the linear layer's epilogue]
Forward is one GEMM (cuBLAS / BLAS) and one pass of the kernel table's ``bias_act_forward``:
``z = x Wᵀ + b`` is never written, only ``h = φ(z)``. Backward is one pass of
``bias_act_backward`` (``gz = g ⊙ φ'(h)`` and the bias gradient ``gb = Σ_rows gz`` together) and
the two GEMMs of ``linear``, with ``gW`` added straight into an existing ``.grad`` (beta = 1).
Compared with ``linear`` then ``relu`` that saves one write and one read of z forward, and one
read of gz backward; the graph has one node instead of two.

This only pays for activations whose derivative can be written from the output (relu, sigmoid,
tanh, softplus: ``FUSED_ACTIVATIONS``). The others (gelu, silu, leaky_relu) need z itself in
backward, so z would have to be written anyway; ``nn.MLP`` composes ``linear`` and the
activation for them.

The node saves x (if W needs a gradient), W (if x does) and h — exactly what ``linear`` and the
activation save when unfused, so memory reports agree whether a model fuses or not.
"""
from __future__ import annotations

from ..autograd import node as _node
from ..backends import of_array
from ..backends.numpy_kernels import ACTIVATION_SAVES
from .activation import DERIVATIVES
from .linalg import as_rows, linear_tangent, product_grad_arrays, product_grads
from .reduce import sum
from .registry import Op, primitive

FUSED_ACTIVATIONS = tuple(name for name, saves in ACTIVATION_SAVES.items() if saves == "out")


def _flops(arrays, out):
    # GEMM (2·M·N·K), then the bias add and φ: one each per output element.
    return 2 * out.size * arrays[0].shape[-1] + 2 * out.size


def _make(name) -> Op:
    derivative = DERIVATIVES[name]

    def forward(backend, x, weight, bias):
        # h is written over x Wᵀ, a fresh array nothing else holds: no third batch-sized buffer.
        # The kernel takes (rows, features): a 1-D or batched input is folded into that and back.
        product = x @ weight.T
        rows = product if product.ndim == 2 else product.reshape(-1, bias.shape[0])
        backend.kernels.bias_act_forward(name, rows, bias, out=rows)
        return product

    op = primitive(f"linear_{name}", save=("x", "weight", "out"), save_when=("weight", "x", None),
                   same_dtype=True, flops=_flops)(forward)
    op.doc = f"{name}(x @ weight.T + bias) in one op; backward reads only x, weight and the output."
    op.reuses_grad = True

    @op.vjp
    def vjp(ctx, g):
        out = ctx.saved[2]
        gz = g * derivative(out, 0.0)
        gx, gw = product_grads(ctx, gz)
        gb = sum(as_rows(gz, ctx.shapes[2][0]), axis=0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb

    @op.fast_vjp_into(1)
    def grad_arrays(ctx, g, weight_grad):
        if g.dtype != ctx.out_dtype or g.dtype.kind != "f":
            return vjp(ctx, g)  # a rule upstream changed dtype: the composed rule promotes
        out_features = ctx.shapes[2][0]
        g_rows = as_rows(g, out_features)
        # gz may go over g when the engine says nothing else can see g (see autograd/node.py),
        # and h can go before the GEMMs allocate gX and gW: at most two batch-sized gradients
        # and no dead activation are held at once, as when linear and φ are separate nodes.
        x, weight, out = ctx.saved  # read once (Node.saved builds its tuple per call)
        gz, gb = of_array(g).kernels.bias_act_backward(
            name, g_rows, as_rows(out, out_features), out=g_rows if _node.may_overwrite(g) else None)
        out = None  # h held by nothing here when release_saved lets the node's reference go
        ctx.release_saved(2)
        gx, gw = product_grad_arrays(ctx, gz, weight_grad, (x, weight))
        return gx, gw, gb if ctx.needs_input_grad[2] else None

    @op.jvp
    def jvp(ctx, tx, tw, tb):
        tangent = linear_tangent(ctx, tx, tw, tb)
        return None if tangent is None else tangent * derivative(ctx.out, 0.0)

    return op


LINEAR_ACTIVATIONS = {name: _make(name) for name in FUSED_ACTIVATIONS}
