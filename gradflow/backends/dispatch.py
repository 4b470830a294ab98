"""The dispatch point: count launches, bytes and flops per op and per kernel, on either backend.

Two kinds of calls reach a device, and both are counted here:

- **ops**: every primitive runs its forward through ``autograd.node.apply`` (or ``_apply_raw``
  inside a first-order backward), which calls ``record_op`` when ``active`` is set;
- **kernels**: calls into a backend's kernel table (``act_forward``, ``gemm``, ``sgd_update``...),
  counted by swapping each backend's table for a ``CountingKernels`` wrapper while counting.

>>> import gradflow as gf
>>> from gradflow.backends import dispatch
>>> with dispatch.counting() as c:
...     y = gf.relu(gf.ones(2, 3) * 2.0)
>>> c.rows[("op", "mul")].calls, c.rows[("kernel", "act_forward")].calls
(1, 1)

What the numbers mean (an estimate of logical traffic, not a hardware counter):

- bytes read = the ``nbytes`` of every array argument; bytes written = the ``nbytes`` of every
  array result (in-place kernels: of the arrays they update). A view (reshape, transpose) is
  counted as if it were copied; caches and fusion inside NumPy are invisible.
- flops: matmul/linear/gemm 2·M·N·K (ops declare it with ``primitive(..., flops=)``); everything
  else one per element touched, the larger of the output and the largest input — about one per
  output element for elementwise ops and one per input element for reductions.
- An op that calls a kernel shows in both sections (the relu op and its ``act_forward`` kernel);
  the sections are totalled apart. A kernel row counts calls into the table: one call is one
  device launch except ``bias_act_backward``, which launches two (the per-chunk column sums,
  then their total). Plain array arithmetic inside a VJP rule on raw arrays is not
  a call through here and is not counted; the hot rules (linear, activations, cross-entropy)
  call kernels, so their backward is.

# Note: [counting costs nothing when off]
``apply`` runs for every op, so the only cost of this module when not counting is one check of
``active`` there. Kernel tables are not wrapped at all when off: ``counting()`` swaps the
wrapper in on entry and the plain table back on exit.
"""
from __future__ import annotations

import contextlib
import inspect
import math

# The counters recording right now (innermost last), or None: the one flag ``apply`` checks.
active: tuple | None = None
_wrapped: list = []  # (backend, its plain kernel table) while counting


class Row:
    """Totals for one op or kernel name."""

    __slots__ = ("calls", "bytes_read", "bytes_written", "flops")

    def __init__(self):
        self.calls = self.bytes_read = self.bytes_written = self.flops = 0

    def add(self, read, written, flops):
        self.calls += 1
        self.bytes_read += read
        self.bytes_written += written
        self.flops += flops

    def __repr__(self):
        return (f"Row(calls={self.calls}, bytes_read={self.bytes_read}, "
                f"bytes_written={self.bytes_written}, flops={self.flops})")


class Counter:
    """Per-name totals, keyed ``("op", name)`` or ``("kernel", name)``."""

    def __init__(self):
        self.rows: dict[tuple[str, str], Row] = {}

    def add(self, kind, name, read, written, flops):
        row = self.rows.get((kind, name))
        if row is None:
            row = self.rows[(kind, name)] = Row()
        row.add(read, written, flops)

    def total(self, kind="op") -> Row:
        """The sum over one section (``"op"`` or ``"kernel"``)."""
        total = Row()
        for (row_kind, _), row in self.rows.items():
            if row_kind == kind:
                total.calls += row.calls
                total.bytes_read += row.bytes_read
                total.bytes_written += row.bytes_written
                total.flops += row.flops
        return total

    def as_dict(self) -> dict:
        """``{"op:name": {"calls": .., "bytes_read": .., ...}}``, for benchmark result files."""
        return {f"{kind}:{name}": {field: getattr(row, field) for field in Row.__slots__}
                for (kind, name), row in sorted(self.rows.items())}

    def table(self) -> str:
        """A text table, ops then kernels, each sorted by flops, with a total per section."""
        lines = [f"{'kind':6} {'name':24} {'calls':>7} {'read':>10} {'written':>10} {'flops':>12}"]
        for kind in ("op", "kernel"):
            names = sorted((name for k, name in self.rows if k == kind),
                           key=lambda name: (-self.rows[(kind, name)].flops, name))
            for name in names:
                lines.append(_line(kind, name, self.rows[(kind, name)]))
            if names:
                lines.append(_line(kind, "(total)", self.total(kind)))
        return "\n".join(lines)


def _line(kind, name, row):
    return (f"{kind:6} {name:24} {row.calls:7d} {_bytes(row.bytes_read):>10} "
            f"{_bytes(row.bytes_written):>10} {row.flops:12.4g}")


def _bytes(n):
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# ---- what one call costs ----

def _is_array(value):
    return hasattr(value, "nbytes") and hasattr(value, "shape")


def _elements(value):
    return math.prod(value.shape)


def default_flops(inputs, outputs):
    """One per element touched: max(largest input, largest output) elements."""
    return max([_elements(a) for a in inputs] + [_elements(a) for a in outputs] + [0])


