"""Losses with PyTorch's semantics, composed from the op table (so JVPs and double backward come free).

``cross_entropy`` keeps the fused softmax cross-entropy primitive (``ops/softmax.py``) for the
common case — (N, C) logits, class indices all in range, no label smoothing — and otherwise
composes ``log_softmax`` with ``nll_loss`` or with a probability target. Reductions follow
PyTorch: ``mean`` over class-index targets divides by the number of targets not equal to
``ignore_index`` (NaN when all are ignored); over probability targets, by N·d1·…
"""
from __future__ import annotations

import numpy as np

import math

from ..backends import of_array
from ..errors import ClassIndexError, DTypeError, ShapeError
from ..tensor import Tensor
from .activation import softplus
from .elementwise import abs, clip, log, where
from .reduce import sum
from .shape import getitem, reshape, transpose
from .softmax import _cross_entropy as _cross_entropy_op, checked_cross_entropy as _fused_cross_entropy, log_softmax
from .registry import apply as _apply
from .softmax import checked_cross_entropy_ignoring as _fused_cross_entropy_ignoring
from .autocast import float32_under_autocast

REDUCTIONS = ("mean", "sum", "none")
_max_reduce = np.maximum.reduce
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _check_reduction(name, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return sum(loss)
    return loss


def _as_target(target, like):
    if isinstance(target, Tensor):
        return target
    return Tensor(of_array(like.data).xp.asarray(target))


def _classes_last(x):
    """(N, C, d1, ...) as (N·d1·..., C): one row of class scores per target."""
    if x.ndim == 2:
        return x
    moved = transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))
    return reshape(moved, (-1, x.shape[1]))


def _check_class_target(name, scores, target):
    if target.dtype.kind not in "iu":
        raise DTypeError(f"{name}: class-index targets must be integers, got dtype {target.dtype}")
    expected = (scores.shape[0],) + tuple(scores.shape[2:])
    if tuple(target.shape) != expected:
        raise ShapeError(f"{name}: input of shape {scores.shape} needs a target of shape {expected}, "
                         f"got {target.shape}")


def _picked(name, log_probs, target, ignore_index):
    """(-log p[target] per kept target, keep mask as floats, number kept), flattened."""
    n_classes = log_probs.shape[1]
    rows = _classes_last(log_probs)
    labels = target.data.reshape(-1)
    xp = of_array(labels).xp
    keep = labels != ignore_index
    kept = labels[keep]
    if kept.size and (int(kept.min()) < 0 or int(kept.max()) >= n_classes):
        raise ClassIndexError(f"{name}: targets must lie in [0, {n_classes}) or equal ignore_index={ignore_index}, "
                         f"got values from {int(kept.min())} to {int(kept.max())}")
    safe = xp.where(keep, labels, 0)
    weight = Tensor(keep.astype(log_probs.dtype))
    picked = getitem(rows, (xp.arange(rows.shape[0]), safe))
    return rows, -picked * weight, weight, int(keep.sum())


def _index_reduce(loss, target_shape, count, reduction):
    if reduction == "none":
        return reshape(loss, tuple(target_shape))
    total = sum(loss)
    if reduction == "mean":
        return total * (1.0 / count if count else math.nan)
    return total


@float32_under_autocast
def nll_loss(log_probs, target, reduction="mean", ignore_index=-100):
    """Negative log-likelihood of class-index targets: ``-log_probs[n, target[n]]`` (PyTorch's).

    ``log_probs`` is (N, C) or (N, C, d1, ...), targets (N) or (N, d1, ...).

    >>> import gradflow as gf
    >>> gf.nn.functional.nll_loss(gf.tensor([[-1.0, -2.0]]), gf.tensor([1])).item()
    2.0
    """
    _check_reduction("nll_loss", reduction)
    target = _as_target(target, log_probs)
    if log_probs.ndim < 2:
        raise ShapeError(f"nll_loss expects input of shape (N, C) or (N, C, d1, ...), got {log_probs.shape}")
    _check_class_target("nll_loss", log_probs, target)
    _, loss, _, count = _picked("nll_loss", log_probs, target, ignore_index)
    return _index_reduce(loss, target.shape, count, reduction)


