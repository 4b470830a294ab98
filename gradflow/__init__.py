"""gradflow: a reverse-mode autograd framework on NumPy (CPU) and CuPy (GPU).

Tensors record the ops applied to them (define-by-run); ``backward()`` walks that graph in
reverse topological order applying each op's vector-Jacobian product. See README.md.
"""
from . import dtypes
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backends import Device
from .creation import (arange, empty, eye, full, full_like, linspace, manual_seed, ones, ones_like, rand,
                       rand_like, randint, randn, randn_like, zeros, zeros_like)
from .dtypes import (bool_, float16, float32, float64, get_default_dtype, int8, int16, int32, int64,
                     set_default_dtype, uint8)
from .errors import (AnomalyError, BackwardError, CUDAUnavailableError, DeviceError, DTypeError, GradflowError,
                     GraphFreedError, ShapeError)
from .errors import InplaceModificationError  # noqa: F401
from .ops import *  # noqa: F401,F403  (the op table is the public function set)
from .ops import abs, all, any, max, min, pow, sum  # noqa: F401  (names that shadow builtins)
from .tensor import Tensor, tensor
from . import autograd, cuda, data, func, memory, nn, optim, profiler  # noqa: E402
from .checkpointing import checkpoint, checkpoint_sequential  # noqa: E402

device = Device
__version__ = "0.1.0"
