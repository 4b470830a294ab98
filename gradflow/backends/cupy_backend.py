"""The CuPy backend (CUDA). Thin by design: CuPy's array module plus the kernel table.

Only imported after ``cuda_probe`` said CUDA is usable, so ``import cupy`` here cannot fail
with a confusing traceback.
"""
from __future__ import annotations


def make_backend(backend_class):
    import cupy
    import cupyx.scipy.special

    from . import cuda_kernels

    return backend_class("cupy", "cuda", cupy, cuda_kernels, cupyx.scipy.special)
