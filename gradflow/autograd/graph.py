"""Hooks on what the graph saves: ``saved_tensors_hooks(pack, unpack)`` and built-in packers.

``pack(tensor)`` runs when a node saves a tensor and may return anything; ``unpack(packed)`` runs
when backward reads it and must return a Tensor. The built-in packers shrink *activations* only:
a parameter or an input batch is alive anyway, so a packed copy of it would add memory.

>>> import gradflow as gf
>>> W = gf.randn(64, 32, requires_grad=True)
>>> with gf.autograd.graph.save_in_dtype("bfloat16"), gf.memory.track() as t:
...     loss = gf.tanh(gf.randn(8, 32) @ W.T).sum()
>>> t.retained_bytes        # tanh's output kept as 8 x 64 bfloat16 bits
1024

Packed values are unpacked as Tensors without history, so a graph saved through hooks supports
first-order backward (training), not double backward.
"""
from __future__ import annotations

import weakref

import numpy as np

from ..backends import of_array
from . import node as _node
from .grad_mode import _state
from .node import increment_version


class saved_tensors_hooks:
    """Context manager: every tensor saved for backward inside goes through ``pack``/``unpack``."""

    def __init__(self, pack_hook, unpack_hook):
        if not (callable(pack_hook) and callable(unpack_hook)):
            raise TypeError("saved_tensors_hooks needs two callables: pack_hook(tensor) -> object "
                            "and unpack_hook(object) -> Tensor")
        self._pair = (pack_hook, unpack_hook)

    # Per thread, like grad mode: another thread's forward saves without these hooks.
    def __enter__(self):
        _state.saved_hooks = _state.saved_hooks + (self._pair,)
        _node.saved_tensor_hooks.append(self._pair)
        return self

    def __exit__(self, *exc):
        hooks = _state.saved_hooks
        where = len(hooks) - 1 - hooks[::-1].index(self._pair)
        _state.saved_hooks = hooks[:where] + hooks[where + 1:]
        _node.saved_tensor_hooks.remove(self._pair)
        return False


class PackedTensor:
    """A saved activation in another form; ``memory_kind`` tells the tracker what it stands for."""

    __slots__ = ("data", "dtype", "device", "memory_kind", "bfloat16", "__weakref__")

    def __init__(self, data, dtype, device, bfloat16=False):
        self.data, self.dtype, self.device, self.bfloat16 = data, dtype, device, bfloat16
        self.memory_kind = "activation"


def _is_activation(tensor):
    """True for what only the graph would keep: an op's output or a non-leaf intermediate.

    A view (``W.T`` saved by matmul) is left alone: it shares memory something else keeps.
    """
    if getattr(tensor.data, "base", None) is not None:
        return False
    return _state.packing_output or tensor.grad_fn is not None


class _PackOnce:
    """Packs each array once: relu's output, saved again by the next matmul, shares one copy.

    Both sides are held weakly, so the cache never keeps an array or its packed copy alive.
    """

    def __init__(self, pack):
        self.pack, self.cache = pack, {}

    def __call__(self, tensor):
        hit = self.cache.get(id(tensor.data))
        if hit is not None and hit[0]() is tensor.data:
            packed = hit[1]()
            if packed is not None:
                return packed
        packed = self.pack(tensor)
        if isinstance(packed, PackedTensor):
            self.cache[id(tensor.data)] = (weakref.ref(tensor.data), weakref.ref(packed))
        return packed


# ----- move to host ---------------------------------------------------------------------------------
def _pack_to_host(tensor):
    if tensor.device.type == "cpu" or not _is_activation(tensor):
        return tensor
    return PackedTensor(of_array(tensor.data).to_numpy(tensor.data), tensor.dtype, tensor.device)


def _unpack_from_host(packed):
    from ..backends import for_device
    from ..tensor import Tensor

    if not isinstance(packed, PackedTensor):
        return packed
    return Tensor(for_device(packed.device).xp.asarray(packed.data))


def save_on_cpu():
    """Keep saved CUDA activations in host memory until backward; a no-op for CPU tensors."""
    return saved_tensors_hooks(_PackOnce(_pack_to_host), _unpack_from_host)


# ----- store in a narrower float --------------------------------------------------------------------
def to_bfloat16_bits(array):
    """float32/float64 -> bfloat16 as uint16 bits, rounding to nearest even (NaN stays NaN)."""
    xp = of_array(array).xp
    bits = xp.ascontiguousarray(array, dtype=xp.float32).view(xp.uint32)
    rounded = (bits + xp.uint32(0x7FFF) + ((bits >> 16) & xp.uint32(1))) >> 16
    nan = (bits & xp.uint32(0x7FFFFFFF)) > xp.uint32(0x7F800000)
    return xp.where(nan, (bits >> 16) | xp.uint32(0x40), rounded).astype(xp.uint16)


def from_bfloat16_bits(bits, dtype):
    xp = of_array(bits).xp
    return (bits.astype(xp.uint32) << 16).view(xp.float32).astype(dtype, copy=False)


def save_in_dtype(dtype="float16"):
    """Store saved floating activations as float16 or bfloat16; backward sees them cast back.

    Halves retained activation bytes for float32 models at the cost of rounding the saved values
    (float16: 11 significant bits, overflow above 65504; bfloat16: 8 bits, float32's range).
    """
    name = str(np.dtype(dtype)) if dtype != "bfloat16" else "bfloat16"
    if name not in ("float16", "bfloat16"):
        raise ValueError(f"save_in_dtype stores float16 or bfloat16, got {dtype!r}")

    def pack(tensor):
        array = tensor.data
        if array.dtype.kind != "f" or array.dtype.itemsize <= 2 or not _is_activation(tensor):
            return tensor
        if name == "bfloat16":
            return PackedTensor(to_bfloat16_bits(array), array.dtype, tensor.device, bfloat16=True)
        return PackedTensor(array.astype(name), array.dtype, tensor.device)

    def unpack(packed):
        from ..tensor import Tensor

        if not isinstance(packed, PackedTensor):
            return packed
        if packed.bfloat16:
            return Tensor(from_bfloat16_bits(packed.data, packed.dtype))
        return Tensor(packed.data.astype(packed.dtype))

    return saved_tensors_hooks(_PackOnce(pack), unpack)


__all__ = ["saved_tensors_hooks", "save_on_cpu", "save_in_dtype", "PackedTensor", "increment_version"]
