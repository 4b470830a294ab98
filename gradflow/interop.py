"""Exchange with other array libraries and frameworks: DLPack, NumPy's ``__array__``, model files.

- ``gf.from_dlpack(obj)`` wraps any DLPack producer (a NumPy or CuPy array, a PyTorch or JAX
  tensor) as a Tensor **without copying**: both sides see one buffer, so a write through either
  is visible through the other. ``Tensor.__dlpack__`` / ``__dlpack_device__`` make gradflow a
  producer too (``torch.from_dlpack(t)``, ``np.from_dlpack(t)``, ``cupy.from_dlpack(t)``).
- ``np.asarray(t)`` shares a CPU tensor's memory (``Tensor.__array__``); a CUDA tensor is refused
  with a message that says to call ``.cpu()`` first, so no device-to-host copy happens unasked.
- A tensor that requires grad is exported as its data, as PyTorch does after ``detach()``: the
  consumer gets the values, not the graph, and gradients do not flow back through it. Writes
  made through an exported buffer are invisible to autograd (as writes into ``.numpy()`` are).
- ``gf.save_model(model, path)`` / ``gf.load_model(model, path)``: the model's weights in a
  ``.safetensors`` (``pip install 'gradflow[interop]'``) or ``.npz`` file, chosen by suffix.
  Weights are named as in ``model.state_dict()`` — the names PyTorch gives the same layers — so a
  file from ``safetensors.torch.save_file(torch_model.state_dict(), ...)`` loads here and one
  saved here loads into PyTorch.
"""
from __future__ import annotations

import numpy as np

from . import dtypes as _dtypes
from .backends import Device, device_of_array, for_device
from .errors import DeviceError, DTypeError
from .tensor import Tensor

# DLPack device types (dlpack.h, DLDeviceType) gradflow can hold.
_KDL_CPU, _KDL_CUDA, _KDL_CUDA_MANAGED = 1, 2, 13


def from_dlpack(obj):
    """A Tensor sharing ``obj``'s memory (no copy), ``obj`` being any object with ``__dlpack__``.

    >>> import numpy as np, gradflow as gf
    >>> a = np.zeros(3, dtype=np.float32)
    >>> t = gf.from_dlpack(a)
    >>> a[0] = 5.0
    >>> t.tolist()
    [5.0, 0.0, 0.0]
    """
    if isinstance(obj, Tensor):
        return Tensor(obj.data)
    if not hasattr(obj, "__dlpack__") or not hasattr(obj, "__dlpack_device__"):
        raise TypeError(f"from_dlpack() needs an object with __dlpack__ and __dlpack_device__ (a NumPy or CuPy "
                        f"array, a PyTorch or JAX tensor), got {type(obj).__name__}")
    device_type, device_id = (int(v) for v in obj.__dlpack_device__())
    if device_type not in (_KDL_CPU, _KDL_CUDA, _KDL_CUDA_MANAGED):
        raise DeviceError(f"from_dlpack(): {type(obj).__name__} lives on DLPack device type {device_type} "
                          f"(id {device_id}); gradflow holds CPU (1) and CUDA (2) memory only")
    xp = np if device_type == _KDL_CPU else for_device(Device("cuda", device_id)).xp
    try:
        array = xp.from_dlpack(obj)
    except (RuntimeError, BufferError, TypeError) as exc:
        if "dtype" not in str(exc).lower():
            raise
        raise DTypeError(f"from_dlpack(): {type(obj).__name__} has a dtype this array library cannot hold "
                         f"({exc}); convert it first, e.g. to float32") from None
    if array.dtype not in _dtypes.SUPPORTED:
        raise DTypeError(f"from_dlpack(): dtype {array.dtype} is not supported; convert it first to one of "
                         f"{sorted(d.name for d in _dtypes.SUPPORTED)}")
    return Tensor(array)


def dlpack_capsule(tensor, stream=None, max_version=None, dl_device=None, copy=None):
    """``Tensor.__dlpack__``: the data array's own export (NumPy's or CuPy's), so no copy is made.

    Only the keywords a consumer passed are forwarded, so array libraries that predate the
    DLPack 1.0 keywords still work.
    """
    given = {"stream": stream, "max_version": max_version, "dl_device": dl_device, "copy": copy}
    try:
        return tensor.data.__dlpack__(**{k: v for k, v in given.items() if v is not None})
    except TypeError:
        if max_version is None and dl_device is None and copy is None:
            raise
        # An array library older than DLPack 1.0's keywords: the legacy export, as consumers fall back to.
        return tensor.data.__dlpack__(**({} if stream is None else {"stream": stream}))


def host_array(tensor, dtype=None, copy=None):
    """``Tensor.__array__``: the CPU data itself (shared), or a copy when ``dtype``/``copy`` ask for one."""
    array = tensor.data
    if device_of_array(array).type != "cpu":
        raise DeviceError(f"cannot convert a tensor on {device_of_array(array)} to a NumPy array implicitly; "
                          "call .cpu() first (or .numpy(), which copies to the host)")
    if dtype is not None and np.dtype(dtype) != array.dtype:
        if copy is False:
            raise ValueError(f"converting dtype {array.dtype} to {np.dtype(dtype)} needs a copy, but copy=False")
        return array.astype(dtype)
    return array.copy() if copy else array


def save_model(model, path):
    """Write ``model.state_dict()`` to ``path``: ``.safetensors`` or ``.npz`` by its suffix.

    The file is written to a temporary beside ``path`` and moved over it at the end, so a reader
    never sees half a file. Entries are named as in ``model.state_dict()``.
    """
    from .checkpoint_io import save_checkpoint

    save_checkpoint(path, model)


def load_model(model, path):
    """Load weights saved by ``save_model`` (or by PyTorch's safetensors) into ``model``, in place.

    The file's names, shapes and dtypes must match the model's exactly; anything wrong raises
    ``CheckpointError`` naming the file and the entry, and leaves the model untouched. A
    training checkpoint (``gradflow train --save``) also works: its optimizer state is ignored.
    Returns ``model``.
    """
    from .checkpoint_io import CheckpointError, load_checkpoint, restore

    checkpoint = load_checkpoint(path)
    try:
        restore(checkpoint, model)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return model
