"""gradflow: a reverse-mode autograd framework on NumPy (CPU) and CuPy (GPU).

Tensors record the ops applied to them (define-by-run); ``backward()`` walks that graph in
reverse topological order applying each op's vector-Jacobian product. See README.md.
"""
from . import dtypes
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backends import Device
from .creation import (arange, empty, eye, full, full_like, linspace, manual_seed, ones, ones_like, rand,
                       rand_like, randint, randn, randn_like, zeros, zeros_like)
from .creation import bernoulli, normal, uniform
from .random import Generator, default_generator, get_rng_state, initial_seed, seed, set_rng_state
from .dtypes import (bool_, float16, float32, float64, get_default_dtype, int8, int16, int32, int64,
                     set_default_dtype, uint8, uint16, uint32, uint64)
from .errors import (AnomalyError, AxisError, BackwardError, CUDAUnavailableError, DeviceError, DTypeError,
                     GradflowError, GraphFreedError, ShapeError)
from .errors import InplaceModificationError  # noqa: F401
from .errors import ClassIndexError  # noqa: F401
from .ops import *  # noqa: F401,F403  (the op table is the public function set)
from .ops import abs, all, any, max, min, pow, sum  # noqa: F401  (names that shadow builtins)
from .tensor import Tensor, tensor
from .ops.autocast import autocast  # mixed precision (pair with optim.GradScaler)
from . import autograd, cuda, data, func, memory, nn, optim, profiler  # noqa: E402
from . import viz  # noqa: E402  (gf.viz.draw after a plain `import gradflow as gf`, as the README shows)
from .checkpointing import checkpoint, checkpoint_sequential  # noqa: E402
from .interop import from_dlpack, load_model, save_model  # noqa: E402
from .nn.functional_activations import celu, selu  # noqa: E402  (torch.selu, torch.celu are top-level too)
import importlib as _importlib  # noqa: E402

# ``from .ops import *`` bound gradflow.ops.linalg to this name; the public namespace replaces it.
linalg = _importlib.import_module(".linalg", __name__)

device = Device
__version__ = "0.1.0"
