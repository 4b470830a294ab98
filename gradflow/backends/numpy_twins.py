"""NumPy twins of the kernels the GPU step's launch budget added or changed (kernels/
softmax_xent.cu, optimizers.cu, bias_activation.cu's column sum); ``numpy_kernels`` imports them
into the NumPy kernel table.

They sit apart from ``numpy_kernels.py`` because they are the step's kernels, whose CUDA
counterparts in ``cuda_kernels`` share one launch-budget contract; each is a table entry with the
same name and arguments as its CUDA counterpart:

- ``softmax_xent_forward(logits, labels, bias=None, reduction="none")`` -> the loss of
  ``z = logits + bias``: per row ``log Σ e^(z - max) + (max - z[label])`` (the large terms cancel
  before they meet the small one), then reduced. Raises IndexError for a label outside [0, C).
- ``softmax_xent_forward_ignoring(logits, labels, ignore_index, reduction="none")`` ->
  ``(loss, count)``: rows whose label is ``ignore_index`` add nothing (0 under 'none'), a mean
  divides by ``count``, the number of other rows (0-d, the compute dtype; empty under 'none'),
  and 0/0 is NaN as in PyTorch.
- ``softmax_xent_backward(logits, labels, scale, factor=1.0, bias=None, ignore_index=None,
  divisor=None)`` -> ``(softmax(z) - onehot) * scale * factor / divisor``, ignored rows 0;
  ``scale`` a number, a 0-d array or one per row (the upstream gradient), ``factor`` 1/N for a
  mean, ``divisor`` the count from the forward.
- ``column_sum(a)`` -> ``a.sum(axis=0)``: a bias gradient from the gradient of ``x Wᵀ + b``.
- ``sgd_update_multi(params, grads, buffers, lr, ...)``: ``sgd_update`` on every tensor of a group
  (``buffers`` None without momentum).
- ``adam_update_multi(params, grads, exp_avgs, exp_avg_sqs, step, lr, ..., masters=None)``:
  ``adam_update`` on every tensor of a group; where ``masters[i]`` is given (float16 parameters)
  the update runs on those float32 master weights with float32 moments and the parameter gets
  the master rounded to its dtype. ``step_count`` (a 1-element int64 array holding the step
  number, already incremented for this step) replaces ``step``: the CUDA kernel then derives the
  bias corrections on the device, so a replayed CUDA graph sees each step's count.
"""
from __future__ import annotations

import math

import numpy as np

from .numpy_kernels import _SHORT_ROW, _row_max, _row_sum, adam_update, sgd_update


def _shifted_logits(logits, bias):
    return logits if bias is None else logits + bias


# Note: [the loss on the logits' columns]
# Logits rows are short (C classes), and NumPy reduces short rows slowly (numpy_kernels'
# _row_max): the general code below copies z transposed once for the row max and again for the
# row sum. For short rows the kernels copy z to (C, N) once and do everything there — the max, the
# exponentials in place, their sum — in the same order of operations, so the results are the
# same bit for bit, with a third fewer NumPy calls (the step's loss pays per call at small
# batches). The forward also skips the shift's finiteness fix-up (where(isfinite(max), max, 0)):
# a row whose max is not finite makes its loss NaN without it, so a NaN total sends the call
# to the general code, which gives the fixed-up result.
def softmax_xent_forward(logits, labels, bias=None, reduction="none"):
    z = _shifted_logits(logits, bias)
    rows, classes = z.shape
    if 0 < classes <= _SHORT_ROW and rows and reduction in ("mean", "sum") and z.dtype.itemsize >= 4:
        columns = z.T.copy()  # our own (C, N) array (ascontiguousarray may return z itself)
        row_max = np.maximum.reduce(columns, axis=0)
        np.subtract(columns, row_max, out=columns)
        log_sum = np.log(np.add.reduce(np.exp(columns, out=columns), axis=0))
        total = np.add.reduce(log_sum + (row_max - z[np.arange(rows), labels]))
        if total == total:  # not NaN: every row's max was finite (the note above)
            return total / rows if reduction == "mean" else total
    return _softmax_xent_forward(z, labels, reduction)


def _softmax_xent_forward(z, labels, reduction):
    row_max = _row_max(z)
    # A row of all -inf has max -inf; shift by 0 there so the result is NaN, as the kernel's.
    row_max = np.where(np.isfinite(row_max), row_max, 0)
    log_sum = np.log(_row_sum(np.exp(z - row_max))[:, 0])
    per_row = log_sum + (row_max[:, 0] - z[np.arange(z.shape[0]), labels])
    if reduction == "mean":  # np.mean's own arithmetic (float sum / count) without its Python layers
        # (float16 rows are summed in float32 by np.mean: left to it)
        if per_row.shape[0] and per_row.dtype.itemsize >= 4:
            return per_row.sum() / per_row.shape[0]
        return per_row.mean()
    if reduction == "sum":
        return per_row.sum()
    return per_row


def softmax_xent_forward_ignoring(logits, labels, ignore_index, reduction="none"):
    kept = labels != ignore_index
    per_row = softmax_xent_forward(logits, np.where(kept, labels, 0))
    per_row[~kept] = 0
    compute = np.float32 if logits.dtype == np.float16 else logits.dtype.type  # the kernels' compute_t
    if reduction == "none":
        return per_row, np.empty(0, dtype=compute)
    count = np.array(np.count_nonzero(kept), dtype=compute)
    total = per_row.sum(dtype=compute)
    if reduction == "mean":
        with np.errstate(invalid="ignore"):  # every label ignored: NaN, as PyTorch's mean
            total = total / count
    return np.array(total, dtype=logits.dtype), count


