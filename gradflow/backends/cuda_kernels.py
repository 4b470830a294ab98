"""The CUDA kernel table: numpy_kernels' functions, run by the kernels in ``kernels/``.

Each function has the same name, arguments and result as its NumPy twin in ``numpy_kernels``
and takes CuPy arrays. Kernels are C++ templates; a module is built per (source file, dtype)
with ``cupy.RawModule`` and ``name_expressions`` the first time it is needed, then cached here
for the process (with each launchable function, per device) and by CuPy on disk. Every launch
runs under ``cupy.cuda.Device`` of its operands, so arrays on cuda:1 are worked on by cuda:1. CuPy is imported inside functions only: this module's
source assembly and dtype dispatch are usable (and tested) on machines without it.
"""
from __future__ import annotations

import functools
import math
import os
import re
import weakref
from pathlib import Path

import numpy as np

from ..errors import DTypeError, ShapeError

# Struct names in kernels/activations.cuh (GRADFLOW_ACTIVATIONS); a device-free test checks both
# lists against each other and against ACTIVATION_SAVES.
ACTIVATION_STRUCTS = {
    "relu": "Relu", "leaky_relu": "LeakyRelu", "sigmoid": "Sigmoid", "tanh": "Tanh",
    "gelu": "Gelu", "gelu_tanh": "GeluTanh", "softplus": "Softplus", "silu": "Silu",
}
C_TYPES = {np.dtype(np.float16): "__half", np.dtype(np.float32): "float",
           np.dtype(np.float64): "double"}
# Kernel template -> (source file, templated on the activation?)
KERNELS = {
    "act_forward_kernel": ("activation.cu", True),
    "act_derivative_kernel": ("activation.cu", True),
    "act_backward_kernel": ("activation.cu", True),
    "bias_act_forward_kernel": ("bias_activation.cu", True),
    "bias_act_backward_kernel": ("bias_activation.cu", True),
    "column_sum_kernel": ("bias_activation.cu", False),
    "softmax_xent_forward_kernel": ("softmax_xent.cu", False),
    "softmax_xent_backward_kernel": ("softmax_xent.cu", False),
    "masked_reduce_kernel": ("softmax_xent.cu", False),
    "sgd_update_kernel": ("optimizers.cu", False),
    "adam_update_kernel": ("optimizers.cu", False),
    "adam_multi_tensor_kernel": ("optimizers.cu", False),
    "sgd_multi_tensor_kernel": ("optimizers.cu", False),
}
BLOCK = 256
# Rows each thread of bias_act_backward_kernel walks for one column: with 16, a (1024, 256) batch
# runs 16K threads, and the per-chunk column sums that column_sum_kernel adds up are 1/16 of gz.
ROWS_PER_CHUNK = 16
_LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)


# ---- source and names (no device needed) ----

def kernels_dir() -> Path:
    """Where the CUDA sources are: $GRADFLOW_KERNELS_DIR, the repository's kernels/ (source and
    editable installs), or gradflow/_kernels (where a wheel build may copy them)."""
    candidates = [os.environ.get("GRADFLOW_KERNELS_DIR"),
                  Path(__file__).resolve().parents[2] / "kernels",
                  Path(__file__).resolve().parents[1] / "_kernels"]
    for candidate in filter(None, candidates):
        if (Path(candidate) / "activations.cuh").is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "gradflow's CUDA sources (kernels/*.cu) were not found; looked in "
        + ", ".join(str(c) for c in candidates if c)
        + ". Install gradflow from a source checkout (pip install -e .) or set GRADFLOW_KERNELS_DIR")


