"""Build kernels/ for the CPU and call it like gradflow.backends.numpy_kernels.

The CUDA sources are compiled by the host C++ compiler (``$CXX``, else g++) with
``cuda_host_shim.h`` standing in for the CUDA launch machinery, into a shared library loaded with
ctypes. ``HostKernels`` wraps each C entry in the NumPy twin's signature, plus a ``launch``
keyword (grid, block) that tests vary to exercise the grid-stride loops.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from gradflow.backends.cuda_kernels import adam_scalars, compute_scalar_type, sgd_scalars

REPO = Path(__file__).resolve().parents[2]
KERNELS_DIR = REPO / "kernels"
HERE = Path(__file__).resolve().parent
_SUFFIX = {np.dtype(np.float16): "f16", np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
DEFAULT_LAUNCH = (3, 32)  # 96 threads: fewer than most test arrays, so threads loop
# Shared with emulated_cupy.py. -ffp-contract=off: no fused multiply-adds, so the host rounds
# like NumPy does.
HOST_FLAGS = ["-O2", "-fPIC", "-shared", "-ffp-contract=off", "-Wall", "-Wextra",
              "-include", str(HERE / "cuda_host_shim.h")]


def find_cxx() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


def find_cuda_include() -> Path | None:
    """A directory holding cuda_fp16.h, so the __half kernels can be built for the host too."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(nvcc).resolve().parent.parent))
    for root in filter(None, candidates):
        if (Path(root) / "include" / "cuda_fp16.h").is_file():
            return Path(root) / "include"
    return None


def build(cxx: str, out_dir: Path) -> Path:
    """Compile host_api.cpp (which includes every kernels/*.cu) into out_dir; returns the .so."""
    library = out_dir / "libgradflow_kernels_host.so"
    command = [cxx, "-std=c++17", *HOST_FLAGS, f"-I{KERNELS_DIR}", str(HERE / "host_api.cpp"),
               "-o", str(library)]
    cuda_include = find_cuda_include()
    if cuda_include is not None:
        command[1:1] = ["-DGRADFLOW_HALF", f"-I{cuda_include}"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"host build of kernels/ failed:\n{' '.join(command)}\n{result.stderr}")
    return library


