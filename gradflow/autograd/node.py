"""Graph nodes and ``apply``, the one place every op's forward runs and is recorded.

A Node stands for one op application: it knows the op, the nodes (or leaf tensors) its inputs
came from, and what the op saved for its backward. Nodes point to their inputs' nodes, never to
input tensors, so a tensor's data stays alive only if some op saved it.

# Note: [saving outputs without a reference cycle]
An op that saves its own output (exp, sigmoid, relu, softmax) stores the output's *array*, and
``ctx.saved`` rewraps it as a Tensor whose grad_fn is this node. Storing the output Tensor itself
would make a cycle (tensor -> node -> tensor) that only the garbage collector could free.
"""
from __future__ import annotations

import itertools
import operator as _operator
import threading

import numpy as np

from ..backends import NUMPY as _NUMPY, _by_array_type as _backend_by_array_type, dispatch, of_array
from .. import dtypes as _dtypes
from ..errors import AnomalyError, DeviceError, DTypeError, GraphFreedError, InplaceModificationError, ShapeError
from .grad_mode import _state

_sequence = itertools.count()
OUT = -1  # in an op's save spec: the op's output
ALL_INPUTS = -2  # in an op's save spec: every input of a variadic op (its *arrays parameter)
# Returned by a rule in place of a gradient it has already added into the leaf's .grad
# (Op.fast_vjp_into; the note [who owns a gradient array] in engine.py).
ACCUMULATED = type("Accumulated", (), {"__repr__": lambda self: "ACCUMULATED", "__slots__": ()})()

# Observers the memory tracker installs; each gets on_save(node), on_free(node) and
# on_free_value(node, value) (one value released early by Node.release_saved).
observers: list = []
# The module path ("mlp.0") that nn.Module.__call__ sets while a module's forward runs.
module_path: list = []
# (pack, unpack) pairs installed by autograd.graph.saved_tensors_hooks in any thread: a cheap
# "are there any" test for apply. Each thread packs with its own, ``_state.saved_hooks``; while
# a pack hook runs, ``_state.packing_node`` / ``packing_output`` say what it is packing (the
# node, and whether the value is that node's own output, which reaches pack as a fresh leaf
# Tensor, see the note above), so a hook can tell an activation from a saved input batch.
saved_tensor_hooks: list = []
anomaly = {"enabled": False}
_Tensor = None  # gradflow.tensor registers its Tensor class here (it sits above this layer)

# Note: [rules on raw arrays]
# VJP rules are written once, in gradflow ops. With create_graph=True they get Tensors and
# record the backward graph. A first-order backward sets the per-thread flag ``_state.raw``
# (grad_mode's note [state belongs to a call]): rules then get raw arrays (ctx.saved too),
# ``x * y`` is the array module's own operator, and a primitive called on arrays computes its
# forward and returns the array, with no Tensor, Node or check in between. Only the thread running
# that backward sees the flag: a primitive another thread calls on an array still makes a Tensor.
#
# Note: [a gradient the rule may overwrite]
# The engine sets ``_state.free_grad`` to the incoming gradient array just before the first-order
# rule of an op declared with ``reuses_grad`` runs, when the engine made that array and never
# handed it out (see engine.py's note [who owns a gradient array]); None otherwise. Such a rule
# may write its result over it (``may_overwrite(g)``; the fused linear ops write gz over g), so
# backward holds two gradient-sized buffers per layer instead of three.
#
# Note: [version counters]
# A node saves input Tensors, not copies, so an in-place write into a saved tensor between
# forward and backward would change the gradient silently. Every in-place write gradflow makes
# (optimizer steps, assigning ``.data``, ``nn.init``, ``load_state_dict``, ``zero_grad`` of a kept
# .grad) calls ``increment_version``: the tensor's ``_version`` counts its writes, and
# ``_written_at`` takes the next number of the clock nodes are numbered by (``_sequence``). A
# node's saved tensor was written after it was saved exactly when its ``_written_at`` exceeds the
# node's ``seq``, so saving costs nothing and backward checks one integer per saved tensor
# (``check_versions``; only for a node made before ``last_write``, the latest write anywhere),
# raising InplaceModificationError naming the op, the tensor and its version.
# Not seen: writes straight into the array (``t.numpy()[...] = 0``, ``t.data[...] = 0`` outside
# gradflow, a NumPy function with ``out=t.data``) — like PyTorch's ``.data``, the array is an
# escape hatch; and an op's own output, which its node saves as the array (the note at the top),
# unless a later op saved the same Tensor as its input.