def assemble_source(filename: str, directory: Path | None = None) -> str:
    """``filename`` with its ``#include "..."`` lines replaced by the files, each once.

    NVRTC could take ``-I kernels/`` instead, but CuPy's disk cache is keyed on the source text:
    inlining the headers makes an edited header a new key instead of a stale cached binary.
    System includes (``<cuda_fp16.h>``) are left for NVRTC to resolve.
    """
    directory = Path(directory) if directory is not None else kernels_dir()
    included: set[str] = set()

    def expand(name: str) -> str:
        path = directory / name
        if not path.is_file():
            raise FileNotFoundError(f"kernel source {name!r} not found in {directory}")
        text = path.read_text()
        return _LOCAL_INCLUDE.sub(lambda match: inline(match.group(1)), text)

    def inline(name: str) -> str:
        if name in included:
            return f"// {name}: already included above\n"
        included.add(name)
        return f"// ---- begin {name} ----\n{expand(name)}// ---- end {name} ----\n"

    included.add(filename)
    return expand(filename)


def c_type(dtype) -> str:
    """The C type the kernels are instantiated with for a NumPy/CuPy dtype."""
    dtype = np.dtype(dtype)
    if dtype not in C_TYPES:
        raise DTypeError(f"CUDA kernels support float16, float32 and float64 arrays, got {dtype}; "
                         "cast with .astype('float32')")
    return C_TYPES[dtype]


def compute_scalar_type(dtype):
    """The NumPy type of the kernels' scalar arguments (compute_t<T>: float for __half)."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def name_expression(kernel: str, dtype, activation: str | None = None) -> str:
    """The C++ name NVRTC instantiates, e.g. ``gradflow::act_forward_kernel<gradflow::Relu, float>``."""
    _, templated = KERNELS[kernel]
    arguments = [c_type(dtype)]
    if templated:
        if activation not in ACTIVATION_STRUCTS:
            raise KeyError(f"unknown activation {activation!r}; known: {sorted(ACTIVATION_STRUCTS)}")
        arguments.insert(0, f"gradflow::{ACTIVATION_STRUCTS[activation]}")
    return f"gradflow::{kernel}<{', '.join(arguments)}>"


def module_spec(filename: str, dtype) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(source, NVRTC options, name expressions) of the module for one file and dtype."""
    names = []
    for kernel, (source_file, templated) in KERNELS.items():
        if source_file == filename:
            activations = ACTIVATION_STRUCTS if templated else [None]
            names.extend(name_expression(kernel, dtype, activation) for activation in activations)
    options = ("--std=c++17",)
    if np.dtype(dtype) == np.float16:
        options += ("-DGRADFLOW_HALF",)
    return assemble_source(filename), options, tuple(names)