class HostKernels:
    """The host-compiled CUDA kernels behind numpy_kernels' function signatures."""

    def __init__(self, library_path: Path):
        self.lib = ctypes.CDLL(str(library_path))
        self.lib.gf_activation_name.restype = ctypes.c_char_p
        self.lib.gf_activation_saves.restype = ctypes.c_char_p
        count = self.lib.gf_activation_count()
        self.activations = [self.lib.gf_activation_name(i).decode() for i in range(count)]
        self.saves = {name: self.lib.gf_activation_saves(i).decode()
                      for i, name in enumerate(self.activations)}
        self.has_half = bool(self.lib.gf_has_half())

    def _entry(self, stem, dtype):
        dtype = np.dtype(dtype)
        if dtype not in _SUFFIX or (dtype == np.float16 and not self.has_half):
            raise TypeError(f"no host kernel {stem} for dtype {dtype}")
        return getattr(self.lib, f"gf_{stem}_{_SUFFIX[dtype]}")

    def _act_id(self, name):
        return self.activations.index(name)

    @staticmethod
    def _ptr(array):
        if array is None:
            return None
        assert array.flags.c_contiguous
        return array.ctypes.data_as(ctypes.c_void_p)

    def act_forward(self, name, x, alpha=0.01, launch=DEFAULT_LAUNCH):
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)
        status = self._entry("act_forward", x.dtype)(
            self._act_id(name), self._ptr(x), self._ptr(out), ctypes.c_longlong(x.size),
            ctypes.c_double(alpha), *map(ctypes.c_uint, launch))
        assert status == 0
        return out

    def act_derivative(self, name, saved, alpha=0.01, launch=DEFAULT_LAUNCH):
        saved = np.ascontiguousarray(saved)
        out = np.empty_like(saved)
        status = self._entry("act_derivative", saved.dtype)(
            self._act_id(name), self._ptr(saved), self._ptr(out), ctypes.c_longlong(saved.size),
            ctypes.c_double(alpha), *map(ctypes.c_uint, launch))
        assert status == 0
        return out

    def act_backward(self, name, g, saved, alpha=0.01, launch=DEFAULT_LAUNCH):
        g, saved = np.ascontiguousarray(g), np.ascontiguousarray(saved)
        gz = np.empty_like(g)
        status = self._entry("act_backward", g.dtype)(
            self._act_id(name), self._ptr(g), self._ptr(saved), self._ptr(gz),
            ctypes.c_longlong(g.size), ctypes.c_double(alpha), *map(ctypes.c_uint, launch))
        assert status == 0
        return gz

    def bias_act_forward(self, name, x, b, alpha=0.01, launch=DEFAULT_LAUNCH):
        x, b = np.ascontiguousarray(x), np.ascontiguousarray(b)
        out = np.empty_like(x)
        rows, cols = x.shape
        status = self._entry("bias_act_forward", x.dtype)(
            self._act_id(name), self._ptr(x), self._ptr(b), self._ptr(out),
            ctypes.c_longlong(rows), ctypes.c_longlong(cols), ctypes.c_double(alpha),
            *map(ctypes.c_uint, launch))
        assert status == 0
        return out

    def bias_act_backward(self, name, g, saved, alpha=0.01, launch=DEFAULT_LAUNCH, rows_per_chunk=16):
        """Both passes (per-chunk column sums, then their sum) under the same launch shape."""
        g, saved = np.ascontiguousarray(g), np.ascontiguousarray(saved)
        gz = np.empty_like(g)
        rows, cols = g.shape
        partial = np.empty((-(-rows // rows_per_chunk), cols), compute_scalar_type(g.dtype))
        gb = np.empty(cols, dtype=g.dtype)
        status = self._entry("bias_act_backward", g.dtype)(
            self._act_id(name), self._ptr(g), self._ptr(saved), self._ptr(gz), self._ptr(partial),
            self._ptr(gb), ctypes.c_longlong(rows), ctypes.c_longlong(cols),
            ctypes.c_longlong(rows_per_chunk), ctypes.c_double(alpha), *map(ctypes.c_uint, launch))
        assert status == 0
        return gz, gb

    def softmax_xent_forward(self, logits, labels, bias=None, launch=DEFAULT_LAUNCH,
                             with_flags=False, ignore_index=None):
        """Per-row loss of logits (+ bias); with ``with_flags`` also the per-row bad-label flags."""
        logits = np.ascontiguousarray(logits)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        bias = None if bias is None else np.ascontiguousarray(bias, dtype=logits.dtype)
        loss = np.empty(logits.shape[0], dtype=logits.dtype)
        flags = np.full(logits.shape[0], 7, dtype=np.uint8)  # 7: the kernel wrote no flag here
        self._entry("softmax_xent_forward", logits.dtype)(
            self._ptr(logits), self._ptr(bias), self._ptr(labels), self._ptr(loss),
            self._ptr(flags), ctypes.c_longlong(logits.shape[0]),
            ctypes.c_longlong(logits.shape[1]), *self._ignore(ignore_index), *map(ctypes.c_uint, launch))
        return (loss, flags) if with_flags else loss

    def softmax_xent_backward(self, logits, labels, scale, factor=1.0, bias=None,
                              launch=DEFAULT_LAUNCH, ignore_index=None, divisor=None):
        """``scale`` a number (passed in ``factor``) or an array read in the kernel: 0-d (stride
        0) or one per row."""
        logits = np.ascontiguousarray(logits)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        bias = None if bias is None else np.ascontiguousarray(bias, dtype=logits.dtype)
        gz = np.empty_like(logits)
        scale_array, stride = None, 0
        if isinstance(scale, np.ndarray):
            stride = 1 if scale.ndim else 0
            # np.array, not ascontiguousarray: that makes a 0-d array shape (1,).
            scale_array = np.array(scale, dtype=logits.dtype, order="C")
        else:
            factor = factor * scale
        if divisor is not None:
            divisor = np.array(divisor, dtype=compute_scalar_type(logits.dtype), order="C")
        self._entry("softmax_xent_backward", logits.dtype)(
            self._ptr(logits), self._ptr(bias), self._ptr(labels), self._ptr(gz),
            ctypes.c_longlong(logits.shape[0]), ctypes.c_longlong(logits.shape[1]),
            self._ptr(scale_array), ctypes.c_longlong(stride), ctypes.c_double(factor),
            *self._ignore(ignore_index), self._ptr(divisor), *map(ctypes.c_uint, launch))
        return gz

    def masked_reduce(self, loss, labels, ignore_index, mean, launch=DEFAULT_LAUNCH):
        """(total, count) of the per-row ``loss`` over the labels not equal to ``ignore_index``."""
        loss = np.ascontiguousarray(loss)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        total = np.full((), np.nan, dtype=loss.dtype)
        count = np.full((), -1, dtype=compute_scalar_type(loss.dtype))
        self._entry("masked_reduce", loss.dtype)(
            self._ptr(loss), self._ptr(labels), ctypes.c_longlong(loss.shape[0]),
            *self._ignore(ignore_index), ctypes.c_int(int(mean)), self._ptr(total),
            self._ptr(count), *map(ctypes.c_uint, launch))
        return total, count

    @staticmethod
    def _ignore(ignore_index):
        """The kernels' (ignore_index, ignoring) pair; None: no label is skipped."""
        if ignore_index is None:
            return ctypes.c_longlong(0), ctypes.c_int(0)
        return ctypes.c_longlong(ignore_index), ctypes.c_int(1)

    def column_sum(self, a, launch=DEFAULT_LAUNCH):
        """Σ over rows of a C-contiguous (rows, cols) array in the compute type, by the bias
        gradient's second pass (each row is one "chunk")."""
        a = np.ascontiguousarray(a, dtype=compute_scalar_type(a.dtype))
        out = np.empty(a.shape[1], dtype=a.dtype)
        self._entry("column_sum", a.dtype)(
            self._ptr(a), self._ptr(out), ctypes.c_longlong(a.shape[0]),
            ctypes.c_longlong(a.shape[1]), *map(ctypes.c_uint, launch))
        return out

    def sgd_multi_tensor(self, params, grads, buffers, lr, momentum=0.0, dampening=0.0,
                         weight_decay=0.0, nesterov=False, first_step=False, launch=DEFAULT_LAUNCH):
        def table(arrays):
            return np.array([a.ctypes.data for a in arrays], dtype=np.uint64)

        offsets = np.concatenate([[0], np.cumsum([p.size for p in params])]).astype(np.int64)
        scalars = sgd_scalars(lr, momentum, dampening, weight_decay, params[0].dtype)
        self._entry("sgd_multi_tensor", params[0].dtype)(
            self._ptr(table(params)), self._ptr(table(grads)),
            self._ptr(None if buffers is None else table(buffers)), self._ptr(offsets),
            ctypes.c_longlong(len(params)), *map(ctypes.c_double, scalars), int(nesterov),
            int(first_step), *map(ctypes.c_uint, launch))

    def adam_multi_tensor(self, params, grads, exp_avgs, exp_avg_sqs, step, lr, masters=None,
                          beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False,
                          launch=DEFAULT_LAUNCH, step_count=None):
        """Adam over a list of tensors in one launch; tables of addresses as the CuPy table
        builds them (uint64 addresses, int64 running offsets). With ``step_count`` (an int64
        array holding t) the kernel derives the bias corrections from it: the by-value ones are
        then passed as NaN, so a kernel that used them would show it."""
        dtype = params[0].dtype

        def table(arrays):
            return np.array([a.ctypes.data for a in arrays], dtype=np.uint64)

        tables = [table(params), table(grads), None if masters is None else table(masters),
                  table(exp_avgs), table(exp_avg_sqs)]
        offsets = np.concatenate([[0], np.cumsum([p.size for p in params])]).astype(np.int64)
        scalars = list(adam_scalars(step, lr, beta1, beta2, eps, weight_decay, dtype))
        if step_count is not None:
            assert step_count.dtype == np.int64
            scalars[4] = scalars[5] = np.nan  # step_size, bias_correction2_sqrt: from the device
        self._entry("adam_multi_tensor", dtype)(
            *[self._ptr(t) for t in tables], self._ptr(offsets), ctypes.c_longlong(len(params)),
            *map(ctypes.c_double, scalars), int(decoupled), self._ptr(step_count),
            ctypes.c_double(lr), ctypes.c_double(beta1), ctypes.c_double(beta2),
            *map(ctypes.c_uint, launch))

    def sgd_update(self, param, grad, momentum_buffer, lr, momentum=0.0, dampening=0.0,
                   weight_decay=0.0, nesterov=False, first_step=False, launch=DEFAULT_LAUNCH):
        buffer = param if momentum_buffer is None else momentum_buffer  # never read then
        # The CuPy table's own scalar preparation, so the tests cover it too.
        scalars = sgd_scalars(lr, momentum, dampening, weight_decay, param.dtype)
        self._entry("sgd_update", param.dtype)(
            self._ptr(param), self._ptr(grad), self._ptr(buffer), ctypes.c_longlong(param.size),
            *map(ctypes.c_double, scalars), int(nesterov), int(first_step),
            *map(ctypes.c_uint, launch))

    def adam_update(self, param, grad, exp_avg, exp_avg_sq, step, lr, beta1=0.9, beta2=0.999,
                    eps=1e-8, weight_decay=0.0, decoupled=False, launch=DEFAULT_LAUNCH):
        scalars = adam_scalars(step, lr, beta1, beta2, eps, weight_decay, param.dtype)
        self._entry("adam_update", param.dtype)(
            self._ptr(param), self._ptr(grad), self._ptr(exp_avg), self._ptr(exp_avg_sq),
            ctypes.c_longlong(param.size), *map(ctypes.c_double, scalars), int(decoupled),
            *map(ctypes.c_uint, launch))