# Forward mode: forward_ad.dual_level() sets this to its tangent hook, called as
# jvp_hook(op, inputs, params, out) after each op; None (one global check) outside a level.
jvp_hook = None


class Node:
    """One recorded op application; the ``ctx`` every VJP rule receives."""

    __slots__ = ("op", "next", "saved_raw", "params", "shapes", "needs_input_grad", "seq",
                 "pre_hooks", "retained", "module", "out_shape", "out_dtype", "unpackers",
                 "__weakref__")

    def __init__(self, op, inputs, params, shapes, out_data):
        self.op = op
        self.params = params
        self.shapes = shapes
        self.needs_input_grad = tuple([t._requires_grad for t in inputs])
        # An edge goes to the input's node, to the input itself if it is a leaf needing .grad, or nowhere.
        self.next = tuple([t.grad_fn if t.grad_fn is not None else (t if t._requires_grad else None)
                           for t in inputs])
        self.seq = next(_sequence)
        self.pre_hooks = None
        self.retained = None
        self.module = module_path[-1] if module_path else ""
        self.out_shape = out_data.shape
        self.out_dtype = out_data.dtype
        self.saved_raw = ()
        self.unpackers = None

    @property
    def name(self):
        return self.op.name

    def save(self, values):
        """Keep ``values`` (input Tensors, the output marker OUT with its array, or None)."""
        if saved_tensor_hooks and _state.saved_hooks:
            values = self._pack(values)
        self.saved_raw = tuple(values)
        for observer in observers:
            observer.on_save(self)

    def _pack(self, values):
        from ..tensor import Tensor

        state = _state
        pack, self.unpackers = state.saved_hooks[-1]
        packed = []
        state.packing_node = self
        try:
            for v in values:
                state.packing_output = type(v) is _Output
                if type(v) is _Output:
                    packed.append(_PackedOutput(pack(Tensor(v.data))))
                elif isinstance(v, Tensor):
                    packed.append(_Packed(pack(v)))
                else:
                    packed.append(v)
        finally:
            state.packing_node, state.packing_output = None, False
        return packed

    @property
    def saved(self):
        """The saved values as Tensors (raw arrays in a first-order backward), in the declared order."""
        saved = self.saved_raw
        if saved is None:
            raise GraphFreedError(
                f"backward through {self.op.name!r} a second time: its saved tensors were freed after "
                "the first backward. Pass retain_graph=True to the first backward() if you need to "
                "backward through the graph again.")
        Tensor = _Tensor
        if self.unpackers is None:
            if _state.raw:  # primitives save Tensors, their output, arrays they keep, or None: ._data on each
                if len(saved) == 1:
                    v = saved[0]
                    return (None if v is None else v._data,)
                if len(saved) == 2:
                    v, w = saved
                    return (None if v is None else v._data, None if w is None else w._data)
                if len(saved) == 3:  # linear and the fused layers: no comprehension frame
                    v, w, u = saved
                    return (None if v is None else v._data, None if w is None else w._data,
                            None if u is None else u._data)
                return tuple([None if v is None else v._data for v in saved])
            return tuple([Tensor(v._data, True, self) if type(v) is _Output else
                          v._data if type(v) is _Kept else v for v in saved])
        unpacked = []
        for v in self.saved_raw:
            if type(v) is _PackedOutput:
                unpacked.append(Tensor(self._unpack(v.value).data, True, self))
            elif type(v) is _Packed:
                unpacked.append(self._unpack(v.value))
            elif type(v) is _Kept:
                unpacked.append(v.data)
            else:
                unpacked.append(v)
        if _state.raw:
            return tuple([v.data if isinstance(v, Tensor) else v for v in unpacked])
        return tuple(unpacked)

    def _unpack(self, value):
        from ..tensor import Tensor

        tensor = self.unpackers(value)
        if not isinstance(tensor, Tensor):
            raise TypeError(f"saved_tensors_hooks unpack returned {type(tensor).__name__}, expected a Tensor")
        return tensor

    def release(self):
        """Drop what was saved (after a backward without retain_graph)."""
        if self.saved_raw:
            for observer in observers:
                observer.on_free(self)
        self.saved_raw = None

    def release_saved(self, index):
        """Drop saved value ``index`` now if this backward frees the graph anyway: a rule done
        with a large saved buffer lets it go before allocating its remaining results."""
        if not _state.freeing or not self.saved_raw or self.saved_raw[index] is None:
            return
        value = self.saved_raw[index]
        self.saved_raw = self.saved_raw[:index] + (None,) + self.saved_raw[index + 1:]
        for observer in observers:
            observer.on_free_value(self, value)

    @property
    def is_freed(self):
        return self.saved_raw is None

    def register_prehook(self, hook, keeps_grad=True):
        """Call ``hook(grad)`` before this node's backward; a returned Tensor replaces the gradient.

        ``keeps_grad=False`` promises that the hook neither keeps nor changes the gradient (a
        profiler's lap): the engine may then still write into that gradient afterwards (engine.py's
        note [who owns a gradient array]); any other hook is handed the gradient for good.
        """
        if self.pre_hooks is None:
            self.pre_hooks = []
        self.pre_hooks.append(hook if keeps_grad else _BlindHook(hook))

    def __repr__(self):
        return f"<{self.op.name}Backward seq={self.seq}>"


