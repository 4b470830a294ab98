"""``gradflow.cuda``: whether CUDA can be used here, and why not; ``graphed`` training steps.

# Note: [graphed steps]
``graphed(step_fn)`` runs ``step_fn`` eagerly for ``warmup`` calls (optimizer state, kernel
modules, cuBLAS handles and first-step branches such as SGD's momentum start are made there),
then captures one call into a CUDA graph (``cupy.cuda.Stream.begin_capture``/``end_capture``) on
static copies of its inputs, and from then on copies each call's inputs into those buffers and
replays the graph (``Graph.launch``): the whole step is one launch from the host, and no Python
runs. What a replay cannot see, and how each is handled:

- Input shapes, dtypes and devices: fixed at capture; a call with others raises ShapeError /
  DTypeError naming both (make another graphed step for them, or pad the batch).
- The Python path: replays repeat the ops captured. The capture's primitive ops (names and bytes
  moved, from the dispatch counter's hook) must equal the last eager warm-up call's, else
  RuntimeError: a step whose ops depend on data or on a call count would replay a stale path.
  After capture a path change cannot be seen (no Python runs); that is the contract of graphs.
- Host values baked into launch arguments: Adam must be ``capturable=True`` (its step number
  lives on the device, kernels/optimizers.cu); eager Adam passes per-step bias corrections by
  value and is refused. SGD's arguments do not change after its first step (the warm-up), so it
  is graph-safe. Learning rates are captured too: a scheduler changing ``lr`` needs a new graph.
- Device-to-host copies (``.item()``, printing the loss) cannot be captured
  (cudaErrorStreamCaptureUnsupported); read the returned loss after the call instead.

Verified here on the emulated CuPy (tests/kernels/emulated_cupy.py: a capture records every
device operation and kernel argument bytes, runs nothing as far as memory before the capture is
concerned, and ``Graph.launch`` re-executes the recording): replayed steps give eager steps'
parameters, shape/dtype/path changes raise. Only a real GPU can verify: that CuPy's memory pool
never hands memory the graph uses to other arrays after the capture (the step's intermediates are
freed in Python; the emulation keeps them, as a graph-private pool would — CuPy gives no such
pool, so a real replay may need the capture under its own ``cupy.cuda.MemoryPool``), that the
host-to-device copies captured (the backward seed, the gradients' address table) read stable
host buffers at replay, and the timing gain.
"""
from __future__ import annotations

from .backends import NUMPY, of_array
from .backends import dispatch
from .backends.cuda_probe import is_available, why_cuda_unusable
from .errors import DeviceError, DTypeError, ShapeError
from .tensor import Tensor

__all__ = ["is_available", "why_cuda_unusable", "graphed", "GraphedStep"]


class _OpPath:
    """The primitive ops a block runs, as (name, bytes read, bytes written): shapes and dtypes
    show in the byte counts. Installed as a dispatch counter (only ``add`` is called)."""

    def __init__(self):
        self.ops = []

    def add(self, kind, name, read, written, flops):
        self.ops.append((name, read, written))

    def __enter__(self):
        self._previous = dispatch.active
        dispatch.active = (self._previous or ()) + (self,)
        return self

    def __exit__(self, *exc):
        dispatch.active = self._previous
        return False


def _signature(inputs):
    return tuple((tuple(t.shape), str(t.dtype), str(t.device)) for t in inputs)


def _describe(signature):
    return ", ".join(f"{dtype}{list(shape)} on {device}" for shape, dtype, device in signature)


def _refuse_eager_adam(optimizers):
    for optimizer in optimizers:
        if getattr(optimizer, "capturable", None) is False:  # Adam, AdamW (optim sits above here)
            raise ValueError(f"graphed: {type(optimizer).__name__} passes each step's bias "
                             "corrections by value, which a CUDA graph would freeze at the captured "
                             f"step; make it with {type(optimizer).__name__}(..., capturable=True)")