def softmax_xent_backward(logits, labels, scale, factor=1.0, bias=None, ignore_index=None, divisor=None):
    z = _shifted_logits(logits, bias)
    scale = np.asarray(scale, dtype=logits.dtype)
    if factor != 1.0:
        scale = scale * logits.dtype.type(factor)
    if ignore_index is not None:
        return _softmax_xent_backward_ignoring(z, labels, scale, ignore_index, divisor)
    rows, classes = z.shape
    if 0 < classes <= _SHORT_ROW and rows:  # on the columns (the note above)
        columns = z.T.copy()  # our own (C, N) array (ascontiguousarray may return z itself)
        np.subtract(columns, np.maximum.reduce(columns, axis=0), out=columns)
        np.exp(columns, out=columns)
        columns /= np.add.reduce(columns, axis=0)
        columns[labels, np.arange(rows)] -= 1
        # scaled back into the logits' (N, C) layout: a C-ordered array of its own, as below
        return np.multiply(columns.T, scale.reshape(-1, 1) if scale.ndim else scale, order="C")
    return _softmax_xent_backward(z, labels, scale)


def _softmax_xent_backward_ignoring(z, labels, scale, ignore_index, divisor):
    """The rows labelled ``ignore_index`` zero, the rest divided by ``divisor`` (the count)."""
    probs = np.exp(z - _row_max(z))
    probs /= _row_sum(probs)
    kept = labels != ignore_index
    probs[np.arange(z.shape[0])[kept], labels[kept]] -= 1
    probs[~kept] = 0
    if divisor is not None:
        scale = (scale / np.asarray(divisor).reshape(())).astype(z.dtype)
    probs *= scale.reshape(-1, 1) if scale.ndim else scale
    return probs


def _softmax_xent_backward(z, labels, scale):
    probs = np.exp(z - _row_max(z))
    probs /= _row_sum(probs)
    probs[np.arange(z.shape[0]), labels] -= 1
    probs *= scale.reshape(-1, 1) if scale.ndim else scale
    return probs


def column_sum(a):
    return a.sum(axis=0)


def adam_update_multi(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1=0.9, beta2=0.999,
                      eps=1e-8, weight_decay=0.0, decoupled=False, masters=None, step_count=None):
    if step_count is not None:
        step = int(step_count.reshape(-1)[0])  # the device-side counter (a host array here)
    if masters is None and not weight_decay:
        params, grads, exp_avgs, exp_avg_sqs = _adam_plain(params, grads, exp_avgs, exp_avg_sqs, step, lr,
                                                           beta1, beta2, eps)
    for i, (param, grad, exp_avg, exp_avg_sq) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
        master = None if masters is None else masters[i]
        target = param if master is None else master
        adam_update(target, grad if master is None else grad.astype(master.dtype), exp_avg,
                    exp_avg_sq, step, lr, beta1=beta1, beta2=beta2, eps=eps,
                    weight_decay=weight_decay, decoupled=decoupled)
        if master is not None:
            param[...] = master


# Note: [Adam's plain step on many tensors]
# Without weight decay or float32 masters, each tensor's step is adam_update's arithmetic in the
# same order, with the scalars worked out once per call and the temporaries written with out=
# into two arrays per tensor instead of seven: the same values bit for bit (an in-place ufunc
# rounds as the out-of-place one; tests/kernels/test_adam_multi_twin.py checks), and for the
# small tensors of a model's biases less time in allocation than in arithmetic.
def _adam_plain(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps):
    """Step every tensor of one dtype here; return the others (left to adam_update)."""
    rest = ([], [], [], [])
    one_minus_beta1, one_minus_beta2 = 1 - beta1, 1 - beta2
    step_size = lr / (1 - beta1 ** step)
    correction2_root = math.sqrt(1 - beta2 ** step)
    for param, grad, exp_avg, exp_avg_sq in zip(params, grads, exp_avgs, exp_avg_sqs):
        dtype = param.dtype
        if not (type(param) is type(grad) is type(exp_avg) is type(exp_avg_sq) is np.ndarray
                and grad.dtype == dtype and exp_avg.dtype == dtype and exp_avg_sq.dtype == dtype
                and grad.shape == param.shape and param.ndim):  # (0-d: ufuncs return scalars)
            for kept, value in zip(rest, (param, grad, exp_avg, exp_avg_sq)):
                kept.append(value)
            continue
        exp_avg *= beta1
        scratch = np.multiply(one_minus_beta1, grad)  # (1 - β1) g
        exp_avg += scratch
        exp_avg_sq *= beta2
        np.multiply(one_minus_beta2, grad, out=scratch)
        scratch *= grad  # (1 - β2) g g, in adam_update's order
        exp_avg_sq += scratch
        denom = np.sqrt(exp_avg_sq)
        denom /= correction2_root
        denom += eps
        np.multiply(step_size, exp_avg, out=scratch)
        scratch /= denom
        param -= scratch
    return rest


def sgd_update_multi(params, grads, buffers, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                     nesterov=False, first_step=False):
    if not momentum and not weight_decay:  # plain SGD: sgd_update's arithmetic without its call per tensor
        for param, grad in zip(params, grads):
            param -= lr * grad
        return
    for i, (param, grad) in enumerate(zip(params, grads)):
        sgd_update(param, grad, None if buffers is None else buffers[i], lr, momentum=momentum,
                   dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                   first_step=first_step)
