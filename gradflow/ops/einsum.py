"""einsum: one primitive on fully explicit subscripts, differentiated by einsum itself.

Two primitives (one and two operands); more operands are contracted pairwise. The wrapper turns "...", implicit outputs and broadcast size-1 axes into explicit letters and
operands of one size per letter (through ``broadcast_to``, whose VJP sums), so the primitive's
rule only meets the plain case. The VJP for operand k is the einsum of the upstream gradient
with the other operands onto k's letters; letters only k has (summed away alone) come back by
broadcasting, and a letter k repeats (a diagonal, as in "ii->") by multiplying with identities.
"""
from __future__ import annotations

import string

import numpy as np

from ..backends import of_array
from ..errors import ShapeError
from ..tensor import Tensor
from .registry import constant, data_of, primitive
from .shape import broadcast_to, jvp_total, reshape

_LETTERS = string.ascii_letters


@primitive("einsum_unary")
def _einsum1(backend, x, inputs, output):
    return backend.xp.einsum(inputs[0] + "->" + output, x)


@primitive("einsum_binary", save=("x", "y"))
def _einsum2(backend, x, y, inputs, output):
    a, b = inputs
    if len(set(a)) < len(a) or len(set(b)) < len(b):  # a diagonal: leave it to einsum
        return backend.xp.einsum(",".join(inputs) + "->" + output, x, y)
    return _as_matmul(backend.xp, x, y, a, b, output)


def _as_matmul(xp, x, y, a, b, output):
    """The contraction as one batched matmul (BLAS), which einsum itself does not use for batches:
    letters only one operand has and the output lacks are summed first; then x becomes
    (batch, kept-from-x, contracted) and y (batch, contracted, kept-from-y)."""
    lonely_a = tuple(i for i, c in enumerate(a) if c not in b and c not in output)
    lonely_b = tuple(i for i, c in enumerate(b) if c not in a and c not in output)
    if lonely_a:
        x, a = x.sum(axis=lonely_a), "".join(c for i, c in enumerate(a) if i not in lonely_a)
    if lonely_b:
        y, b = y.sum(axis=lonely_b), "".join(c for i, c in enumerate(b) if i not in lonely_b)
    batch = [c for c in a if c in b and c in output]
    summed = [c for c in a if c in b and c not in output]
    left = [c for c in a if c not in b]
    right = [c for c in b if c not in a]
    size = {c: n for c, n in zip(a + b, x.shape + y.shape)}

    def count(letters):
        return int(np.prod([size[c] for c in letters], dtype=np.int64))

    x3 = x.transpose([a.index(c) for c in batch + left + summed]).reshape(count(batch), count(left), count(summed))
    y3 = y.transpose([b.index(c) for c in batch + summed + right]).reshape(count(batch), count(summed), count(right))
    out = xp.matmul(x3, y3).reshape([size[c] for c in batch + left + right])
    order = batch + left + right
    return xp.ascontiguousarray(out.transpose([order.index(c) for c in output]))


def _einsum(*operands, inputs, output):
    """Contract ``operands`` pairwise, left to right, keeping at each step only the letters the output
    or a later operand needs; a last unary step puts the letters in the output's order."""
    current, letters = operands[0], inputs[0]
    for k in range(1, len(operands)):
        needed = set(output).union(*map(set, inputs[k + 1:]))
        keep = "".join(c for c in _unique(letters + inputs[k]) if c in needed)
        current = _einsum2(current, operands[k], inputs=(letters, inputs[k]), output=keep)
        letters = keep
    if letters != output:
        current = _einsum1(current, inputs=(letters,), output=output)
    return current


def _unique(letters):
    return "".join(dict.fromkeys(letters))


def _grad_for(k, g, operands, inputs, output, sizes, dtype):
    mine = inputs[k]
    elsewhere = set(output).union(*(set(s) for i, s in enumerate(inputs) if i != k))
    reached = "".join(c for c in _unique(mine) if c in elsewhere)
    others = [op for i, op in enumerate(operands) if i != k]
    grad = _einsum(g, *others, inputs=(output,) + tuple(s for i, s in enumerate(inputs) if i != k),
                   output=reached)
    unique = _unique(mine)
    if reached != unique:  # letters only this operand has: d/dx of a sum over them is 1 everywhere
        grad = reshape(grad, tuple(sizes[c] if c in reached else 1 for c in unique))
        grad = broadcast_to(grad, tuple(sizes[c] for c in unique))
    if unique != mine:  # a repeated letter: the gradient lives on that diagonal only
        xp = of_array(data_of(g)).xp
        spare = iter(c for c in _LETTERS if c not in set(output).union(*map(set, inputs)))
        seen, full, eyes, eye_subs = set(), "", [], []
        for c in mine:
            if c in seen:
                fresh = next(spare)
                full += fresh
                eyes.append(constant(xp.eye(sizes[c], dtype=dtype)))
                eye_subs.append(c + fresh)
            else:
                full += c
                seen.add(c)
        grad = _einsum(grad, *eyes, inputs=(unique, *eye_subs), output=full)
    return grad


