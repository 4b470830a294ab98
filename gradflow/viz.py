"""Draw a computational graph: ``draw(result, "graph.svg")`` writes DOT and, with Graphviz, a picture.

Ellipses are ops (with the module that ran them and the bytes they saved for backward); boxes are
tensors (name, shape, dtype; optionally value and gradient when small). Parameters are filled and
named by their module path; inputs that need no gradient are dashed. Leaves sit at the bottom,
the result at the top, arrows follow the data upward, as in the textbook's figure.

>>> import gradflow as gf
>>> from gradflow import viz
>>> W = gf.ones(2, 3, requires_grad=True)
>>> x = gf.ones(3)
>>> loss = gf.tanh(W @ x).sum()
>>> dot = viz.to_dot(loss, names={W: "W", x: "x", loss: "L"})
>>> 'label="tanh' in dot and '"W\\\\n(2, 3) float32"' in dot
True

``compact=True`` keeps only the named tensors and merges the ops between them into one node per
result, which turns the textbook network into its figure: x, W1 -> z -> h; h, W2 -> o; o, y -> L;
W1, W2 -> s; L, s -> J.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import warnings

import numpy as np

from .autograd.node import Node, _Kept, _Output
from .tensor import Tensor

__all__ = ["draw", "to_dot", "named_dependencies"]


# ----- reading the graph ----------------------------------------------------------------------
class _Graph:
    """The nodes below some roots, with what is known about the tensors between them."""

    def __init__(self, roots, names=None, parameters=None):
        self.roots = [r for r in roots if isinstance(r, Tensor)]
        start = [r.grad_fn for r in self.roots if r.grad_fn is not None]
        start += [r for r in roots if isinstance(r, Node)]
        self.nodes = _walk(start)
        self.leaf_names, self.node_names, self._ids = {}, {}, {}
        for tensor, name in _named(names, parameters):
            if tensor.grad_fn is not None:
                self.node_names[tensor.grad_fn] = name
            else:
                self.leaf_names[id(tensor)] = name
        self.values = {}   # Node -> its output array, where some tensor or saved slot shows it
        for r in self.roots + [t for t, _ in _named(names, None)]:
            if r.grad_fn is not None:
                self.values[r.grad_fn] = r.data
        for node in self.nodes:
            for k, value in enumerate(node.saved_raw or ()):
                if type(value) is _Output:
                    self.values[node] = value.data
                elif isinstance(value, Tensor) and value.grad_fn is not None:
                    self.values[value.grad_fn] = value.data

    def inputs(self, node):
        """(kind, key, tensor or None, index) per input: kind is "node", "leaf" or "constant"."""
        saved_inputs = _saved_inputs(node)
        for i, source in enumerate(node.next):
            if type(source) is Node:
                yield "node", source, None, i
            elif source is not None:
                yield "leaf", id(source), source, i
            else:
                yield "constant", (node, i), saved_inputs.get(i), i

    def leaves(self):
        seen = {}
        for node in self.nodes:
            for kind, key, tensor, _ in self.inputs(node):
                if kind == "leaf":
                    seen.setdefault(key, tensor)
        return seen

    def dot_id(self, key):
        """A stable DOT id for a leaf or constant (numbered as met, so the text is reproducible)."""
        return self._ids.setdefault(key, f"leaf{len(self._ids)}")


def _walk(start):
    """Every node below ``start``, in creation order (inputs before the ops that use them)."""
    seen, stack = {}, list(start)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(n for n in node.next if type(n) is Node)
    return sorted(seen.values(), key=lambda n: n.seq)


def _saved_inputs(node):
    """Input index -> the input Tensor, for the inputs the node saved (how constants get names)."""
    spec = getattr(node.op, "save", ())
    raw = node.saved_raw or ()
    return {i: raw[k] for k, i in enumerate(spec)
            if i >= 0 and k < len(raw) and isinstance(raw[k], Tensor)}


def _named(names, parameters):
    pairs = []
    if parameters is not None:
        pairs += [(p, name) for name, p in parameters.named_parameters()]
    for key, value in (names or {}).items():
        tensor, name = (value, key) if isinstance(key, str) else (key, value)
        if not isinstance(tensor, Tensor):
            raise TypeError(f"names maps tensors to strings; got {type(tensor).__name__} for {name!r}")
        pairs.append((tensor, str(name)))
    return pairs


def saved_bytes(node):
    """Bytes of the distinct buffers ``node`` holds for its backward (0 once freed).

    A view counts as the array it views (``W.T`` keeps all of ``W``), each buffer once, as the
    memory tracker counts; values packed by saved_tensors_hooks are not counted.
    """
    owners = {}
    for value in node.saved_raw or ():
        array = value.data if isinstance(value, (Tensor, _Output, _Kept)) else value
        if not hasattr(array, "nbytes"):
            continue
        while getattr(array, "base", None) is not None and hasattr(array.base, "nbytes"):
            array = array.base
        owners[id(array)] = int(array.nbytes)
    return sum(owners.values())


def _gradients(graph, leaves):
    """Gradient arrays of the (scalar) root for every node output and leaf, without touching .grad."""
    from .autograd.engine import grad
    from .errors import GradflowError

    grads = {id(t): t.grad.data for t in leaves.values() if t.grad is not None}
    if len(graph.roots) != 1 or graph.roots[0].data.size != 1 or not graph.roots[0].requires_grad:
        return grads, "gradients shown only for a scalar result"
    targets = [Tensor(np.empty(0), True, node) for node in graph.nodes] + list(leaves.values())
    try:
        found = grad(graph.roots, targets, retain_graph=True, allow_unused=True)
    except GradflowError as exc:  # e.g. the graph was freed by an earlier backward
        return grads, f"gradients unavailable: {str(exc).split(':')[0]}"
    for target, g in zip(targets, found):
        if g is not None:
            grads[target.grad_fn if target.grad_fn is not None else id(target)] = g.data
    return grads, None


# ----- writing DOT ------------------------------------------------------------------------------
def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _describe(shape, dtype):
    return f"{tuple(shape)} {dtype}" if dtype is not None else f"{tuple(shape)}"


def _small(array, limit):
    if array is None or getattr(array, "size", limit + 1) > limit:
        return None
    host = np.asarray(array.get() if hasattr(array, "get") else array)
    return np.array2string(host, precision=3, suppress_small=True, separator=", ").replace("\n", "")


def _tensor_label(name, shape, dtype, value=None, gradient=None):
    lines = ([name] if name else []) + [_describe(shape, dtype)]
    if value is not None:
        lines.append(f"value {value}")
    if gradient is not None:
        lines.append(f"grad {gradient}")
    return "\n".join(lines)


def _human_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def to_dot(target, names=None, values=False, grads=False, compact=False, parameters=None, small=12,
           rankdir="BT", title=None):
    """The DOT text of the graph below ``target`` (a Tensor, Node, list of them, or a memory Tracker).

    ``names`` maps tensors to labels ({x: "x", W1: "W1"}); ``parameters`` (a Module) names its
    parameters by module path. ``values``/``grads`` annotate tensors of at most ``small``
    elements with their forward value and the gradient of the (scalar) result. ``compact`` keeps
    the named tensors only (see the module docstring).
    """
    roots, parameters = _roots_of(target, parameters)
    graph = _Graph(roots, names, parameters)
    leaves = graph.leaves()
    gradient_of, note = ({}, None)
    if grads:
        gradient_of, note = _gradients(graph, leaves)
    lines = ["digraph gradflow {", f"  rankdir={rankdir}; newrank=true; node [fontname=Helvetica, fontsize=10];"]
    caption = "\n".join(x for x in (title, note) if x)
    if caption:
        lines.append(f"  labelloc=t; label={_quote(caption)};")
    body = _compact_body(graph, leaves) if compact else _full_body(graph, leaves, values, grads, gradient_of, small)
    lines += ["  " + line for line in body]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _leaf_node(graph, key, tensor, values, grads, gradient_of, small):
    name = graph.leaf_names.get(key, "")
    label = _tensor_label(name, tensor.shape, tensor.dtype, _small(tensor.data, small) if values else None,
                          _small(gradient_of.get(key), small) if grads else None)
    return f"{graph.dot_id(key)} [shape=box, style=filled, fillcolor=lightblue, label={_quote(label)}];"


def _full_body(graph, leaves, values, grads, gradient_of, small):
    body, bottom, constant_ids = [], [], {}
    for key, tensor in leaves.items():
        body.append(_leaf_node(graph, key, tensor, values, grads, gradient_of, small))
        bottom.append(graph.dot_id(key))
    for node in graph.nodes:
        op_label = [node.op.name]
        if node.module:
            op_label.append(f"[{node.module}]")
        if node.saved_raw:
            op_label.append(f"saved {_human_bytes(saved_bytes(node))}")
        elif node.saved_raw is None:
            op_label.append("saved: freed")
        body.append(f"op{node.seq} [shape=ellipse, label={_quote(chr(10).join(op_label))}];")
        for kind, key, tensor, i in graph.inputs(node):
            if kind == "node":
                body.append(f"t{key.seq} -> op{node.seq};")
            elif kind == "leaf":
                body.append(f"{graph.dot_id(key)} -> op{node.seq};")
            else:
                # A constant saved by several ops (the batch x) is drawn once.
                cid = constant_ids.setdefault(id(tensor) if tensor is not None else (node.seq, i),
                                              f"c{node.seq}_{i}")
                if cid == f"c{node.seq}_{i}":
                    name = graph.leaf_names.get(id(tensor), "") if tensor is not None else ""
                    dtype = tensor.dtype if tensor is not None else None
                    shown = _small(tensor.data, small) if values and tensor is not None else None
                    label = _tensor_label(name, node.shapes[i], dtype, shown)
                    body.append(f"{cid} [shape=box, style=dashed, label={_quote(label)}];")
                    bottom.append(cid)
                body.append(f"{cid} -> op{node.seq};")
        name = graph.node_names.get(node, "")
        label = _tensor_label(name, node.out_shape, node.out_dtype,
                              _small(graph.values.get(node), small) if values else None,
                              _small(gradient_of.get(node), small) if grads else None)
        style = ", style=bold" if name else ""
        body.append(f"t{node.seq} [shape=box{style}, label={_quote(label)}];")
        body.append(f"op{node.seq} -> t{node.seq};")
    if bottom:
        body.append("{rank=min; " + "; ".join(bottom) + ";}")
    tops = [f"t{r.grad_fn.seq}" for r in graph.roots if r.grad_fn is not None]
    if tops:
        body.append("{rank=max; " + "; ".join(tops) + ";}")
    return body


def named_dependencies(target, names, parameters=None):
    """{name: set of names it is computed from directly}, looking through unnamed intermediates.

    The structure the textbook figure shows; leaves and constants without a name are left out.
    """
    roots, parameters = _roots_of(target, parameters)
    graph = _Graph(roots, names, parameters)
    return {graph.node_names[node]: {name for name, _ in _named_sources(graph, node)}
            for node in graph.nodes if node in graph.node_names}


def _named_sources(graph, node):
    """The named tensors (name, dot id) feeding ``node`` through unnamed ops, and those ops."""
    found, stack, seen = [], [node], set()
    while stack:
        current = stack.pop()
        for kind, key, tensor, _ in graph.inputs(current):
            if kind == "node":
                if key in graph.node_names:
                    found.append((graph.node_names[key], f"t{key.seq}"))
                elif id(key) not in seen:
                    seen.add(id(key))
                    stack.append(key)
            else:
                leaf_key = key if kind == "leaf" else (id(tensor) if tensor is not None else None)
                if leaf_key in graph.leaf_names:
                    found.append((graph.leaf_names[leaf_key], graph.dot_id(leaf_key)))
    return found


def _merged_ops(graph, node):
    """Names of the unnamed ops merged into ``node``'s op in the compact drawing, in order."""
    ops, stack, seen = [node], [node], {id(node)}
    while stack:
        for source in stack.pop().next:
            if type(source) is Node and source not in graph.node_names and id(source) not in seen:
                seen.add(id(source))
                ops.append(source)
                stack.append(source)
    return [n.op.name for n in sorted(ops, key=lambda n: n.seq)]