def increment_version(tensor):
    """Record an in-place write into ``tensor`` (the note [version counters]): graphs that saved it
    before now refuse to backward through it. Call it after writing into ``tensor.data`` in place."""
    tensor._version += 1
    with _write_lock:  # last_write only grows, whichever thread writes (see the note)
        tensor._written_at = last_write[0] = next(_sequence)


# The clock reading of the latest in-place write into any tensor (the note [version counters]):
# a node numbered after it cannot have had a saved tensor written since, so backward checks
# one integer per node instead of one per saved tensor in the usual step (forward, backward,
# optimizer writes, forward again). Taken and stored under a lock so a thread that took an
# earlier reading cannot store it over a later one.
last_write = [0]
_write_lock = threading.Lock()


def check_versions(node):
    """Raise InplaceModificationError if a tensor ``node`` saved was written in place since."""
    seq = node.seq
    for index, value in enumerate(node.saved_raw):
        if value is not None and value._written_at > seq:
            tensor = value.value if isinstance(value, _Packed) else value
            where = f" in module '{node.module}'" if node.module else ""
            save = getattr(node.op, "save", None)
            which = f"input {save[index]}" if save else f"saved tensor {index}"
            raise InplaceModificationError(
                f"one of the tensors needed for the gradient of {node.op.name!r}{where} has been modified by "
                f"an inplace operation: {which} of {node.op.name!r}, a {tensor.dtype} tensor of shape "
                f"{tuple(tensor.shape)}, is at version {tensor._version} and was written in place after the "
                "graph saved it (an optimizer step, or an assignment to .data, before this backward). "
                "Compute the loss again after the write, or write into a copy.")


class _BlindHook:
    """A pre-hook registered with ``keeps_grad=False``."""

    __slots__ = ("hook",)

    def __init__(self, hook):
        self.hook = hook

    def __call__(self, grad):
        return self.hook(grad)


def hands_out(hooks):
    """True when one of ``hooks`` may keep the gradient it is given."""
    for hook in hooks:
        if type(hook) is not _BlindHook:
            return True
    return False


class _Output:
    """An op's output array as saved by its own node (see the note at the top)."""

    __slots__ = ("_data",)
    _written_at = 0  # an output's array is not version-checked (the note [version counters])

    def __init__(self, data):
        self._data = data

    # ``_data`` like a Tensor's, so Node.saved reads both alike; ``data`` for everyone else.
    data = property(_operator.attrgetter("_data"))


class _Kept:
    """An array an op's forward made besides its output and keeps for backward (``keeps`` in
    ops/registry.py: max-pool's argmax indices, batch norm's x̂ and 1/σ). Rules read it as the
    raw array in both orders: it is data about the forward, never differentiated through."""

    __slots__ = ("_data",)
    _written_at = 0  # made by the forward, held only by the node: nothing else can write it

    def __init__(self, data):
        self._data = data

    data = property(_operator.attrgetter("_data"))  # as _Output


class _Packed:
    """A saved input as returned by a saved_tensors_hooks pack function."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    @property
    def _written_at(self):
        # A pack hook that kept the Tensor itself (a parameter, say) is checked like an unpacked one.
        return self.value._written_at if isinstance(self.value, _Tensor) else 0


class _PackedOutput(_Packed):
    """A saved output as returned by a pack function; unpacked back onto its node."""

    __slots__ = ()
    _written_at = 0


def _coerce(value, like):
    """A Python scalar / array-like operand as a constant Tensor on ``like``'s device and dtype."""
    from ..tensor import constant_like

    if isinstance(value, _Tensor):
        return value
    return constant_like(value, like)