def grid_size(threads: int, multiprocessors: int) -> int:
    """Blocks for `threads` work items: enough to fill the device, not more (grid-stride loops
    cover the rest), and at least one."""
    return max(1, min(-(-threads // BLOCK), 32 * multiprocessors))


def sgd_scalars(lr, momentum, dampening, weight_decay, dtype):
    scalar = compute_scalar_type(dtype)
    return tuple(scalar(v) for v in (lr, momentum, 1 - dampening, weight_decay))


def adam_scalars(step, lr, beta1, beta2, eps, weight_decay, dtype):
    """Hyper-parameter terms evaluated in double on the host, as the twin does, then rounded to
    the kernel's compute type: the bias corrections depend only on the step count."""
    if step < 1:
        raise ValueError(f"adam_update: step counts from 1, got {step}")
    scalar = compute_scalar_type(dtype)
    values = (beta1, 1 - beta1, beta2, 1 - beta2, lr / (1 - beta1 ** step),
              math.sqrt(1 - beta2 ** step), eps, weight_decay, 1 - lr * weight_decay)
    return tuple(scalar(v) for v in values)


# ---- launching (CuPy from here on) ----

@functools.lru_cache(maxsize=None)
def _module(filename: str, dtype_char: str, device_id: int = 0):
    import cupy

    code, options, names = module_spec(filename, np.dtype(dtype_char))
    return cupy.RawModule(code=code, options=options, name_expressions=names)


@functools.lru_cache(maxsize=None)
def _multiprocessors(device_id: int) -> int:
    import cupy

    return cupy.cuda.Device(device_id).attributes["MultiProcessorCount"]


@functools.lru_cache(maxsize=None)
def _function(kernel: str, dtype_char: str, activation: str | None, device_id: int):
    """The launchable kernel, built once per (kernel, dtype, activation, device): get_function
    makes a new RawKernel object on every call, and a module is loaded per device."""
    import cupy

    with cupy.cuda.Device(device_id):
        module = _module(KERNELS[kernel][0], dtype_char, device_id)
        return module.get_function(name_expression(kernel, np.dtype(dtype_char), activation))


def clear_caches():
    """Forget built modules, functions and device facts (tests swap CuPy for an emulation)."""
    for cache in (_module, _multiprocessors, _function):
        cache.cache_clear()
    _pending_label_checks.clear()
    _table_cache.clear()


def _device_id(args) -> int:
    """The device of the first array argument: every launch runs on its operands' device."""
    for arg in args:
        device = getattr(arg, "device", None)
        if device is not None:
            return int(device.id)
    import cupy

    return cupy.cuda.Device().id


def _launch(kernel, dtype, activation, threads, args):
    import cupy

    if threads == 0:
        return
    device_id = _device_id(args)
    function = _function(kernel, np.dtype(dtype).char, activation, device_id)
    grid = grid_size(threads, _multiprocessors(device_id))
    with cupy.cuda.Device(device_id):
        function((grid,), (BLOCK,), args)


def _contiguous(array, dtype, what):
    import cupy

    if array.dtype != dtype:
        raise DTypeError(f"{what} has dtype {array.dtype} but the kernel runs in {dtype}; "
                         "cast the operands to one dtype")
    # Reshaped back: cupy.ascontiguousarray, like NumPy's, returns a 0-d array as shape (1,).
    return cupy.ascontiguousarray(array).reshape(array.shape)


def _same_shape(a, b, what):
    if a.shape != b.shape:
        raise ShapeError(f"{what}: shapes {a.shape} and {b.shape} must match")


def _inplace_target(array, dtype, what):
    if array.dtype != dtype:
        raise DTypeError(f"{what} has dtype {array.dtype} but the parameter is {dtype}; the kernel "
                         "updates it in place in the parameter's dtype (allocate it with zeros_like)")
    if not array.flags.c_contiguous:
        raise ShapeError(f"{what} must be C-contiguous to be updated in place (shape {array.shape}, "
                         f"strides {array.strides}); optimizer state is allocated contiguous")
    return array


# ---- the table: same names and signatures as numpy_kernels ----

def _elementwise(kernel, name, arrays, alpha):
    import cupy

    dtype = arrays[0].dtype
    c_type(dtype)
    for other in arrays[1:]:
        _same_shape(arrays[0], other, kernel)
    arrays = [_contiguous(a, dtype, kernel) for a in arrays]
    out = cupy.empty_like(arrays[0])
    _launch(kernel, dtype, name, out.size,
            (*arrays, out, np.int64(out.size), compute_scalar_type(dtype)(alpha)))
    return out


def act_forward(name, x, alpha=0.01):
    return _elementwise("act_forward_kernel", name, [x], alpha)


def act_derivative(name, saved, alpha=0.01):
    return _elementwise("act_derivative_kernel", name, [saved], alpha)


def act_backward(name, g, saved, alpha=0.01):
    return _elementwise("act_backward_kernel", name, [g, saved], alpha)


def _as_rows(x, trailing_shape, what):
    """x viewed as (rows, cols) where cols covers the trailing dimensions given."""
    if x.shape[x.ndim - len(trailing_shape):] != tuple(trailing_shape) or x.ndim <= len(trailing_shape):
        raise ShapeError(f"{what}: shape {x.shape} does not end with {tuple(trailing_shape)}")
    # Sizes spelled out rather than -1, which NumPy and CuPy cannot infer for an empty array.
    return x.reshape(math.prod(x.shape[:x.ndim - len(trailing_shape)]), math.prod(trailing_shape))


def _result_buffer(out, like, what):
    """``out`` viewed like ``like`` (C-contiguous, same shape and dtype) or a new array."""
    import cupy

    if out is None:
        return cupy.empty_like(like)
    if out.dtype != like.dtype:
        raise DTypeError(f"{what} has dtype {out.dtype}; the kernel writes {like.dtype}")
    if out.size != like.size:
        raise ShapeError(f"{what} has shape {out.shape}; the kernel writes {like.shape}")
    if not out.flags.c_contiguous:
        raise ShapeError(f"{what} must be C-contiguous to be written in place (shape {out.shape}, "
                         f"strides {out.strides})")
    return out.reshape(like.shape)


def bias_act_forward(name, x, b, alpha=0.01, out=None):
    """φ(x + b); ``out`` may be ``x`` itself (each element is read before it is written)."""
    dtype = x.dtype
    c_type(dtype)
    rows = _contiguous(_as_rows(x, b.shape, "bias_act_forward x and b"), dtype, "x")
    b = _contiguous(b, dtype, "b")
    result = _result_buffer(out, rows, "bias_act_forward out")
    _launch("bias_act_forward_kernel", dtype, name, result.size,
            (rows, b, result, np.int64(rows.shape[0]), np.int64(rows.shape[1]),
             compute_scalar_type(dtype)(alpha)))
    return out if out is not None else result.reshape(x.shape)


def bias_act_backward(name, g, saved, alpha=0.01, out=None):
    """(gz, gb) of a (rows, cols) gradient; gz goes into ``out`` when given, which may be ``g``."""
    import cupy

    dtype = g.dtype
    c_type(dtype)
    _same_shape(g, saved, "bias_act_backward g and saved")
    g_rows = _contiguous(g.reshape(g.shape[0], math.prod(g.shape[1:])), dtype, "g")
    saved_rows = _contiguous(saved.reshape(g_rows.shape), dtype, "saved")
    gz = _result_buffer(out, g_rows, "bias_act_backward out")
    rows, cols = g_rows.shape
    chunks = -(-rows // ROWS_PER_CHUNK)
    partial = cupy.empty((chunks, cols), dtype=compute_scalar_type(dtype))
    gb = cupy.empty(cols, dtype=dtype)
    _launch("bias_act_backward_kernel", dtype, name, partial.size,
            (g_rows, saved_rows, gz, partial, np.int64(rows), np.int64(cols), np.int64(ROWS_PER_CHUNK),
             compute_scalar_type(dtype)(alpha)))
    _launch("column_sum_kernel", dtype, None, cols, (partial, gb, np.int64(chunks), np.int64(cols)))
    return (out if out is not None else gz.reshape(g.shape)), gb.reshape(g.shape[1:])


def _logits_and_labels(logits, labels, bias=None):
    import cupy

    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ShapeError(f"softmax cross-entropy wants logits (N, C) and labels (N,), got "
                         f"{logits.shape} and {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise DTypeError(f"labels must be integers, got {labels.dtype}")
    c_type(logits.dtype)
    if logits.shape[1] == 0 and logits.shape[0]:
        # The kernel reads row[0] to start its running max: a row needs at least one class.
        raise ShapeError(f"softmax cross-entropy of logits {logits.shape}: no classes, so no label "
                         "can be valid; logits need at least one column")
    if bias is not None:
        if bias.shape != logits.shape[1:]:
            raise ShapeError(f"softmax cross-entropy bias of shape {bias.shape} does not match "
                             f"logits {logits.shape}; expected ({logits.shape[1]},)")
        bias = _contiguous(bias, logits.dtype, "bias")
    else:
        bias = np.uintp(0)  # a null pointer
    return (cupy.ascontiguousarray(logits), cupy.ascontiguousarray(labels, dtype=np.int64), bias)


# Note: [labels are checked when the loss is read]
# A label outside [0, C) makes its row's loss and gradient NaN and sets that row's flag in the
# forward kernel. Reading the flags at once would block the step on a device-to-host copy, so they
# are kept beside the loss array and read by ``check_before_read`` when the loss itself goes to
# the host (``.item()``, ``float()``, ``.numpy()``, printing): an error then, with the cause.
# Keyed by id(loss) with a weak reference, so an entry goes when its loss does.
_pending_label_checks: dict[int, tuple] = {}


def _watch_labels(loss, flags, classes):
    key = id(loss)
    _pending_label_checks[key] = (weakref.ref(loss), flags, classes)
    weakref.finalize(loss, _pending_label_checks.pop, key, None)


def check_before_read(array):
    """Raise the label error a cross-entropy kernel flagged, before ``array`` (its loss) is read."""
    entry = _pending_label_checks.pop(id(array), None)
    if entry is None or entry[0]() is not array:
        return
    import cupy

    _, flags, classes = entry
    with cupy.cuda.Device(flags.device.id):
        bad = int(flags.sum())  # read only now, when the loss goes to the host anyway
    if bad:
        raise ValueError(f"cross_entropy: labels must lie in [0, {classes}) for {classes} classes; "
                         f"{bad} of {flags.size} labels do not (found on the device when the loss "
                         "was read: those rows' losses and gradients are NaN)")


def _ignore_args(ignore_index):
    """The kernels' (ignore_index, ignoring) arguments; None: every label must be a class."""
    return (np.int64(0), np.uint8(0)) if ignore_index is None else (np.int64(ignore_index), np.uint8(1))


def _per_row_losses(logits, labels, bias, ignore_index):
    """(loss per row, bad-label flags per row) by softmax_xent_forward_kernel, operands checked."""
    import cupy

    rows, cols = logits.shape
    loss = cupy.empty(rows, dtype=logits.dtype)
    flags = cupy.empty(rows, dtype=np.uint8)
    _launch("softmax_xent_forward_kernel", logits.dtype, None, rows,
            (logits, bias, labels, loss, flags, np.int64(rows), np.int64(cols), *_ignore_args(ignore_index)))
    return loss, flags


def softmax_xent_forward(logits, labels, bias=None, reduction="none"):
    """The loss of ``logits + bias``, reduced; a label outside [0, C) gives NaN for its row (the
    twin raises IndexError) and an error when the loss is read (see the Note above)."""
    logits, labels, bias = _logits_and_labels(logits, labels, bias)
    loss, flags = _per_row_losses(logits, labels, bias, None)
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    if flags.size:
        _watch_labels(loss, flags, logits.shape[1])
    return loss


def softmax_xent_forward_ignoring(logits, labels, ignore_index, reduction="none"):
    """(loss, count): the loss with rows whose label is ``ignore_index`` skipped (0 under
    'none'), reduced over the others, and how many others there are — a 0-d device array in the
    compute type, the backward's divisor for a mean (empty under 'none'). The reduction and the
    count are one launch (masked_reduce_kernel), so skipping labels costs no launch and no
    device-to-host copy; other bad labels are reported when the loss is read, as above."""
    import cupy

    logits, labels, bias = _logits_and_labels(logits, labels)
    rows, cols = logits.shape
    compute = compute_scalar_type(logits.dtype)
    loss, flags = _per_row_losses(logits, labels, bias, ignore_index)
    if reduction == "none":
        count = cupy.empty(0, dtype=compute)
    else:
        total = cupy.empty((), dtype=logits.dtype)
        count = cupy.empty((), dtype=compute)
        # One work item: a single thread sums (the kernel's comment says why).
        _launch("masked_reduce_kernel", logits.dtype, None, 1,
                (loss, labels, np.int64(rows), *_ignore_args(ignore_index), np.uint8(reduction == "mean"),
                 total, count))
        loss = total
    if flags.size:
        _watch_labels(loss, flags, cols)
    return loss, count


def softmax_xent_backward(logits, labels, scale, factor=1.0, bias=None, ignore_index=None, divisor=None):
    """(softmax(logits + bias) - onehot) * scale * factor / divisor, rows whose label is
    ``ignore_index`` zero. A device ``scale`` (the upstream gradient: 0-d, or one per row) is read
    by the kernel; ``factor`` (1/N for a mean) is passed by value; ``divisor`` (the count of
    labels not ignored, from softmax_xent_forward_ignoring) stays on the device: no multiply and
    no device-to-host copy."""
    import cupy

    logits, labels, bias = _logits_and_labels(logits, labels, bias)
    scalar = compute_scalar_type(logits.dtype)
    if isinstance(scale, cupy.ndarray):
        scale_array = _contiguous(scale, logits.dtype, "scale")
        stride = 1 if scale_array.ndim else 0
        if stride and scale_array.size != logits.shape[0]:
            raise ShapeError(f"per-row scale has {scale_array.size} values for {logits.shape[0]} rows")
    else:
        # A host number; a null pointer: CuPy passes NumPy integers by value, 8 bytes like a pointer.
        scale_array, stride, factor = np.uintp(0), 0, factor * float(scale)
    if divisor is None:
        divisor = np.uintp(0)
    else:
        divisor = _contiguous(divisor, np.dtype(scalar), "divisor")
        if divisor.size != 1:
            raise ShapeError(f"the divisor is one count, got shape {divisor.shape}")
    gz = cupy.empty_like(logits)
    _launch("softmax_xent_backward_kernel", logits.dtype, None, logits.shape[0],
            (logits, bias, labels, gz, np.int64(logits.shape[0]), np.int64(logits.shape[1]),
             scale_array, np.int64(stride), scalar(factor), *_ignore_args(ignore_index), divisor))
    return gz


def column_sum(a):
    """Σ over the rows of a (rows, cols) array: the bias gradient of ``x Wᵀ + b``, by
    column_sum_kernel (a deterministic ordered sum per column)."""
    import cupy

    c_type(a.dtype)
    if a.ndim != 2:
        raise ShapeError(f"column_sum wants a (rows, cols) array, got shape {a.shape}")
    if np.dtype(compute_scalar_type(a.dtype)) != a.dtype:
        return a.sum(axis=0)  # float16: the kernel reads float partial sums
    a = _contiguous(a, a.dtype, "column_sum input")
    out = cupy.empty(a.shape[1], dtype=a.dtype)
    if a.shape[0] == 0:
        out.fill(0)
        return out
    _launch("column_sum_kernel", a.dtype, None, a.shape[1],
            (a, out, np.int64(a.shape[0]), np.int64(a.shape[1])))
    return out


def sgd_update(param, grad, momentum_buffer, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
               nesterov=False, first_step=False):
    dtype = param.dtype
    c_type(dtype)
    _inplace_target(param, dtype, "param")
    _same_shape(param, grad, "sgd_update param and grad")
    grad = _contiguous(grad, dtype, "grad")
    if momentum:
        _same_shape(param, momentum_buffer, "sgd_update param and momentum_buffer")
        _inplace_target(momentum_buffer, dtype, "momentum_buffer")
    buffer = momentum_buffer if momentum else param  # never read without momentum
    _launch("sgd_update_kernel", dtype, None, param.size,
            (param, grad, buffer, np.int64(param.size),
             *sgd_scalars(lr, momentum, dampening, weight_decay, dtype),
             np.int32(bool(nesterov)), np.int32(bool(first_step))))


def adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0, decoupled=False):
    dtype = param.dtype
    c_type(dtype)
    for array, what in [(param, "param"), (exp_avg, "exp_avg"), (exp_avg_sq, "exp_avg_sq")]:
        _same_shape(param, array, f"adam_update param and {what}")
        _inplace_target(array, dtype, what)
    _same_shape(param, grad, "adam_update param and grad")
    grad = _contiguous(grad, dtype, "grad")
    _launch("adam_update_kernel", dtype, None, param.size,
            (param, grad, exp_avg, exp_avg_sq, np.int64(param.size),
             *adam_scalars(step, lr, beta1, beta2, eps, weight_decay, dtype),
             np.int32(bool(decoupled))))


# Device tables of addresses for adam_update_multi, by the addresses they hold: parameters and
# their state keep their memory from step to step, so their tables are uploaded once. Gradients
# are new arrays each step: theirs is a small host-to-device copy per step (no kernel, no wait).
_table_cache: dict[tuple, object] = {}


def _address_table(arrays, cache):
    import cupy

    addresses = tuple(int(a.data.ptr) for a in arrays)
    table = _table_cache.get(addresses) if cache else None
    if table is None:
        table = cupy.asarray(np.array(addresses, dtype=np.uint64))
        if cache:
            if len(_table_cache) > 64:  # optimizers rebuilt many times: keep the cache small
                _table_cache.clear()
            _table_cache[addresses] = table
    return table


def adam_update_multi(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1=0.9, beta2=0.999,
                      eps=1e-8, weight_decay=0.0, decoupled=False, masters=None, step_count=None):
    """Adam on every tensor of a group in one launch (adam_multi_tensor_kernel). Parameters and
    gradients share one dtype; the state is in the compute type (float32 for float16, with
    float32 ``masters``), C-contiguous, shaped like its parameter. ``step_count``, a 1-element
    int64 device array holding this step's number, replaces ``step``: the kernel reads it, so the
    launch's arguments are the same every step (what a captured CUDA graph replays)."""
    import cupy

    if not params:
        return
    dtype = params[0].dtype
    c_type(dtype)
    state_dtype = np.dtype(compute_scalar_type(dtype))
    half = state_dtype != dtype
    if half != (masters is not None):
        raise DTypeError(f"adam_update_multi: {dtype} parameters {'need' if half else 'take no'} "
                         "float32 master weights (masters=)")
    groups = [("param", params, dtype), ("exp_avg", exp_avgs, state_dtype),
              ("exp_avg_sq", exp_avg_sqs, state_dtype)]
    if half:
        groups.append(("master", masters, state_dtype))
    _check_update_targets("adam_update_multi", params, groups)
    grads = _group_grads(params, grads, dtype, "adam_update_multi")
    device_id = _device_id(params)
    with cupy.cuda.Device(device_id):
        tables = [_address_table(params, True), _address_table(grads, False),
                  _address_table(masters, True) if half else np.uintp(0),
                  _address_table(exp_avgs, True), _address_table(exp_avg_sqs, True)]
        sizes = tuple(int(p.size) for p in params)
        offsets = _offsets_table(device_id, sizes)
    if step_count is not None:
        if not isinstance(step_count, cupy.ndarray) or step_count.dtype != np.int64 \
                or step_count.size != 1:
            raise DTypeError(f"adam_update_multi: step_count must be a 1-element int64 device array, "
                             f"got {type(step_count).__name__} {getattr(step_count, 'dtype', '')}")
        step = 1  # placeholders: the kernel derives the bias corrections from *step_count
    _launch("adam_multi_tensor_kernel", dtype, None, sum(sizes),
            (*tables, offsets, np.int64(len(params)),
             *adam_scalars(step, lr, beta1, beta2, eps, weight_decay, dtype),
             np.int32(bool(decoupled)),
             np.uintp(0) if step_count is None else step_count,
             np.float64(lr), np.float64(beta1), np.float64(beta2)))


def _check_update_targets(name, params, groups):
    """Each (what, arrays, dtype) of a multi-tensor update holds one array per parameter, of its
    shape, that the kernel can update in place in ``dtype`` (None: the group is missing)."""
    for what, arrays, want in groups:
        if arrays is None or len(arrays) != len(params):
            got = 0 if arrays is None else len(arrays)
            raise ShapeError(f"{name}: {got} {what} arrays for {len(params)} parameters; one per parameter needed")
        for param, array in zip(params, arrays):
            _same_shape(param, array, f"{name} param and {what}")
            _inplace_target(array, want, what)


def _group_grads(params, grads, dtype, what):
    """The gradients of a multi-tensor update, contiguous in the parameters' dtype and shapes."""
    grads = [_contiguous(g, dtype, "grad") for g in grads]
    for param, grad in zip(params, grads):
        _same_shape(param, grad, f"{what} param and grad")
    return grads


def _offsets_table(device_id, sizes):
    """Where each tensor of a group starts in the flattened index space (a device int64 array of
    len(sizes) + 1), built once per (device, sizes); call under ``cupy.cuda.Device(device_id)``."""
    import cupy

    offsets = _table_cache.get(("offsets", device_id, sizes))
    if offsets is None:
        offsets = _table_cache[("offsets", device_id, sizes)] = cupy.asarray(
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))
    return offsets


def sgd_update_multi(params, grads, buffers, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                     nesterov=False, first_step=False):
    """SGD on every tensor of a group in one launch (sgd_multi_tensor_kernel); ``buffers`` (the
    momentum buffers, in the parameters' dtype) is None without momentum."""
    import cupy

    if not params:
        return
    dtype = params[0].dtype
    c_type(dtype)
    groups = [("param", params, dtype)] + ([("momentum_buffer", buffers, dtype)] if momentum else [])
    _check_update_targets("sgd_update_multi", params, groups)
    grads = _group_grads(params, grads, dtype, "sgd_update_multi")
    device_id = _device_id(params)
    sizes = tuple(int(p.size) for p in params)
    with cupy.cuda.Device(device_id):
        tables = [_address_table(params, True), _address_table(grads, False),
                  _address_table(buffers, True) if momentum else np.uintp(0)]
        offsets = _offsets_table(device_id, sizes)
    _launch("sgd_multi_tensor_kernel", dtype, None, sum(sizes),
            (*tables, offsets, np.int64(len(params)),
             *sgd_scalars(lr, momentum, dampening, weight_decay, dtype),
             np.int32(bool(nesterov)), np.int32(bool(first_step))))


def gemm(a, b, out, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    """out = alpha op(a) op(b) + beta out, in place. cuBLAS accumulates into `out` itself (beta = 1
    adds a weight gradient into .grad with no temporary); float16 falls back to matmul."""
    import cupy

    op_a, op_b = (a.T if trans_a else a), (b.T if trans_b else b)
    if op_a.ndim != 2 or op_b.ndim != 2 or op_a.shape[1] != op_b.shape[0] or \
            out.shape != (op_a.shape[0], op_b.shape[1]):
        raise ShapeError(f"gemm: op(a) {op_a.shape} @ op(b) {op_b.shape} does not fit out {out.shape}")
    if a.dtype != b.dtype or a.dtype != out.dtype:
        raise DTypeError(f"gemm: dtypes {a.dtype}, {b.dtype} and out {out.dtype} must match")
    if out.size == 0:
        return out  # an empty batch: cuBLAS would refuse an empty operand's leading dimension
    if op_a.shape[1] == 0:
        # A sum over nothing: out = beta out. Filled here, since cuBLAS refuses ld = 0 operands.
        if beta == 0:
            out.fill(0)
        else:
            out *= beta
        return out
    if a.dtype in (np.float32, np.float64):
        import cupy.cublas

        return cupy.cublas.gemm("T" if trans_a else "N", "T" if trans_b else "N", a, b, out=out,
                                alpha=alpha, beta=beta)
    product = cupy.matmul(op_a, op_b)
    if beta == 0:
        cupy.multiply(product, alpha, out=out)
    else:
        out *= beta
        out += alpha * product
    return out