def _compact_body(graph, leaves):
    body, bottom, drawn = [], [], set()
    for node in graph.nodes:
        if node not in graph.node_names:
            continue
        sources = sorted(set(_named_sources(graph, node)))
        for name, dot_id in sources:
            if dot_id.startswith("leaf") and dot_id not in drawn:
                drawn.add(dot_id)
                bottom.append(dot_id)
                body.append(f"{dot_id} [shape=box, label={_quote(name)}];")
            body.append(f"{dot_id} -> op{node.seq};")
        ops = _merged_ops(graph, node)
        body.append(f"op{node.seq} [shape=circle, label={_quote(chr(10).join(ops))}];")
        body.append(f"t{node.seq} [shape=box, label={_quote(graph.node_names[node])}];")
        body.append(f"op{node.seq} -> t{node.seq};")
    if bottom:
        body.append("{rank=min; " + "; ".join(bottom) + ";}")
    return body


def _roots_of(target, parameters):
    """Roots to walk from, for a Tensor, a Node, a sequence of them, or a memory Tracker."""
    if isinstance(target, (Tensor, Node)):
        return [target], parameters
    if isinstance(target, (list, tuple)):
        return list(target), parameters
    # A gradflow.memory.Tracker, recognized by its method: viz sits below memory and cannot import it.
    live_nodes = getattr(target, "live_nodes", None)
    if callable(live_nodes):
        nodes = live_nodes()
        if not nodes:
            raise ValueError("the tracker holds no live graph nodes (was backward already run?)")
        if parameters is None and hasattr(getattr(target, "model", None), "named_parameters"):
            parameters = target.model
        return nodes, parameters
    raise TypeError(f"draw()/to_dot() take a Tensor, a graph Node, a list of them or a memory Tracker, "
                    f"got {type(target).__name__}")


