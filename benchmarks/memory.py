"""Workload (e): bytes retained for backward by one forward, gradflow against PyTorch.

Both count the same thing — the unique buffers the graph saves (input batch, weights, activations),
each buffer once however many nodes save it or views of it:

- gradflow: a walk of the graph from ``loss.grad_fn`` over ``node.next``, summing the base arrays
  behind each ``node.saved_raw`` entry; cross-checked with ``gradflow.memory.track()`` where it exists;
- PyTorch: its saved-tensor hooks, summing unique storages (``contenders/torch_impl.py``).

PyTorch runs in its own process (``python -m benchmarks.memory torch``).
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from .workloads import make_case

MEMORY_CASES = [("mlp", 256), ("mlp", 1024), ("deep", 256)]


def _root(array):
    while isinstance(getattr(array, "base", None), np.ndarray):
        array = array.base
    return array


def _arrays(value):
    """The arrays one saved_raw entry holds (a Tensor, an _Output marker, a raw array, or None)."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return [value]
    inner = getattr(value, "data", None)
    if isinstance(inner, np.ndarray):
        return [inner]
    packed = getattr(value, "value", None)
    return _arrays(packed) if packed is not None else []


def graph_saved_bytes(loss):
    """Unique bytes saved by the nodes of ``loss``'s graph."""
    from gradflow.autograd.node import Node

    seen_nodes, buffers, stack = set(), {}, [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        for value in node.saved_raw or ():
            for array in _arrays(value):
                root = _root(array)
                buffers[id(root)] = root.nbytes
        stack.extend(n for n in node.next if type(n) is Node)
    return sum(buffers.values())


def gradflow_retained(case):
    import gradflow as gf

    from .contenders.gradflow_impl import _params, mlp_loss

    x, labels = gf.tensor(case.arrays["x"]), gf.tensor(case.arrays["labels"])
    layers = _params(case)
    tracker_bytes = None
    try:
        from gradflow.memory import track
    except ImportError:
        track = None
    if track is not None:
        with track() as tracker:
            loss = mlp_loss(x, labels, layers)
            tracker_bytes = int(tracker.retained_bytes)
    else:
        loss = mlp_loss(x, labels, layers)
    counted = graph_saved_bytes(loss)
    loss.backward()
    return {"graph_walk": counted, "tracker": tracker_bytes}


def measure(contender):
    rows = {}
    for workload, batch in MEMORY_CASES:
        case = make_case(workload, batch)
        if contender == "gradflow":
            rows[case.name] = gradflow_retained(case)
        else:
            from .contenders import torch_impl

            if not torch_impl.AVAILABLE:
                return {"skipped": torch_impl.MISSING}
            rows[case.name] = {"saved_tensor_hooks": torch_impl.retained_bytes(case)}
    return rows


def run_all():
    """{'gradflow': {...}, 'torch': {...}}, each measured in a fresh process."""
    out = {}
    for contender in ("gradflow", "torch"):
        done = subprocess.run([sys.executable, "-m", "benchmarks.memory", contender],
                              capture_output=True, text=True)
        if done.returncode != 0:
            out[contender] = {"skipped": f"failed: {done.stderr.strip().splitlines()[-1:]}"}
        else:
            out[contender] = json.loads(done.stdout)
    return out


if __name__ == "__main__":
    json.dump(measure(sys.argv[1]), sys.stdout)