def _check_operands(op, arrays):
    """Same device for all operands and, for ops that need it, one floating dtype."""
    first = type(arrays[0])
    for array in arrays:
        if type(array) is not first:
            return _check_operands(op, _mixed_operands(op, arrays))
    if op.same_dtype:
        dtype = arrays[0].dtype
        for array in arrays:
            if array.dtype is not dtype and array.dtype != dtype:
                _check_float_dtypes(op, arrays)
                return _dtypes.promote_integers(arrays)  # see dtypes' note [integer operands of floating ops]
    return arrays


def _mixed_operands(op, arrays):
    if all(type(a) is np.ndarray or isinstance(a, np.generic) for a in arrays):
        # NumPy scalars from 0-d arithmetic inside a rule: same device, just re-wrap.
        return tuple(np.asarray(a) for a in arrays)
    from ..backends import device_of_array

    devices = ", ".join(str(device_of_array(a)) for a in arrays)
    raise DeviceError(f"{op.name}: operands are on different devices ({devices}); "
                      "move them to one device with .to(device) first")


def _check_one_gpu(op, arrays):
    """Same array type is not enough on GPUs: cuda:0 and cuda:1 arrays are both cupy.ndarray."""
    first = arrays[0].device.id
    for array in arrays:
        if array.device.id != first:
            _mixed_operands(op, arrays)


# ops/autocast.py installs ``promote_under_autocast(inputs)`` the first time an autocast block is
# entered: inside one, operands of different floating dtypes (a float16 product meeting a float32
# residual) come back cast to the widest (differentiably), as PyTorch's autocast promotes them;
# None outside a block, so the strict check below applies. Unset, it costs one global read.
promote_under_autocast = None


def _check_float_dtypes(op, arrays):
    dtypes = {a.dtype for a in arrays if a.dtype.kind == "f"}
    if len(dtypes) > 1:
        names = ", ".join(str(a.dtype) for a in arrays)
        raise DTypeError(f"{op.name}: operands have different floating dtypes ({names}); "
                         "convert one with .to(dtype) so no precision is silently gained or lost")


def _rewrap(inputs, arrays):
    """Inputs whose array _check_operands replaced (an integer operand cast to float) as new constants,
    so the node saves, and the VJPs see, the promoted values."""
    return tuple(t if t.data is a else _Tensor(a) for t, a in zip(inputs, arrays)) if inputs else inputs


_PY_SCALARS = (float, int)


def _coerce_pair(x, y):
    """_coerce_inputs for a binary op. A Python float or int beside a floating NumPy tensor (the
    common ``loss * 0.5``) becomes an array of the tensor's dtype right here — what constant_like
    returns by NumPy's weak-scalar rule — at a third of the general path's cost."""
    if type(y) in _PY_SCALARS and isinstance(x, _Tensor):
        a = x._data
        if type(a) is np.ndarray and a.dtype.kind == "f":
            return x, _Tensor(np.asarray(y, a.dtype))
    elif type(x) in _PY_SCALARS and isinstance(y, _Tensor):
        a = y._data
        if type(a) is np.ndarray and a.dtype.kind == "f":
            return _Tensor(np.asarray(x, a.dtype)), y
    return _coerce_inputs((x, y))


def _coerce_inputs(inputs):
    tensors = [u for u in inputs if isinstance(u, _Tensor)]
    # A scalar takes its dtype from a floating operand: where(mask, x, 0.0) stays float32.
    like = next((u for u in tensors if u.data.dtype.kind == "f"), tensors[0] if tensors else None)
    return tuple(_coerce(u, like) for u in inputs)


