"""Tensor: an array (NumPy or CuPy) plus what autograd needs to know about it.

A Tensor made by an op while grad mode is on has ``grad_fn``, the Node that made it; a tensor
the user made is a leaf. Operators and methods route to the op table in ``gradflow.ops``.
"""
from __future__ import annotations

import math as _math
from operator import attrgetter as _attrgetter

import numpy as np

from . import dtypes as _dtypes
from .backends import device_backend_of, device_of_array, for_device, of_array, resolve as resolve_device
from .errors import BackwardError, DTypeError, ShapeError, check_like


def _axis_alias(axis, dim):
    """PyTorch's ``dim=`` is NumPy's ``axis=``; giving both is ambiguous."""
    if dim is not None:
        if axis is not None:
            raise TypeError("give either axis= or its PyTorch spelling dim=, not both")
        return dim
    return axis


def _keepdims_alias(keepdims, keepdim):
    return keepdims if keepdim is None else keepdim


class Tensor:
    """An n-dimensional array that records the ops applied to it when it requires grad.

    >>> import gradflow as gf
    >>> x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4., 6.])
    """

    __slots__ = ("_data", "_requires_grad", "_grad", "grad_fn", "_leaf_hooks", "_version", "_written_at",
                 "_grad_owned", "__weakref__")
    # NumPy defers to our reflected operators (ndarray * Tensor -> Tensor.__rmul__).
    __array_ufunc__ = None
    __hash__ = object.__hash__

    def __init__(self, data, requires_grad=False, grad_fn=None):
        self._data = data
        self._requires_grad = requires_grad
        self._grad = None
        self.grad_fn = grad_fn
        self._leaf_hooks = None
        # In-place writes so far, and when the last one happened on the clock nodes are numbered by
        # (autograd/node.py's note [version counters]); 0: never written.
        self._version = 0
        self._written_at = 0
        # True while ._grad is an array the engine made and nobody has read through .grad since
        # (autograd/engine.py's note [who owns a gradient array]).
        self._grad_owned = False

    def _set_data(self, array):
        self._data = array
        _node.increment_version(self)

    # ``t.data`` reads the array (C-level getter: no Python frame on the hot path). Assigning it —
    # ``p.data = new`` and ``p.data -= lr * g`` alike — counts as an in-place write: a graph that
    # saved ``p`` then refuses to backward. Writing into the array itself (``p.data[...] = 0``,
    # the array ``.numpy()`` returned) is not seen; see the note [version counters].
    data = property(_attrgetter("_data"), _set_data, doc="The array (NumPy or CuPy) behind the tensor.")

    # ----- what it is -------------------------------------------------------------------
    shape = property(lambda self: tuple(self._data.shape))
    ndim = property(lambda self: self._data.ndim)
    dtype = property(lambda self: self._data.dtype)
    device = property(lambda self: device_of_array(self._data))
    is_leaf = property(lambda self: self.grad_fn is None)
    nbytes = property(lambda self: int(self.data.nbytes))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return int(self.data.size)

    def dim(self):
        return self.data.ndim

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad=True):
        """Mark a leaf as needing ``.grad``; only floating tensors can."""
        if requires_grad and self.data.dtype.kind != "f":
            raise DTypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype} "
                             "(integer data such as labels stays integer)")
        if self.grad_fn is not None and not requires_grad:
            raise BackwardError("requires_grad can only be turned off on leaf tensors; use .detach()")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def grad(self):
        # Now the caller can keep it: the engine stops adding into it in place (its note
        # [who owns a gradient array]). gradflow's own readers that keep nothing use _grad.
        self._grad_owned = False
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f".grad must be a Tensor or None, got {type(value).__name__}")
            check_like(value, self, ".grad", "a tensor")
        self._grad = value
        self._grad_owned = False

    # ----- conversion ----------------------------------------------------------------------
    def numpy(self):
        """The data as a host NumPy array (a copy for CUDA tensors; shared memory on CPU)."""
        return of_array(self.data).to_numpy(self.data)

    # Interchange (gradflow/interop.py): zero-copy; a tensor that requires grad exports its data.
    def __array__(self, dtype=None, copy=None):
        from .interop import host_array

        return host_array(self, dtype, copy)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        from .interop import dlpack_capsule

        return dlpack_capsule(self, stream, max_version, dl_device, copy)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    def item(self):
        if self.data.size != 1:
            raise ShapeError(f"item() needs a tensor with one element, got shape {self.shape}")
        return of_array(self.data).to_numpy(self.data).reshape(()).item()

    def tolist(self):
        return of_array(self.data).to_numpy(self.data).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all()")
        return bool(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only one-element integer tensors can be used as an index")
        return int(self.item())

    # math.trunc/floor/ceil of a one-element tensor: a Python int, like int(t), computed from the
    # Python number (exact for int64 beyond 2**53, where going through float would round).
    def __trunc__(self):
        return _math.trunc(self.item())

    def __floor__(self):
        return _math.floor(self.item())

    def __ceil__(self):
        return _math.ceil(self.item())

    def __round__(self, ndigits=None):
        """``round(t)`` / ``round(t, n)``: ``gradflow.round`` elementwise (half to even, as NumPy), a
        Tensor of any shape with zero gradient, as JAX arrays answer it (PyTorch defines no
        ``__round__``); ``int(t)`` or ``t.item()`` gives a Python number."""
        return _ops.round(self, 0 if ndigits is None else ndigits)

    def detach(self):
        """The same data, cut from the graph (shares memory)."""
        return Tensor(self.data)

    def to(self, *args, dtype=None, device=None, copy=False):
        """``.to("cuda")``, ``.to(gradflow.float64)``, ``.to(device, dtype)``; differentiable."""
        for arg in args:
            if isinstance(arg, str) or type(arg).__name__ == "Device":
                device = arg
            else:
                dtype = arg
        out = self
        if device is not None:
            target = resolve_device(device)
            if target != self.device:
                out = _ops.to_device(out, target)
        if dtype is not None:
            dtype = _dtypes.resolve(dtype)
            if dtype != out.dtype:
                out = _ops.cast(out, dtype)
        if copy and out is self:
            out = _ops.cast(out, self.dtype, copy=True)
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self, index=None):
        return self.to("cuda" if index is None else f"cuda:{index}")

    def float(self):
        return self.to(_dtypes.float32)

    def double(self):
        return self.to(_dtypes.float64)

    def half(self):
        return self.to(_dtypes.float16)

    def long(self):
        return self.to(_dtypes.int64)

    def __repr__(self):
        body = np.array2string(of_array(self.data).to_numpy(self.data), separator=", ", prefix="tensor(")
        extras = []
        if self.dtype not in (_dtypes.default_float(), _dtypes.int64, _dtypes.bool_):
            extras.append(f"dtype={self.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.op.name}Backward>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"

    # ----- autograd -----------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (see ``gradflow.autograd.backward``)."""
        _engine.backward(self, None if gradient is None else [gradient], retain_graph, create_graph, inputs)

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if self.grad_fn is None:
            if not self._requires_grad:
                raise BackwardError("retain_grad() on a tensor that does not require grad")
            return
        if self.grad_fn.retained is None:
            import weakref

            self.grad_fn.retained = weakref.ref(self)

    @property
    def retains_grad(self):
        return self.grad_fn is not None and self.grad_fn.retained is not None

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned Tensor replaces it."""
        if not self._requires_grad:
            raise BackwardError("cannot register a hook on a tensor that does not require grad")
        if self.grad_fn is not None:
            self.grad_fn.register_prehook(hook)
            hooks = self.grad_fn.pre_hooks
        else:
            if self._leaf_hooks is None:
                self._leaf_hooks = []
            self._leaf_hooks.append(hook)
            hooks = self._leaf_hooks
        return _RemovableHandle(hooks, hook)

    # ----- operators (all route to gradflow.ops) ---------------------------------------------
    def __add__(self, other):
        return _apply(_ops.add, (self, other), _NO_PARAMS)

    def __radd__(self, other):
        return _apply(_ops.add, (other, self), _NO_PARAMS)

    def __sub__(self, other):
        return _apply(_ops.sub, (self, other), _NO_PARAMS)

    def __rsub__(self, other):
        return _apply(_ops.sub, (other, self), _NO_PARAMS)

    def __mul__(self, other):
        return _apply(_ops.mul, (self, other), _NO_PARAMS)

    def __rmul__(self, other):
        return _apply(_ops.mul, (other, self), _NO_PARAMS)

    def __truediv__(self, other):
        return _apply(_ops.div, (self, other), _NO_PARAMS)

    def __rtruediv__(self, other):
        return _apply(_ops.div, (other, self), _NO_PARAMS)

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __neg__(self):
        return _apply(_ops.neg, (self,), _NO_PARAMS)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.abs(self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    def __lt__(self, other):
        return _ops.less(self, other)

    def __le__(self, other):
        return _ops.less_equal(self, other)

    def __gt__(self, other):
        return _ops.greater(self, other)

    def __ge__(self, other):
        return _ops.greater_equal(self, other)

    def __eq__(self, other):
        return _ops.equal(self, other)

    def __ne__(self, other):
        return _ops.not_equal(self, other)

    @property
    def T(self):
        return _ops.transpose(self)

    @property
    def mT(self):
        return _ops.swapaxes(self, -1, -2)


from .autograd import engine as _engine, node as _node  # noqa: E402
from .autograd.node import apply as _apply  # noqa: E402

_NO_PARAMS = {}  # operators pass no parameters; never mutated

_node._Tensor = Tensor


class _RemovableHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)




def constant_like(value, like):
    """A Python scalar or array-like as a constant on ``like``'s device, with NumPy's weak-scalar dtype rule.

    ``float32_tensor * 2.0`` stays float32 (a Python scalar does not upcast a tensor).
    A bare device (CuPy) array stays on its device: CuPy refuses the implicit copy to the host
    that ``np.asarray`` would make, and an op meeting it with a tensor on another device raises
    the usual device error instead of moving data behind the user's back.
    """
    if device_backend_of(value) is not None:
        return Tensor(value)
    if like is None:
        return Tensor(_host_array(value, None))
    backend = of_array(like.data)
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        dtype = np.result_type(like.data.dtype, value)
        if isinstance(value, float) and dtype.kind == "f" and like.data.dtype.kind in "iub":
            dtype = _dtypes.default_float()  # int tensor × 1.5 is float32, as in PyTorch
        return Tensor(backend.xp.asarray(value, dtype=dtype))
    return Tensor(backend.xp.asarray(_host_array(value, None)))


def _host_array(data, dtype):
    """NumPy array from host data: Python floats become the default float dtype (float32).

    A device array is not host data (CuPy's, and the emulated one's, ``np.asarray`` raises), even
    where its type subclasses ``np.ndarray``; callers check ``device_backend_of`` first.
    """
    if isinstance(data, np.ndarray) and device_backend_of(data) is None:
        return data if dtype is None else data.astype(dtype, copy=False)
    array = np.asarray(data, dtype=dtype)
    if dtype is None and array.dtype == np.float64 and not isinstance(data, np.generic):
        array = array.astype(_dtypes.default_float())
    if array.dtype == object:
        raise DTypeError(f"cannot make a tensor from {type(data).__name__} data (ragged lists or objects?)")
    return array


def tensor(data, dtype=None, device=None, requires_grad=False):
    """Make a leaf tensor from data (lists, scalars, NumPy/CuPy arrays, Tensors).

    Python floats become float32 (the default float dtype); NumPy arrays keep their dtype;
    integer data stays integer.

    >>> gradflow.tensor([[1, 2], [3, 4]], dtype="float64", requires_grad=True).shape
    (2, 2)
    """
    dtype = _dtypes.resolve(dtype)
    if isinstance(data, Tensor):
        data = data.data
    target = resolve_device(device) if device is not None else None
    backend = device_backend_of(data)
    if backend is None:
        array = _host_array(data, dtype)
        if array.dtype not in _dtypes.SUPPORTED:
            raise DTypeError(f"dtype {array.dtype} is not supported")
        if target is not None and target.type == "cuda":
            with for_device(target).on(target):  # cuda:N: on device N, not the current one
                array = for_device(target).xp.asarray(array)
        elif isinstance(data, np.ndarray) and array is data:
            array = array.copy()  # like torch.tensor: a new leaf never aliases the caller's array
    else:
        # On the target GPU when one is named, else on the data's own (not the current) device.
        scope = backend.on(target) if target is not None and target.type == "cuda" and \
            target.index is not None else backend.device_scope(data)
        with scope:
            array = backend.xp.array(data, dtype=dtype, copy=True)
        if target is not None and target.type == "cpu":
            array = backend.to_numpy(array)
    out = Tensor(array)
    if requires_grad:
        out.requires_grad_(True)
    return out



def _shape_args_of(shape):
    """``f(2, 3)`` and ``f((2, 3))`` both mean shape (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(int(s) for s in shape)


from . import ops as _ops  # noqa: E402  (ops need Tensor defined first)


def _method(function):
    """A Tensor method for ``gradflow.<name>``: primitives are applied directly (no wrapper layer)."""
    if isinstance(function, _ops.Op):
        def method(self, *args, **params):
            if not args:  # t.exp(), t.tanh(): no argument tuple to build
                return _apply(function, (self,), params)
            return _apply(function, (self, *args), params)
    else:
        def method(self, *args, **kwargs):
            return function(self, *args, **kwargs)
    method.__name__ = getattr(function, "__name__", getattr(function, "name", "method"))
    method.__doc__ = f"Same as ``gradflow.{method.__name__}(tensor, ...)``."
    return method


_METHODS = ("exp log sqrt tanh sigmoid relu sum mean max min var std reshape view transpose permute "
            "squeeze unsqueeze expand flatten maximum minimum clip clamp matmul argmax argmin softmax "
            "log_softmax swapaxes any all pow square expand_as abs neg isfinite isnan").split()
for _name in _METHODS:
    setattr(Tensor, _name, _method(getattr(_ops, _name)))
del _name


def _sum_method(self, *args, **kwargs):
    # ``loss.sum()``, the usual call: the sum primitive applied as gradflow.sum would apply it,
    # without that function's and the op's argument layers in between.
    if args or kwargs:
        return _ops.sum(self, *args, **kwargs)
    return _apply(_sum_primitive, (self,), {"axis": None, "keepdims": False})


_sum_method.__name__, _sum_method.__doc__ = "sum", Tensor.sum.__doc__
Tensor.sum = _sum_method
from .ops.reduce import _sum as _sum_primitive  # noqa: E402

# Elementwise math, rounding and predicates (issue 13): NumPy names and PyTorch's aliases.
_ELEMENTWISE_METHODS = ("sin cos tan arcsin arccos arctan arctan2 sinh cosh arcsinh arccosh arctanh asin acos atan "
                        "atan2 asinh acosh atanh exp2 expm1 log2 log10 log1p rsqrt reciprocal hypot floor ceil round "
                        "trunc fix copysign fmod remainder floor_divide logaddexp lerp nan_to_num isinf isposinf "
                        "isneginf isclose logical_and logical_or logical_xor logical_not bitwise_and bitwise_or "
                        "bitwise_xor bitwise_not bitwise_left_shift bitwise_right_shift").split()
for _name in _ELEMENTWISE_METHODS:
    setattr(Tensor, _name, _method(getattr(_ops, _name)))
del _name


def _operator(function, reflected=False):
    if reflected:
        return lambda self, other: function(other, self)
    return lambda self, other: function(self, other)


# % and // are Python's (and PyTorch's remainder / floor_divide); & | ^ ~ << >> are bitwise.
for _names, _function in ((("__mod__", "__rmod__"), _ops.remainder),
                          (("__floordiv__", "__rfloordiv__"), _ops.floor_divide),
                          (("__and__", "__rand__"), _ops.bitwise_and), (("__or__", "__ror__"), _ops.bitwise_or),
                          (("__xor__", "__rxor__"), _ops.bitwise_xor),
                          (("__lshift__", "__rlshift__"), _ops.left_shift),
                          (("__rshift__", "__rrshift__"), _ops.right_shift)):
    setattr(Tensor, _names[0], _operator(_function))
    setattr(Tensor, _names[1], _operator(_function, reflected=True))
Tensor.__invert__ = lambda self: _ops.bitwise_not(self)
del _names, _function

# Issue 13 part B: reductions/scans, movement, indexing. ``repeat`` is PyTorch's (tile), not
# NumPy's (``gradflow.repeat`` is NumPy's: repeat_interleave).
from .ops import movement as _movement  # noqa: E402

for _name in ("prod logsumexp cumsum cumprod cummax cummin logcumsumexp sort argsort topk median flip roll tile "
              "repeat_interleave split chunk unbind tril triu diag diagonal trace unfold movedim moveaxis gather "
              "scatter scatter_add scatter_reduce index_select take_along_axis take_along_dim masked_fill masked_select nonzero "
              "argwhere").split():
    setattr(Tensor, _name, _method(getattr(_ops, _name)))


def _repeat(self, *sizes):
    """PyTorch's ``Tensor.repeat(*sizes)``: the tensor tiled ``sizes`` times per axis (NumPy's tile)."""
    return _movement.repeat_tensor(self, *sizes)


Tensor.repeat = _repeat
for _name in ("tensor_split", "hsplit", "vsplit", "dsplit"):  # PyTorch's Tensor methods (NumPy's sections)
    setattr(Tensor, _name, _method(getattr(_ops, _name)))
del _name