class GraphedStep:
    """``step_fn`` captured into a CUDA graph after ``warmup`` eager calls (see the Note above).

    Calls take the same Tensors ``step_fn`` takes (all on one CUDA device) and return what it
    returned at capture — the same Tensors each replay, refilled by the graph."""

    def __init__(self, step_fn, warmup=1, optimizers=()):
        if warmup < 1:
            raise ValueError(f"graphed needs at least one eager warm-up call, got warmup={warmup}")
        _refuse_eager_adam(optimizers)
        self.step_fn, self.warmup = step_fn, int(warmup)
        self.eager_calls = self.replays = 0
        self._graph = self._stream = self._static = self._outputs = None
        self._signature = self._eager_path = None

    def __call__(self, *inputs):
        for t in inputs:
            if not isinstance(t, Tensor) or of_array(t.data) is NUMPY:
                where = t.device if isinstance(t, Tensor) else type(t).__name__
                raise DeviceError(f"graphed steps take CUDA tensors (a graph replays device "
                                  f"memory); got {where}")
        signature = _signature(inputs)
        if self._graph is not None:
            return self._replay(inputs, signature)
        if self.eager_calls < self.warmup:
            with _OpPath() as path:
                outputs = self.step_fn(*inputs)
            self._eager_path, self._signature = path.ops, signature
            self.eager_calls += 1
            return outputs
        if signature != self._signature:
            self._mismatch(signature, "warmed up")
        return self._capture(inputs)

    def _mismatch(self, signature, when):
        shapes = [s[0] for s in signature] != [s[0] for s in self._signature]
        error = ShapeError if shapes else DTypeError
        raise error(f"graphed step {when} for inputs {_describe(self._signature)}; got "
                    f"{_describe(signature)}. A CUDA graph replays fixed shapes, dtypes and devices: "
                    "make another graphed step for these inputs (or pad the batch)")

    def _capture(self, inputs):
        backend = of_array(inputs[0].data)
        cupy = backend.xp
        with backend.device_scope(inputs[0].data):
            self._static = [Tensor(t.data.copy()) for t in inputs]
            stream = cupy.cuda.Stream(non_blocking=True)
            with stream:
                stream.begin_capture()
                try:
                    with _OpPath() as path:
                        outputs = self.step_fn(*self._static)
                finally:
                    graph = stream.end_capture()
        if path.ops != self._eager_path:
            first = next((i for i, (a, b) in enumerate(zip(path.ops, self._eager_path)) if a != b),
                         min(len(path.ops), len(self._eager_path)))
            seen = path.ops[first] if first < len(path.ops) else "nothing"
            wanted = self._eager_path[first] if first < len(self._eager_path) else "nothing"
            raise RuntimeError(f"graphed: the step's Python path changed between the last eager call "
                               f"and the capture (op {first}: {seen} instead of {wanted}; "
                               f"{len(path.ops)} ops against {len(self._eager_path)}). A graph would "
                               "replay one path forever: keep data-dependent branches out of the step")
        self._graph, self._stream, self._outputs = graph, stream, outputs
        graph.launch(stream)  # the capture ran nothing: this launch is the step
        self.replays += 1
        return outputs

    def _replay(self, inputs, signature):
        if signature != self._signature:
            self._mismatch(signature, "captured")
        backend = of_array(inputs[0].data)
        with backend.device_scope(inputs[0].data):
            for static, t in zip(self._static, inputs):
                backend.xp.copyto(static.data, t.data)  # one device copy per input
            self._graph.launch(self._stream)
        self.replays += 1
        return self._outputs


def graphed(step_fn, warmup=1, optimizers=()):
    """Capture ``step_fn`` (a whole training step on CUDA tensors) into a CUDA graph and replay
    it on each later call; pass the step's ``optimizers`` to have eager Adam refused up front.
    Typical use (CUDA tensors): ``step = gf.cuda.graphed(train_step, optimizers=[opt])``, then
    ``loss = step(x, y)`` per batch, reading ``float(loss)`` after the call."""
    return GraphedStep(step_fn, warmup=warmup, optimizers=optimizers)
