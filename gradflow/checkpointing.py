"""Activation checkpointing: keep a segment's inputs, recompute its insides during backward.

# Note: [one node per segment]
``checkpoint(fn, *args)`` runs ``fn`` under no_grad, so nothing inside it is saved, and records a
single node whose only saved values are the tensor arguments. Its backward reruns ``fn`` with
grad enabled on detached copies of those arguments and backpropagates the incoming gradient
through the rerun graph: parameters used inside ``fn`` get their ``.grad`` there, and the copies'
gradients are what the node returns for its inputs. The rerun sees the same random numbers as
the first run (the generator state is saved and restored), so dropout masks match and gradients
are identical to the unchecked model's.

Like PyTorch's reentrant checkpoint, parameters inside ``fn`` are reached through ``.grad``, so
``autograd.grad(loss, params)`` through a checkpoint is not supported.
"""
from __future__ import annotations

from . import creation
from .autograd import engine, grad_mode
from .autograd.function import tensor_backward_on_arrays
from .autograd.node import Node
from .errors import BackwardError
from .tensor import Tensor


class _CheckpointOp:
    """Looks like a primitive to the engine: a name and ``backward(node, g, create_graph)``."""

    accumulate_rule = None  # the engine's hook for ops that add into .grad buffers (linear's GEMM)
    reuses_grad = False     # nor write over the incoming gradient (see autograd/node.py)
    fresh_grads = False     # its results come from user code: never the engine's (autograd/engine.py)

    __slots__ = ("name", "jvp_rule")

    def __init__(self, name):
        self.name = name
        self.jvp_rule = None

    def backward(self, node, g, create_graph):
        fn, args, positions, rng_state = (node.params[k] for k in ("fn", "args", "positions", "rng_state"))
        saved = node.saved
        inputs = [Tensor(t.data, requires_grad=needs) if t is not None else None
                  for t, needs in zip(saved, node.needs_input_grad)]
        call_args = list(args)
        for position, t in zip(positions, inputs):
            call_args[position] = t
        generator = creation.generator()
        outer_state = generator.bit_generator.state
        generator.bit_generator.state = rng_state
        try:
            with grad_mode.enable_grad():
                out = fn(*call_args)
        finally:
            generator.bit_generator.state = outer_state
        if out.requires_grad:
            engine.backward([out], [g], retain_graph=create_graph, create_graph=create_graph)
        return tuple(t.grad if t is not None and t.requires_grad else None for t in inputs)

    def backward_arrays(self, node, g):
        """The engine's first-order path passes arrays; the rerun itself works on Tensors."""
        return tensor_backward_on_arrays(self, node, g)


_OPS = {}


def _may_need_grad(fn, tensors):
    if any(t.requires_grad for t in tensors):
        return True
    parameters = getattr(fn, "parameters", None)
    if parameters is None:
        return True  # a plain function may close over parameters: record to be safe
    return any(p.requires_grad for p in parameters())


def checkpoint(fn, *args):
    """``fn(*args)`` keeping only ``args`` for backward; ``fn`` is rerun during backward.

    >>> import gradflow as gf
    >>> layer = gf.nn.Linear(16, 16)
    >>> x = gf.randn(4, 16, requires_grad=True)
    >>> gf.checkpoint(lambda h: gf.relu(layer(h)), x).sum().backward()
    >>> x.grad.shape
    (4, 16)
    """
    positions = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))
    tensors = [args[i] for i in positions]
    rng_state = creation.generator().bit_generator.state
    with grad_mode.no_grad():
        out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"checkpoint: fn must return one Tensor, got {type(out).__name__}")
    if not (grad_mode.is_grad_enabled() and _may_need_grad(fn, tensors)):
        return out
    if not tensors:
        raise BackwardError("checkpoint: fn has no Tensor arguments; pass the segment's input as an argument")
    name = f"checkpoint[{getattr(fn, '__name__', type(fn).__name__)}]"
    op = _OPS.setdefault(name, _CheckpointOp(name))
    # The rerun must not keep the tensors themselves (only node.saved does), so args keeps Nones there.
    stripped = tuple(None if i in positions else a for i, a in enumerate(args))
    params = {"fn": fn, "args": stripped, "positions": positions, "rng_state": rng_state}
    node = Node(op, tensors, params, tuple(t.data.shape for t in tensors), out.data)
    result = Tensor(out.data, True, node)
    node.save(tensors)
    return result


def _layers_of(seq):
    try:
        return list(seq)
    except TypeError:
        raise TypeError(f"checkpoint_sequential needs a sequence of layers (a Sequential or a list), "
                        f"got {type(seq).__name__}") from None


def split(n_layers, segments):
    """``segments`` as a list of (start, stop) ranges: an int splits evenly, ranges pass through."""
    if isinstance(segments, int):
        if not 1 <= segments <= n_layers:
            raise ValueError(f"checkpoint_sequential: segments must be between 1 and {n_layers} "
                             f"(the number of layers), got {segments}")
        bounds = [round(i * n_layers / segments) for i in range(segments + 1)]
        return [(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    ranges = [tuple(r) for r in segments]
    for a, b in ranges:
        if not 0 <= a < b <= n_layers:
            raise ValueError(f"checkpoint_sequential: segment {(a, b)} is not a range inside 0..{n_layers}")
    return ranges


class _Segment:
    """Layers ``start..stop`` of a sequence as one callable (named for the tracker's report)."""

    def __init__(self, layers, start, stop):
        self.layers, self.__name__ = layers, f"layers[{start}:{stop}]"

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers if hasattr(layer, "parameters") for p in layer.parameters()]


class CheckpointedSequential:
    """A sequence of layers run with the given segments checkpointed (others run normally)."""

    def __init__(self, seq, segments, checkpointed=None):
        self.seq = seq
        self.layers = _layers_of(seq)
        self.segments = split(len(self.layers), segments)
        self.checkpointed = [True] * len(self.segments) if checkpointed is None else list(checkpointed)

    def __call__(self, x):
        covered = 0
        for (start, stop), on in zip(self.segments, self.checkpointed):
            for layer in self.layers[covered:start]:
                x = layer(x)
            segment = _Segment(self.layers[start:stop], start, stop)
            x = checkpoint(segment, x) if on else segment(x)
            covered = stop
        for layer in self.layers[covered:]:
            x = layer(x)
        return x

    def parameters(self):
        if hasattr(self.seq, "parameters"):
            return list(self.seq.parameters())
        return _Segment(self.layers, 0, len(self.layers)).parameters()


def checkpoint_sequential(seq, segments, *inputs):
    """Checkpoint a sequence of layers in ``segments`` pieces (an int, or (start, stop) ranges).

    With ``inputs`` it runs and returns the output; without, it returns a callable model.
    Every segment is checkpointed, the last one too: only each segment's input is kept.

    >>> import gradflow as gf
    >>> mlp = gf.nn.MLP([32, 64, 64, 64, 10])
    >>> gf.checkpoint_sequential(mlp, 2, gf.randn(8, 32)).shape
    (8, 10)
    """
    model = CheckpointedSequential(seq, segments)
    return model(*inputs) if inputs else model
