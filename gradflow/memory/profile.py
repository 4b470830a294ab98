"""``profile``: one measured training step (and one inference pass) per batch size, and the fits.

Peaks are the allocator's (tracemalloc on NumPy, the memory pool on CuPy) during the step, plus
what existed before it (parameters, optimizer state, the batch), so they are totals. Gradients are set to
None before each step, as ``zero_grad()`` does by default, so every step allocates them afresh.
A warm-up step at the smallest size runs first (optimizer state, caches) and the parameters are
restored at the end, so profiling does not train the model.
"""
from __future__ import annotations

import gc

from ..autograd import node as _node
from ..autograd.grad_mode import no_grad
from .allocator import meter
from .buffers import nbytes_of_tensors
from .fit import LinearFit
from .report import format_bytes, table
from .tracker import optimizer_state_bytes, track

FIELDS = ("retained", "parameters", "gradients", "optimizer_state", "training_peak", "inference_peak")


def default_loss(output, target):
    """Cross-entropy for integer targets, mean squared error for float targets, sum without one."""
    from ..nn import functional as F

    if target is None:
        return output.sum()
    if target.dtype.kind in "iu":
        return F.cross_entropy(output, target)
    return F.mse_loss(output, target)


def _split(batch):
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def _device_of(model):
    params = list(model.parameters())
    return str(params[0].device) if params else "cpu"


def measure_step(model, make_batch, batch_size, optimizer=None, loss_fn=None):
    """One training step and one no_grad forward at ``batch_size``: a dict of FIELDS (bytes)."""
    loss_fn = loss_fn or default_loss
    params = list(model.parameters())
    device = _device_of(model)
    for p in params:
        p.grad = None
    gc.collect()
    # The batch is made outside the measured region: how make_batch builds it (float64 then a
    # cast, say) is not the step's cost; its final size is counted with what exists before.
    x, target = _split(make_batch(batch_size))
    existing = nbytes_of_tensors(params + [x, target]) + optimizer_state_bytes(optimizer)
    # The tracker counts the retained activations in a forward of its own, outside the meter:
    # its records are Python objects whose number varies from run to run (their lifetimes follow
    # garbage collection and id reuse), and the meter must see the step alone.
    with track() as t:
        loss = loss_fn(model(x), target)
        retained = t.retained_bytes
    del loss, t
    gc.collect()
    with meter(device) as m, _Laps(m) as laps:
        loss = loss_fn(model(x), target)
        laps.lap()
        loss.backward()
        laps.lap()
        gradients = nbytes_of_tensors(p.grad for p in params)
        if optimizer is not None:
            optimizer.step()
        del loss, x, target
        laps.lap()
    lap_peaks = [existing + peak for peak in laps.peaks]
    for p in params:
        p.grad = None
    gc.collect()
    x, _ = _split(make_batch(batch_size))
    existing = nbytes_of_tensors(params + [x])
    with meter(device) as m, no_grad():
        model(x)
    del x
    return {"batch_size": batch_size, "retained": retained, "parameters": nbytes_of_tensors(params),
            "gradients": gradients, "optimizer_state": optimizer_state_bytes(optimizer),
            "training_peak": max(lap_peaks), "inference_peak": existing + m.peak, "lap_peaks": lap_peaks}


class _Laps:
    """Splits a step's peak into laps at every saving node, forward and backward.

    # Note: [why one line is not enough]
    A step's peak is a maximum over moments: early in backward (activations plus their gradients,
    growing with the batch) or in a weight-gradient product or the optimizer step (parameter-sized,
    fixed). Each moment is linear in the batch size but their maximum is not, so a single line
    fitted on small batches misses where a large batch peaks. Each lap is fitted on its own and the
    prediction is the largest fitted lap.
    """

    def __init__(self, allocator_meter):
        self.meter, self.peaks = allocator_meter, []

    def lap(self, _=None):
        self.peaks.append(self.meter.lap())

    def on_save(self, node):
        self.lap()
        node.register_prehook(self.lap, keeps_grad=False)  # lets the engine reuse the gradient

    def on_free(self, node):
        pass

    def on_free_value(self, node, value):
        pass

    def __enter__(self):
        _node.observers.append(self)
        return self

    def __exit__(self, *exc):
        _node.observers.remove(self)
        return False