def _einsum_vjp(ctx, g):
    inputs, output = ctx.params["inputs"], ctx.params["output"]
    operands = ctx.saved if len(inputs) == 2 else (None,)
    sizes = {c: shape[i] for s, shape in zip(inputs, ctx.shapes) for i, c in enumerate(s)}
    grads = tuple(_grad_for(k, g, operands, inputs, output, sizes, g.dtype) if needed else None
                  for k, needed in enumerate(ctx.needs_input_grad))
    return grads if len(grads) > 1 else grads[0]


def _einsum_jvp(ctx, *tangents):
    operands = ctx.inputs
    terms = [None if t is None else
             _einsum(*(t if i == k else op for i, op in enumerate(operands)), **ctx.params)
             for k, t in enumerate(tangents)]
    return jvp_total(ctx.out.shape, *terms)


for _op in (_einsum1, _einsum2):
    _op.vjp(_einsum_vjp)
    _op.jvp(_einsum_jvp)


def _parse(subscripts, shapes):
    """Explicit per-operand letters and output letters for ``subscripts`` over operands of ``shapes``."""
    text = subscripts.replace(" ", "")
    left, arrow, right = text.partition("->")
    parts = left.split(",")
    if len(parts) != len(shapes):
        raise ShapeError(f"einsum: subscripts {subscripts!r} name {len(parts)} operands, got {len(shapes)}")
    used = set(c for c in text if c.isalpha())
    for c in text:
        if not (c.isalpha() or c in ",.->"):
            raise ValueError(f"einsum: invalid character {c!r} in subscripts {subscripts!r}")
    ellipsis_dims = 0
    for part, shape in zip(parts, shapes):
        letters = part.replace("...", "")
        if "..." in part:
            ellipsis_dims = max(ellipsis_dims, len(shape) - len(letters))
        elif len(letters) != len(shape):
            raise ShapeError(f"einsum: operand {part!r} has {len(letters)} subscripts but shape {shape}")
    spare = [c for c in _LETTERS if c not in used][:ellipsis_dims]
    if len(spare) < ellipsis_dims:
        raise ShapeError(f"einsum: too many axes for subscripts {subscripts!r}")
    inputs = []
    for part, shape in zip(parts, shapes):
        letters = part.replace("...", "")
        count = len(shape) - len(letters)
        if count < 0:
            raise ShapeError(f"einsum: operand {part!r} has more subscripts than axes (shape {shape})")
        inputs.append(part.replace("...", "".join(spare[ellipsis_dims - count:])))
    if arrow:
        output = right.replace("...", "".join(spare))
    else:
        counts = {}
        for s in inputs:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        output = "".join(spare) + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in spare))
    for c in output:
        if not any(c in s for s in inputs):
            raise ShapeError(f"einsum: output subscript {c!r} appears in no operand ({subscripts!r})")
    if len(set(output)) != len(output):
        raise ShapeError(f"einsum: output subscripts {output!r} repeat a letter")
    return tuple(inputs), output


def einsum(subscripts, *operands):
    """Einstein summation, as NumPy's and PyTorch's einsum (``...``, implicit output, repeated letters for
    diagonals, size-1 axes broadcasting); operands may also come as one list.

    >>> gradflow.einsum("ij,j->i", gradflow.tensor([[1., 2.], [3., 4.]]), gradflow.tensor([1., 1.])).tolist()
    [3.0, 7.0]
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    operands = tuple(op if isinstance(op, Tensor) else Tensor(of_array(operands[0].data).asarray(op))
                     for op in operands)
    inputs, output = _parse(subscripts, [op.shape for op in operands])
    sizes = {}
    for s, op in zip(inputs, operands):
        for c, n in zip(s, op.shape):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise ShapeError(f"einsum: subscript {c!r} has sizes {sizes[c]} and {n} in {subscripts!r} "
                                 f"(shapes {[op.shape for op in operands]})")
            sizes[c] = max(sizes.get(c, 1), n)
    for s, op in zip(inputs, operands):
        seen = {}
        for c, n in zip(s, op.shape):
            if c in seen and seen[c] != n:
                raise ShapeError(f"einsum: subscript {c!r} repeats in operand {s!r} with sizes {seen[c]} and {n}")
            seen[c] = n
    operands = tuple(broadcast_to(op, tuple(sizes[c] for c in s)) for s, op in zip(inputs, operands))
    return _einsum(*operands, inputs=inputs, output=output)