# Note: [apply is the hot path]
# Every forward op and every op inside a first-order backward runs through apply, so it avoids
# generator expressions, comprehensions (each is a function frame before Python 3.12), properties
# and imports: a chain of tiny ops is dominated by this code. Unary and binary ops, nearly all of
# them, take straight-line paths; the node's slots are filled here rather than in Node.__init__
# (one frame less), and what an op saves is read from its declaration (Op.save, Op.save_when),
# computed once when the op was declared.
def apply(op, inputs, params):
    """Run ``op`` forward on ``inputs`` (Tensors or scalars) and record a Node when grad is needed."""
    Tensor = _Tensor
    count = len(inputs)
    if count == 2:
        x, y = inputs
        if not isinstance(x, Tensor) or not isinstance(y, Tensor):
            if not isinstance(x, Tensor) and _state.raw:
                # Only gradflow's own rules run while raw mode is on (hooks and custom Functions
                # turn it off), and they call primitives on arrays only.
                return _apply_raw(op, inputs, params)
            inputs = _coerce_pair(x, y)
            x, y = inputs
        a, b = x._data, y._data
        # NumPy's built-in dtypes are singletons: the identity test settles the usual case.
        if type(a) is not type(b) or (op.same_dtype and a.dtype is not b.dtype and a.dtype != b.dtype):
            if promote_under_autocast is not None and op.same_dtype:
                promoted = promote_under_autocast(inputs)
                if promoted is not None:
                    return apply(op, promoted, params)
            arrays = _check_operands(op, (a, b))
            if arrays[0] is not a or arrays[1] is not b:  # an integer operand cast to float
                inputs = _rewrap(inputs, arrays)
                x, y = inputs
            a, b = arrays
        arrays = (a, b)
        requires = x._requires_grad or y._requires_grad
    elif count == 1:
        x = inputs[0]
        if not isinstance(x, Tensor):
            if _state.raw:
                return _apply_raw(op, inputs, params)
            inputs = _coerce_inputs(inputs)
            x = inputs[0]
        a = x._data
        arrays = (a,)
        requires = x._requires_grad
    else:
        if not isinstance(inputs[0], Tensor) and _state.raw:
            return _apply_raw(op, inputs, params)
        for t in inputs:
            if not isinstance(t, Tensor):
                inputs = _coerce_inputs(inputs)
                break
        if promote_under_autocast is not None and op.same_dtype:
            promoted = promote_under_autocast(inputs)
            if promoted is not None:
                return apply(op, promoted, params)
        # linear and the fused layers take three operands: a tuple display, not a comprehension,
        # and the usual one array type and dtype settled here, without _check_operands' loop
        if count == 3:
            a, b, c = given = (inputs[0]._data, inputs[1]._data, inputs[2]._data)
            same = type(a) is type(b) is type(c) and (
                not op.same_dtype or (a.dtype is b.dtype and b.dtype is c.dtype))
        else:
            given = tuple([t._data for t in inputs])
            same = False
        arrays = given if same else _check_operands(op, given)
        if arrays is not given:  # _check_operands returns its argument when nothing was cast
            inputs = _rewrap(inputs, arrays)
        requires = False
        for t in inputs:
            if t._requires_grad:
                requires = True
                break
    a = arrays[0]
    backend = _NUMPY if type(a) is _ndarray else (_backend_by_array_type.get(type(a)) or of_array(a))
    try:
        if backend is _NUMPY:
            result = op.forward(backend, *arrays, **params) if params else op.forward(backend, *arrays)
        else:
            if count > 1:
                _check_one_gpu(op, arrays)
            with backend.device_scope(a):  # CuPy allocates and launches on the current device
                result = op.forward(backend, *arrays, **params)
    except ValueError as exc:
        _raise_broadcast_error(op, arrays, exc)
        raise
    kept = None
    if op.keeps:  # the forward returned (output, *arrays to keep)
        result, kept = result[0], result[1:]
    if type(result) is not backend.array_type and type(result) not in _backend_by_array_type:
        result = backend.xp.asarray(result)  # a NumPy scalar from 0-d arithmetic; to_device's result stays
    if dispatch.active is not None:  # the only cost of counting when off (backends/dispatch.py)
        dispatch.record_op(op, arrays, result)
    if anomaly["enabled"]:
        check_finite(op.name, result, "forward output")
    if not requires or not _state.enabled:
        out = Tensor(result)
        if jvp_hook is not None:  # forward mode: see forward_ad's note [the hook in apply]
            jvp_hook(op, inputs, params, out)
        return out
    # The node, as Node.__init__ would make it. An edge goes to the input's node, to the input
    # itself if it is a leaf needing .grad, or nowhere.
    node = _new_node(Node)
    if count == 2:
        node.shapes = (a.shape, arrays[1].shape)
        needs = (x._requires_grad, y._requires_grad)
        fx, fy = x.grad_fn, y.grad_fn
        node.next = (fx if fx is not None else (x if needs[0] else None),
                     fy if fy is not None else (y if needs[1] else None))
    elif count == 1:
        node.shapes = (a.shape,)
        needs = (x._requires_grad,)
        fx = x.grad_fn
        node.next = (fx if fx is not None else (x if needs[0] else None),)
    elif count == 3:
        x, y, z = inputs
        node.shapes = (a.shape, arrays[1].shape, arrays[2].shape)
        needs = (x._requires_grad, y._requires_grad, z._requires_grad)
        fx, fy, fz = x.grad_fn, y.grad_fn, z.grad_fn
        node.next = (fx if fx is not None else (x if needs[0] else None),
                     fy if fy is not None else (y if needs[1] else None),
                     fz if fz is not None else (z if needs[2] else None))
    else:
        node.shapes = tuple([t.shape for t in arrays])
        needs = tuple([t._requires_grad for t in inputs])
        node.next = tuple([t.grad_fn if t.grad_fn is not None else (t if t._requires_grad else None)
                           for t in inputs])
    node.op = op
    node.params = params
    node.needs_input_grad = needs
    node.seq = next(_sequence)
    node.pre_hooks = node.retained = node.unpackers = None
    node.module = module_path[-1] if module_path else ""
    node.out_shape = result.shape
    node.out_dtype = result.dtype
    out = Tensor(result, True, node)
    pair = op.save_pair
    if pair is not None and not saved_tensor_hooks and not observers:
        # two saved inputs (mul, div, linear without a bias, the loss): the loop below written out
        i, unless_i, j, unless_j = pair
        node.saved_raw = (inputs[i] if unless_i is None or needs[unless_i] else None,
                          inputs[j] if unless_j is None or needs[unless_j] else None)
    elif op.saves_output_only and not saved_tensor_hooks and not observers:
        node.saved_raw = (_Output(result),)  # exp, tanh, sigmoid, relu...
    elif not op.save_plan and kept is None:
        node.saved_raw = ()
    else:
        plan = op.save_plan
        values = []
        for what, unless in plan:
            if unless is not None and not needs[unless]:
                values.append(None)
            elif what == OUT:
                values.append(_Output(result))
            elif what == ALL_INPUTS:
                values.extend(inputs)
            else:
                values.append(inputs[what])
        if kept is not None:
            for k in kept:
                values.append(_Kept(k))
        if saved_tensor_hooks or observers:
            node.save(values)
        else:
            node.saved_raw = tuple(values)  # Node.save without hooks or observers to tell
    if jvp_hook is not None:
        jvp_hook(op, inputs, params, out)
    return out