class Profile:
    """Per-batch-size measurements and their fits (``fits["training_peak"]`` and so on)."""

    def __init__(self, rows):
        self.rows = rows
        self.batch_sizes = [r["batch_size"] for r in rows]
        fitted = ("retained", "training_peak", "inference_peak")
        self.fits = {f: LinearFit(self.batch_sizes, [r[f] for r in rows]) for f in fitted} if len(rows) > 1 else {}
        lap_counts = {len(r["lap_peaks"]) for r in rows}
        # Laps line up across sizes when the graph has the same shape at every batch size.
        self.lap_fits = ([LinearFit(self.batch_sizes, [r["lap_peaks"][i] for r in rows]) for i in range(lap_counts.pop())]
                         if len(rows) > 1 and len(lap_counts) == 1 else None)

    def _fit(self, field):
        if field not in self.fits:
            raise ValueError(f"a fit needs at least two batch sizes; profiled only {self.batch_sizes}")
        return self.fits[field]

    def predict(self, batch_size, field="training_peak"):
        """Predicted bytes at ``batch_size``; the training peak is the largest predicted lap."""
        if field == "training_peak" and self.lap_fits:
            return max(fit.predict(batch_size) for fit in self.lap_fits)
        return self._fit(field).predict(batch_size)

    def max_batch(self, budget_bytes, inference=False):
        """The largest batch whose predicted training (or inference) peak fits ``budget_bytes``."""
        from .report import parse_bytes

        budget = parse_bytes(budget_bytes)
        if inference or not self.lap_fits:
            return self._fit("inference_peak" if inference else "training_peak").max_batch(budget)
        growing = [f for f in self.lap_fits if f.per_example > 0]
        if not growing:
            raise ValueError("the training peak does not grow with batch size; max_batch is unbounded")
        if max(f.fixed for f in self.lap_fits) > budget:
            return 0
        return min(f.max_batch(budget) for f in growing)

    def table(self):
        headers = ["batch", "retained", "params", "grads", "optim", "train peak", "infer peak"]
        return table(headers, [[r["batch_size"]] + [format_bytes(r[f]) for f in FIELDS] for r in self.rows])

    def to_dict(self):
        fits = {k: v.to_dict() for k, v in self.fits.items()}
        rows = [{k: v for k, v in r.items() if k != "lap_peaks"} for r in self.rows]
        return {"rows": rows, "fits": fits}


def profile(model, make_batch, batch_sizes, optimizer=None, loss_fn=None, progress=False, restore=True):
    """Measure one training step per batch size and fit ``bytes = fixed + per_example × batch``.

    ``model``: a callable with ``.parameters()``; ``make_batch(n)``: the input, or (input, target);
    ``loss_fn(output, target)``: cross-entropy / MSE by target dtype when not given.

    >>> import gradflow as gf
    >>> mlp = gf.nn.MLP([784, 256, 10])
    >>> p = gf.memory.profile(mlp, lambda n: (gf.randn(n, 784), gf.randint(0, 10, (n,))), [32, 64, 128])
    >>> p.max_batch("64MiB") > 128
    True
    """
    sizes = sorted(int(n) for n in batch_sizes)
    if not sizes or sizes[0] < 1:
        raise ValueError(f"batch_sizes must be positive integers, got {list(batch_sizes)}")
    params = list(model.parameters())
    saved = [p.data.copy() for p in params] if restore else None
    try:
        measure_step(model, make_batch, sizes[0], optimizer, loss_fn)  # warm-up, not recorded
        iterator = sizes
        if progress:
            from tqdm import tqdm

            iterator = tqdm(sizes, desc="profiling batch sizes", unit="size", leave=False)
        rows = [measure_step(model, make_batch, n, optimizer, loss_fn) for n in iterator]
    finally:
        if saved is not None:
            for p, data in zip(params, saved):
                p.data[...] = data
                p.grad = None
    return Profile(rows)