# ----- files --------------------------------------------------------------------------------------
def draw(target, path, **options):
    """Write the graph below ``target`` to ``path`` and return the paths written.

    ``path`` ending in .dot writes DOT only; .svg, .png or .pdf writes ``<stem>.dot`` and, when
    Graphviz's ``dot`` program is installed, renders the picture (a warning says so when it is not).
    Options are those of ``to_dot``.
    """
    stem, ext = os.path.splitext(os.fspath(path))
    fmt = ext.lstrip(".").lower()
    if fmt not in ("dot", "gv", "svg", "png", "pdf"):
        raise ValueError(f"draw(): cannot write {path!r}; use a .dot, .svg, .png or .pdf path")
    dot_path = os.fspath(path) if fmt in ("dot", "gv") else stem + ".dot"
    with open(dot_path, "w") as f:
        f.write(to_dot(target, **options))
    written = [dot_path]
    if fmt in ("dot", "gv"):
        return written
    dot = shutil.which("dot")
    if dot is None:
        warnings.warn(f"Graphviz's `dot` was not found: wrote {dot_path} only. Install Graphviz "
                      f"(apt-get install graphviz) to render {fmt.upper()}.", RuntimeWarning, stacklevel=2)
        return written
    result = subprocess.run([dot, f"-T{fmt}", dot_path, "-o", os.fspath(path)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dot failed to render {path}: {result.stderr.strip()}")
    written.append(os.fspath(path))
    return written
