"""softmax, log_softmax and the fused softmax cross-entropy.

All three are computed stably (shifted by the row maximum). Cross-entropy's first-order backward
is the fused kernel ``(softmax - onehot) * scale`` that reads the logits once; its differentiable
rule recomputes softmax in gradflow ops so the loss can be differentiated twice.
"""
from __future__ import annotations

import numpy as np

from ..backends import of_array
from ..errors import ClassIndexError, DTypeError, ShapeError, check_axis
from ..tensor import Tensor, _axis_alias
from .autocast import to_float32
from .elementwise import exp
from .reduce import sum
from .registry import apply, constant, data_of, primitive
from .shape import unsqueeze
from .autocast import float32_under_autocast


@primitive("softmax", save=("out",))
def _softmax(backend, x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    # exp in place: one L×S buffer instead of two in attention (a 0-d x gives a NumPy scalar).
    shifted = backend.xp.exp(shifted, out=shifted) if x.ndim else backend.xp.exp(shifted)
    shifted /= shifted.sum(axis=axis, keepdims=True)
    return shifted


@_softmax.vjp
def _softmax_vjp(ctx, g):
    (out,) = ctx.saved
    axis = ctx.params["axis"]
    return out * (g - sum(g * out, axis=axis, keepdims=True))


@_softmax.fast_vjp
def _softmax_fast_vjp(ctx, g):
    # The VJP rule's out·(g - Σ g·out) in one temporary instead of three: the products' buffer,
    # once summed, takes g - Σ and is then scaled by out in place.
    (out,) = ctx.saved
    product = g * out
    if product.ndim == 0:
        return (out * (g - product),)
    from ..backends import of_array

    total = product.sum(axis=ctx.params["axis"], keepdims=True)
    grad = of_array(product).xp.subtract(g, total, out=product)
    grad *= out
    return (grad,)


@_softmax.jvp
def _softmax_jvp(ctx, t):
    # The softmax Jacobian diag(p) - p pᵀ is symmetric, so the JVP has the VJP's form.
    out = ctx.out
    return out * (t - sum(t * out, axis=ctx.params["axis"], keepdims=True))


@primitive("log_softmax", save=("out",))
def _log_softmax(backend, x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - backend.xp.log(backend.xp.exp(shifted).sum(axis=axis, keepdims=True))


@_log_softmax.vjp
def _log_softmax_vjp(ctx, g):
    (out,) = ctx.saved
    return g - exp(out) * sum(g, axis=ctx.params["axis"], keepdims=True)


@_log_softmax.jvp
def _log_softmax_jvp(ctx, t):
    return t - sum(exp(ctx.out) * t, axis=ctx.params["axis"], keepdims=True)


@float32_under_autocast
def softmax(x, axis=-1, *, dim=None):
    """exp(x) / sum(exp(x)) along ``axis`` (last by default), computed stably."""
    return _softmax(x, axis=_softmax_axis(x, _axis_alias(None if dim is not None else axis, dim)))


@float32_under_autocast
def log_softmax(x, axis=-1, *, dim=None):
    """log(softmax(x)) along ``axis``, without forming softmax (stable for large logits)."""
    return _log_softmax(x, axis=_softmax_axis(x, _axis_alias(None if dim is not None else axis, dim)))


def _softmax_axis(x, axis):
    """The axis checked against ``x``; a 0-d tensor takes 0 or -1 (PyTorch) and normalizes over
    no axis, so its softmax is 1 and its log_softmax 0."""
    if axis is None:
        return None
    axis = check_axis(axis, x.ndim, x.shape)
    return axis if x.ndim else ()


@primitive("cross_entropy", save=("logits", "labels"))
def _cross_entropy(backend, logits, labels, reduction):
    return backend.kernels.softmax_xent_forward(logits, labels, reduction=reduction)


def _row_scale(ctx, g):
    reduction = ctx.params["reduction"]
    return g * (1.0 / ctx.shapes[0][0]) if reduction == "mean" else g


@_cross_entropy.fast_vjp
def _cross_entropy_fast_vjp(ctx, g):
    logits, labels = ctx.saved
    # g is read by the kernel on the device and 1/N passed by value: no multiply, no copy.
    factor = 1.0 / logits.shape[0] if ctx.params["reduction"] == "mean" and logits.shape[0] else 1.0
    return of_array(g).kernels.softmax_xent_backward(logits, labels, g, factor), None


@_cross_entropy.vjp
def _cross_entropy_vjp(ctx, g):
    logits, labels = ctx.saved
    from ..backends import of_array

    xp = of_array(logits.data).xp
    onehot = xp.zeros_like(logits.data)
    onehot[xp.arange(onehot.shape[0]), labels.data] = 1
    scale = _row_scale(ctx, g)
    if ctx.params["reduction"] == "none":
        scale = unsqueeze(scale, 1)
    return (softmax(logits, axis=1) - Tensor(onehot)) * scale, None


@_cross_entropy.jvp
def _cross_entropy_jvp(ctx, t, t_labels):
    # Each row's loss changes by <softmax - onehot, t_row>; then the same reduction as forward.
    logits, labels = ctx.inputs
    from ..backends import of_array

    xp = of_array(logits.data).xp
    onehot = xp.zeros_like(logits.data)
    onehot[xp.arange(onehot.shape[0]), labels.data] = 1
    per_row = sum((softmax(logits, axis=1) - Tensor(onehot)) * t, axis=1)
    reduction = ctx.params["reduction"]
    if reduction == "none":
        return per_row
    total = sum(per_row)
    return total * (1.0 / logits.shape[0]) if reduction == "mean" else total


def check_class_labels(name, labels, rows, n_classes, reduction, what):
    """Integer labels, one per row of ``what``, in [0, n_classes), and a known reduction.

    On the CPU the range is checked here; a device checks it in its kernel and reports when the
    loss is read (cuda_kernels' Note [labels are checked when the loss is read]): reading labels
    here would stall every step on two device-to-host copies.
    """
    if labels.dtype.kind not in "iu":
        raise DTypeError(f"{name} expects integer class labels, got dtype {labels.dtype}")
    if labels.shape != (rows,):
        raise ShapeError(f"{name}: {rows} rows of {what} but labels of shape {labels.shape}; expected ({rows},)")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if labels.data.size and type(labels.data) is np.ndarray:
        low, high = int(np.minimum.reduce(labels.data, axis=None)), int(np.maximum.reduce(labels.data, axis=None))
        if low < 0 or high >= n_classes:
            raise ClassIndexError(f"{name}: labels must lie in [0, {n_classes}) for {n_classes} classes, "
                                  f"got values from {low} to {high}")


def cross_entropy(logits, labels, reduction="mean"):
    """Softmax cross-entropy of (N, C) logits against N integer class labels (mean by default).

    Numerically stable for any logits; the backward is the fused ``softmax - onehot``.
    """
    if not isinstance(labels, Tensor):
        from ..tensor import tensor

        labels = tensor(labels, device=logits.device)
    logits = to_float32(logits)  # under autocast the loss runs in float32 (ops/autocast.py)
    if logits.ndim != 2:
        raise ShapeError(f"cross_entropy expects logits of shape (N, C), got {logits.shape}")
    rows, n_classes = logits.shape
    check_class_labels("cross_entropy", labels, rows, n_classes, reduction, f"logits {logits.shape}")
    return _cross_entropy(logits, labels, reduction=reduction)


def checked_cross_entropy(logits, labels, reduction):
    """``cross_entropy`` for a caller that has made its checks already (nn.functional's
    cross_entropy): reading the labels' range twice cost the textbook step two more reductions."""
    logits = to_float32(logits)
    if isinstance(logits, Tensor):  # apply itself: calling the op would pack its arguments once more
        return apply(_cross_entropy, (logits, labels), {"reduction": reduction})
    return _cross_entropy(logits, labels, reduction=reduction)


def checked_cross_entropy_ignoring(logits, labels, reduction, ignore_index):
    """``checked_cross_entropy`` skipping the labels equal to ``ignore_index`` (the note
    [ignore_index on a device] below)."""
    return _cross_entropy_ignoring(to_float32(logits), labels, reduction=reduction, ignore_index=int(ignore_index))


# Note: [ignore_index on a device]
# Skipping the labels equal to ignore_index needs their count (a mean divides by it), and on a GPU
# counting them on the host would stall every step. So this op's kernels count them on the device:
# the forward's reduction also writes the count, which the node keeps (4 bytes for float32 logits,
# counted by the memory tracker like any kept array) for the backward kernel to divide by. The CPU
# keeps using ``cross_entropy`` above or the general composition, whose label checks are free there.
@primitive("cross_entropy_ignoring", save=("logits", "labels"), keeps=1)
def _cross_entropy_ignoring(backend, logits, labels, reduction, ignore_index):
    return backend.kernels.softmax_xent_forward_ignoring(logits, labels, ignore_index, reduction)


@_cross_entropy_ignoring.fast_vjp
def _cross_entropy_ignoring_fast_vjp(ctx, g):
    logits, labels, count = ctx.saved
    divisor = count if ctx.params["reduction"] == "mean" else None
    return of_array(g).kernels.softmax_xent_backward(
        logits, labels, g, 1.0, ignore_index=ctx.params["ignore_index"], divisor=divisor), None


def _kept_rows(logits, labels, ignore_index):
    """(onehot of the labels not ignored, 1.0 per row not ignored) as arrays of the logits' type."""
    xp = of_array(logits).xp
    kept = labels != ignore_index
    onehot = xp.zeros_like(logits)
    rows = xp.arange(logits.shape[0])
    onehot[rows[kept], labels[kept]] = 1
    return onehot, kept.astype(logits.dtype)[:, None]


def _per_count(ctx, count, value):
    """``value`` divided by the count of labels not ignored, for a mean (0/0 gives NaN)."""
    if ctx.params["reduction"] != "mean":
        return value
    with np.errstate(divide="ignore"):
        return value * constant(1.0 / count)


@_cross_entropy_ignoring.vjp
def _cross_entropy_ignoring_vjp(ctx, g):
    logits, labels, count = ctx.saved
    onehot, kept = _kept_rows(data_of(logits), data_of(labels), ctx.params["ignore_index"])
    scale = unsqueeze(g, 1) if ctx.params["reduction"] == "none" else _per_count(ctx, count, g)
    return (softmax(logits, axis=1) - constant(onehot)) * (constant(kept) * scale), None


@_cross_entropy_ignoring.jvp
def _cross_entropy_ignoring_jvp(ctx, t, t_labels):
    logits, labels = ctx.inputs
    onehot, kept = _kept_rows(logits.data, labels.data, ctx.params["ignore_index"])
    per_row = sum((softmax(logits, axis=1) - Tensor(onehot)) * Tensor(kept) * t, axis=1)
    if ctx.params["reduction"] == "none":
        return per_row
    count = kept.sum(dtype=np.float64 if kept.dtype == np.float64 else np.float32)
    return _per_count(ctx, count, sum(per_row))