@float32_under_autocast
def cross_entropy(logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Softmax cross-entropy, PyTorch's semantics (mean over the targets by default).

    ``logits`` (N, C) or (N, C, d1, ...); ``target`` class indices (N) / (N, d1, ...) — entries
    equal to ``ignore_index`` contribute nothing — or class probabilities of the logits' shape.
    ``label_smoothing`` ε mixes the target with the uniform distribution: (1-ε) target + ε/C.
    The common case ((N, C), indices in range, no smoothing) is one fused op.

    >>> import gradflow as gf
    >>> round(gf.nn.functional.cross_entropy(gf.zeros(2, 4), gf.tensor([1, 3])).item(), 4)
    1.3863
    """
    if not label_smoothing and isinstance(logits, Tensor) and isinstance(target, Tensor) and reduction in REDUCTIONS:
        # The textbook case, checked on the arrays directly (each Tensor property is a Python
        # frame); anything else, or labels out of range, takes the general path below. With every
        # label a class and ignore_index none, no label is skipped.
        # The labels' range in one pass: viewed as unsigned, a negative label is huge.
        scores, labels = logits._data, target._data
        if (type(scores) is np.ndarray and type(labels) is np.ndarray and scores.ndim == 2
                and labels.dtype.kind in "iu" and labels.dtype.isnative and labels.shape == scores.shape[:1]
                and labels.size and not 0 <= ignore_index < scores.shape[1]
                and int(_max_reduce(labels.view(_UNSIGNED[labels.dtype.itemsize]), None)) < scores.shape[1]):
            # The fused op applied as checked_cross_entropy applies it (its to_float32 is the
            # identity here: the decorator has widened float16 logits already), one layer less.
            return _apply(_cross_entropy_op, (logits, target), {"reduction": reduction})
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    target = _as_target(target, logits)
    if logits.ndim < 2:
        raise ShapeError(f"cross_entropy expects logits of shape (N, C) or (N, C, d1, ...), got {logits.shape}")
    n_classes = logits.shape[1]
    if target.dtype.kind == "f":
        if tuple(target.shape) != tuple(logits.shape):
            raise ShapeError(f"cross_entropy: probability targets must have the logits' shape {logits.shape}, "
                             f"got {target.shape}")
        if label_smoothing:
            target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
        loss = -sum(log_softmax(logits, axis=1) * target, axis=1)
        return _reduce(loss, reduction)
    _check_class_target("cross_entropy", logits, target)
    labels = target.data
    if logits.ndim == 2 and not label_smoothing and labels.size:
        if type(labels) is not np.ndarray:
            # On a GPU, reading the labels' range would stall the host every step: the fused
            # kernels skip ignore_index and report other labels outside [0, C) when the loss is
            # read (the note [ignore_index on a device] in softmax.py).
            return _fused_cross_entropy_ignoring(logits, target, reduction, ignore_index)
        # (ufunc reduce: ndarray.min/max less their Python wrapper frames.) With every label a
        # class and ignore_index none, no label is skipped: the fused op without the count.
        if (not 0 <= ignore_index < n_classes and int(np.minimum.reduce(labels, axis=None)) >= 0
                and int(np.maximum.reduce(labels, axis=None)) < n_classes):
            return _fused_cross_entropy(logits, target, reduction)  # checked above
    rows, loss, weight, count = _picked("cross_entropy", log_softmax(logits, axis=1), target, ignore_index)
    if label_smoothing:
        uniform = -sum(rows, axis=1) * weight * (1.0 / n_classes)
        loss = loss * (1.0 - label_smoothing) + uniform * label_smoothing
    return _index_reduce(loss, target.shape, count, reduction)


def _elementwise_target(name, input, target, reduction):
    """The checked target of an elementwise loss: a known reduction, and a target (made a
    Tensor on the input's device) of the input's shape."""
    _check_reduction(name, reduction)
    target = _as_target(target, input)
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"{name}: input shape {input.shape} differs from target shape {target.shape}")
    return target


@float32_under_autocast
def binary_cross_entropy(input, target, reduction="mean"):
    """``-(t log p + (1 - t) log(1 - p))`` for probabilities ``input``; logs clamped at -100 as PyTorch.

    >>> import gradflow as gf
    >>> round(gf.nn.functional.binary_cross_entropy(gf.tensor([0.5]), gf.tensor([1.0])).item(), 4)
    0.6931
    """
    target = _elementwise_target("binary_cross_entropy", input, target, reduction)
    loss = -(target * clip(log(input), min=-100.0) + (1.0 - target) * clip(log(1.0 - input), min=-100.0))
    return _reduce(loss, reduction)


@float32_under_autocast
def binary_cross_entropy_with_logits(input, target, reduction="mean", pos_weight=None):
    """Sigmoid then binary cross-entropy, stably: ``(1 - t) x + (1 + (w - 1) t) softplus(-x)``.

    ``pos_weight`` w (broadcast over the last axis, one per class) weighs the positive term.

    >>> import gradflow as gf
    >>> round(gf.nn.functional.binary_cross_entropy_with_logits(gf.tensor([0.0]), gf.tensor([1.0])).item(), 4)
    0.6931
    """
    target = _elementwise_target("binary_cross_entropy_with_logits", input, target, reduction)
    log_weight = 1.0 if pos_weight is None else 1.0 + (_as_target(pos_weight, input) - 1.0) * target
    loss = (1.0 - target) * input + log_weight * softplus(-input)
    return _reduce(loss, reduction)


@float32_under_autocast
def mse_loss(input, target, reduction="mean"):
    """Mean squared error (``reduction`` 'mean', 'sum' or 'none')."""
    target = _elementwise_target("mse_loss", input, target, reduction)
    diff = input - target
    return _reduce(diff * diff, reduction)


@float32_under_autocast
def l1_loss(input, target, reduction="mean"):
    """Mean absolute error ``|input - target|``."""
    target = _elementwise_target("l1_loss", input, target, reduction)
    return _reduce(abs(input - target), reduction)


def _quadratic_near_zero(diff, threshold, quadratic_scale, linear_scale):
    distance = abs(diff)
    near = Tensor(distance.data < threshold)
    return where(near, diff * diff * quadratic_scale, (distance - 0.5 * threshold) * linear_scale)


@float32_under_autocast
def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """``0.5 d² / β`` where ``|d| < β``, else ``|d| - β/2`` (β = 0 is the L1 loss), as PyTorch."""
    target = _elementwise_target("smooth_l1_loss", input, target, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    if beta == 0:
        return _reduce(abs(input - target), reduction)
    return _reduce(_quadratic_near_zero(input - target, beta, 0.5 / beta, 1.0), reduction)


@float32_under_autocast
def huber_loss(input, target, reduction="mean", delta=1.0):
    """``0.5 d²`` where ``|d| < δ``, else ``δ (|d| - δ/2)`` (PyTorch's; δ · smooth_l1 with β = δ)."""
    target = _elementwise_target("huber_loss", input, target, reduction)
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    return _reduce(_quadratic_near_zero(input - target, delta, 0.5, delta), reduction)