_new_node = object.__new__
_ndarray = np.ndarray


def _raise_broadcast_error(op, arrays, exc):
    """NumPy's plain ValueError for operands that do not broadcast, as the ShapeError the README
    promises, naming the op and the shapes (a try costs nothing on the normal path)."""
    if "broadcast" in str(exc) and not isinstance(exc, ShapeError):
        shapes = " and ".join(str(tuple(x.shape)) for x in arrays)
        raise ShapeError(f"{op.name}: shapes {shapes} cannot be broadcast together") from exc


def _apply_raw(op, arrays, params):
    if op.same_dtype and len(arrays) > 1 and (len(arrays) > 2 or arrays[0].dtype != arrays[1].dtype):
        arrays = _dtypes.promote_integers(arrays)  # as apply does: int × float32 stays float32
    backend = _backend_by_array_type.get(type(arrays[0])) or of_array(arrays[0])
    try:
        result = op.forward(backend, *arrays, **params)
    except ValueError as exc:
        _raise_broadcast_error(op, arrays, exc)
        raise
    if op.keeps:
        result = result[0]
    if type(result) is not backend.array_type and type(result) not in _backend_by_array_type:
        result = backend.xp.asarray(result)  # a NumPy scalar from 0-d arithmetic; to_device's result stays
    if dispatch.active is not None:
        dispatch.record_op(op, arrays, result)
    return result


def may_overwrite(array):
    """True when a first-order rule may write its result over ``array``, its incoming gradient
    (the note [a gradient the rule may overwrite])."""
    return _state.free_grad is array


def check_finite(op_name, array, what):
    """detect_anomaly()'s check: raise AnomalyError naming the op if ``array`` has NaN or inf."""
    xp = of_array(array).xp
    if array.dtype.kind == "f" and not bool(xp.isfinite(array).all()):
        raise AnomalyError(f"{op_name}: {what} contains NaN or infinity (shape {tuple(array.shape)})")
