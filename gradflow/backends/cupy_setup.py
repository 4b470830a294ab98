"""The CuPy backend (CUDA). Thin by design: CuPy's array module plus the kernel table.

Not named ``cupy_backend``: importing a submodule sets it as an attribute of its package, and
that name would replace the function ``gradflow.backends.cupy_backend`` after its first call.

Only imported after ``cuda_probe`` said CUDA is usable, so ``import cupy`` here cannot fail
with a confusing traceback.
"""
from __future__ import annotations


def make_backend(backend_class):
    import cupy
    import cupyx.scipy.special

    from . import cuda_kernels

    backend = backend_class("cupy", "cuda", cupy, cuda_kernels, cupyx.scipy.special)
    backend.before_host_read = cuda_kernels.check_before_read
    return backend