def record_op(op, arrays, result):
    """Called by ``apply`` (when ``active``) after ``op``'s forward produced ``result``."""
    inputs = [a for a in arrays if _is_array(a)]
    read = sum(a.nbytes for a in inputs)
    flops = getattr(op, "flops", None)  # Function and checkpoint ops declare none
    flops = flops(arrays, result) if flops is not None else default_flops(inputs, [result])
    for counter in active:
        counter.add("op", op.name, read, result.nbytes, flops)


def _gemm_cost(args, result):
    a, b, out = args["a"], args["b"], args["out"]
    inner = a.shape[0] if args.get("trans_a") else a.shape[-1]
    read = a.nbytes + b.nbytes + (out.nbytes if args.get("beta") else 0)
    return read, out.nbytes, 2 * _elements(out) * inner


def _sgd_cost(args, result):
    param, momentum = args["param"], args.get("momentum")
    arrays = [param, args["grad"]] + ([args["momentum_buffer"]] if momentum else [])
    updated = [param] + ([args["momentum_buffer"]] if momentum else [])
    per_element = 2 + (2 if momentum else 0) + (2 if args.get("weight_decay") else 0)
    return sum(a.nbytes for a in arrays), sum(a.nbytes for a in updated), per_element * param.size


def _adam_cost(args, result):
    # Moments (3 + 4), denominator (3), update (2), decay (2): a count of the twin's arithmetic.
    updated = [args["param"], args["exp_avg"], args["exp_avg_sq"]]
    per_element = 12 + (2 if args.get("weight_decay") else 0)
    return (sum(a.nbytes for a in updated) + args["grad"].nbytes, sum(a.nbytes for a in updated),
            per_element * args["param"].size)


def _adam_multi_cost(args, result):
    # adam_update's cost summed over the group's tensors (master weights counted as a parameter).
    masters = args.get("masters") or [None] * len(args["params"])
    read = written = flops = 0
    for param, grad, m, v, master in zip(args["params"], args["grads"], args["exp_avgs"],
                                         args["exp_avg_sqs"], masters):
        updated = sum(a.nbytes for a in [param, m, v] + ([master] if master is not None else []))
        written += updated
        read += updated + grad.nbytes
        flops += (12 + (2 if args.get("weight_decay") else 0)) * param.size
    return read, written, flops


def _sgd_multi_cost(args, result):
    buffers = args.get("buffers") or [None] * len(args["params"])
    costs = [_sgd_cost({**args, "param": p, "grad": g, "momentum_buffer": b}, result)
             for p, g, b in zip(args["params"], args["grads"], buffers)]
    return tuple(sum(c[i] for c in costs) for i in range(3))


# Kernels whose cost the default rule (array arguments read, array results written) gets wrong:
# in-place updates return nothing, and gemm's flops are not one per element.
KERNEL_COSTS = {"gemm": _gemm_cost, "sgd_update": _sgd_cost, "adam_update": _adam_cost,
                "adam_update_multi": _adam_multi_cost, "sgd_update_multi": _sgd_multi_cost}


def _kernel_cost(name, signature, args, kwargs, result):
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    if name in KERNEL_COSTS:
        return KERNEL_COSTS[name](bound.arguments, result)
    inputs = [v for v in bound.arguments.values() if _is_array(v)]
    outputs = [v for v in (result if isinstance(result, tuple) else (result,)) if _is_array(v)]
    return (sum(a.nbytes for a in inputs), sum(a.nbytes for a in outputs),
            default_flops(inputs, outputs))


class CountingKernels:
    """A kernel table that records each call, then runs the plain table's function."""

    def __init__(self, table):
        self._table = table

    def __getattr__(self, name):
        value = getattr(self._table, name)
        if name.startswith("_") or not inspect.isfunction(value):
            return value
        signature = inspect.signature(value)

        def counted(*args, **kwargs):
            result = value(*args, **kwargs)
            if active is not None:
                cost = _kernel_cost(name, signature, args, kwargs, result)
                for counter in active:
                    counter.add("kernel", name, *cost)
            return result

        counted.__name__ = name
        setattr(self, name, counted)  # found directly next time, without __getattr__
        return counted

    def __repr__(self):
        return f"<counting {self._table.__name__}>"


def instrument(backend):
    """Wrap ``backend``'s kernel table while counting (the CuPy backend may be built mid-count)."""
    if active is not None and not isinstance(backend.kernels, CountingKernels):
        _wrapped.append((backend, backend.kernels))
        backend.kernels = CountingKernels(backend.kernels)


@contextlib.contextmanager
def counting():
    """Count every op and kernel call in the block; yields the Counter (``c.table()`` prints
    it). Blocks nest: each counter sees the calls made while it is open."""
    global active
    from . import _by_array_type

    counter = Counter()
    outer = active
    active = (outer or ()) + (counter,)
    try:
        for backend in list(_by_array_type.values()):
            instrument(backend)
        yield counter
    finally:
        active = outer
        if outer is None:
            while _wrapped:
                backend, table = _wrapped.pop()
                backend.kernels = table
