"""Convolution as three bilinear primitives, each the others' VJPs (so every order is covered).

For ``y = conv2d(x, w)`` (PyTorch's cross-correlation, weight (O, C/groups, kh, kw)):
  ``gx = conv2d_input(g, w)``   col2im of ``Wᵀ g``: the transposed convolution
  ``gw = conv2d_weight(x, g)``  ``g · im2col(x)ᵀ``
and the VJPs of those two are again conv2d / conv2d_input / conv2d_weight with the roles of
their arguments swapped. Each is one batched GEMM over the groups plus copies on the array module,
never a loop over pixels or the batch.

The GEMMs work in a batch-last layout, (C, H, W, N) — see the note [batch last] below. conv2d
keeps x only if w needs a gradient and w only if x does, like matmul: average pooling (a conv with
a constant kernel) therefore keeps nothing. Neither keeps the im2col columns: at LeNet's conv2
they are 13x the bytes of x, and rebuilding them costs one copy.

``conv_transpose2d`` is ``conv2d_input`` with the output size PyTorch's formula gives; conv1d is
conv2d on a height-1 image.
"""
from __future__ import annotations

from ..errors import ShapeError
from .autocast import half_under_autocast
from .registry import primitive
from .shape import jvp_total, reshape
from .windows import output_shape, pair

# Note [batch last]
# im2col, the GEMMs and col2im run on (C, H, W, N) arrays, x with its batch axis moved last.
# In that layout a window row (OW outputs of one image row) for all N images is one contiguous
# run of OW·N floats (N at a stride > 1), where in (N, C, H, W) it is OW floats: im2col is one
# copy in runs of OW·N instead of OW, and col2im's adds move runs just as long. The GEMM's long
# axis is then (OH, OW, N) and its output (O, OH, OW, N); moving x's batch axis last and the
# output's first are two small copies (the size of x and of y, not of the columns). At LeNet's
# conv2 (batch 64) the whole forward + backward went from 2.8 to 2.0 ms on one core.


def _batch_axis_last(backend, a):
    """A contiguous copy of ``a`` (N, ...) with its first axis moved last, (..., N).

    A 2-D transpose (N, M) → (M, N): NumPy copies it in the destination's order, reading the N
    rows at a stride of M floats. When M·itemsize is a multiple of 1 KiB (a batch of 16×8×8
    feature maps: 4 KiB) those N reads fall in the same few L1 cache sets and, once N exceeds
    the cache's 8 ways, evict each other before the next column reuses their lines — 2.9 ns a
    float at (64, 16·8·8). Copying the rows first onto a pitch 16 floats longer breaks the
    aliasing: 0.19 → 0.03 ms there (break-even at N ≈ 10; at N = 4 it costs 30%)."""
    n = a.shape[0]
    m = a.size // n if n else 0
    if backend.device_type == "cpu" and n > 8 and m and (m * a.itemsize) % 1024 == 0:
        pitched = backend.xp.empty((n, m + 16), dtype=a.dtype)
        pitched[:, :m] = a.reshape(n, m)
        return backend.xp.ascontiguousarray(pitched[:, :m].T).reshape(a.shape[1:] + (n,))
    return backend.xp.ascontiguousarray(a.transpose(tuple(range(1, a.ndim)) + (0,)))


def _batch_last(backend, x, padding):
    """(C, Hp, Wp, N): ``x`` (N, C, H, W) with its batch axis last and ``padding`` zeros around
    its spatial axes."""
    n, c, h, w = x.shape
    ph, pw = padding
    moved = _batch_axis_last(backend, x)
    if not ph and not pw:
        return moved
    out = backend.xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
    out[:, ph:ph + h, pw:pw + w] = moved                                          # runs of W·N floats
    return out


def _im2col(backend, x, kernel, stride, padding, dilation, groups, out_hw):
    """(groups, C/groups·kh·kw, OH·OW·N): the one copy of x's windows each GEMM reads, rows in
    the weight's (C, kh, kw) order, columns batch-last (the note [batch last])."""
    padded = _batch_last(backend, x, padding)                                      # (C, Hp, Wp, N)
    c, _, _, n = padded.shape
    (kh, kw), (oh, ow) = kernel, out_hw
    sc, sh, sw, sn = padded.strides
    view = backend.xp.lib.stride_tricks.as_strided(
        padded, shape=(c, kh, kw, oh, ow, n),
        strides=(sc, sh * dilation[0], sw * dilation[1], sh * stride[0], sw * stride[1], sn))
    return view.reshape(groups, -1, oh * ow * n)


def _rows(backend, g, groups):
    """(groups, O/groups, OH·OW·N): an (N, O, OH, OW) array as the GEMM's batch-last operand,
    always a copy: reshape would keep a broadcast gradient (``y.sum()``'s) a zero-stride view,
    which BLAS cannot take (NumPy's fallback loop is ~10x slower)."""
    return _batch_axis_last(backend, g).reshape(groups, g.shape[1] // groups, -1)


def _batch_first(backend, out):
    """A batch-last (C, H, W, N) result as a contiguous (N, C, H, W) array.

    The (C·H·W, N) → (N, C·H·W) transpose reads a source row (N floats) per destination element;
    NumPy's copy walks whole destination rows, so a row of C·H·W = 1600 floats touches 1600
    source lines (100 KB, past L1) and each line comes back from L2 once per N it holds. Blocks
    of 32 KB of source rows stay in L1 across the N destination rows: 0.062 → 0.046 ms for
    LeNet's conv2 output, 0.23 → 0.13 ms for conv1's."""
    c, h, w, n = out.shape
    block = 32768 // max(1, n * out.itemsize)                                       # rows in 32 KB
    if (backend.device_type != "cpu" or not out.flags.c_contiguous or n * out.itemsize < 64
            or not 16 <= block < c * h * w):
        return backend.xp.ascontiguousarray(out.transpose(3, 0, 1, 2))
    rows = out.reshape(-1, n)
    result = backend.xp.empty((n, rows.shape[0]), dtype=out.dtype)
    for start in range(0, rows.shape[0], block):
        result[:, start:start + block] = rows[start:start + block].T
    return result.reshape(n, c, h, w)


def _col2im(backend, cols, padded_hw, stride, dilation):
    """The adjoint of im2col: ``cols`` (C, kh, kw, OH, OW, N) added onto a zero (C, Hp, Wp, N)
    grid, each entry where its window cell sits. The kh kernel rows first, into (C, kw, Hp, OW, N),
    whose adds at stride 1 move runs of OH·OW·N floats; then the kw kernel columns, in runs of
    OW·N: kh + kw vectorized adds, not kh·kw (0.36 → 0.21 ms at LeNet's conv2)."""
    rows = _overlap_add(backend, cols, padded_hw[0], stride[0], dilation[0])
    return _overlap_add(backend, rows, padded_hw[1], stride[1], dilation[1])


def _overlap_add(backend, parts, length, stride, dilation):
    """One kernel axis of col2im: the sum over k of ``parts[:, k]``, whose axis 2 (``count``
    window positions) is placed every ``stride``-th cell from ``k·dilation`` of an axis of
    ``length`` zeros. (C, K, A, count, ...) → (C, A, length, ...)."""
    c, k, outer, count, *inner = parts.shape
    out = backend.xp.empty((c, outer, length, *inner), dtype=parts.dtype)
    span = stride * (count - 1) + 1
    # The first part is written, not added onto zeros: one pass less over most of the grid.
    if stride == 1:
        out[:, :, :count] = parts[:, 0]
        out[:, :, count:] = 0
    else:
        out[...] = 0
        out[:, :, :span:stride] = parts[:, 0]
    for i in range(1, k):
        out[:, :, i * dilation:i * dilation + span:stride] += parts[:, i]
    return out


def _conv_flops(arrays, out):
    x, w = arrays
    return 2 * out.size * (w.size // w.shape[0])


@primitive("conv2d", save=("x", "weight"), save_when=("weight", "x"), same_dtype=True, flops=_conv_flops)
def _conv2d(backend, x, weight, stride, padding, dilation, groups):
    n = x.shape[0]
    o, kernel = weight.shape[0], weight.shape[2:]
    out_hw = output_shape("conv2d", x.shape[2:], kernel, stride, padding, dilation)
    if _row_shifts_pay(backend, x, kernel, stride, groups, out_hw):
        out = _by_row_shifts(backend, x, weight, stride, padding, dilation, groups, out_hw)
    else:
        cols = _im2col(backend, x, kernel, stride, padding, dilation, groups, out_hw)
        out = weight.reshape(groups, o // groups, -1) @ cols                         # (G, O/G, OH·OW·N)
    return _batch_first(backend, out.reshape((o,) + out_hw + (n,)))


# Note [row shifts]
# The forward's columns at LeNet's conv2 are 3.8 MB (C·kh·kw rows of OH·OW·N), past the 1 MB L2:
# the copy writes them to L3 and the GEMM reads them back. With a row stride of 1 the kh kernel
# rows need no copy of their own: copying only the kw column shifts of each padded row,
# (C, kw, Hp, OW, N), makes the operand of kernel row i the rows i … i+OH-1 of every (c, j)
# plane, a strided view BLAS takes as it is (K = C·kw at a stride of one plane). kh GEMMs on those
# views, summed, give the output: the same products as the one GEMM on the columns, a copy kh
# times smaller (0.27 of 0.96 M floats at conv2). At two threads the forward at conv2 drops by
# 0.07 ms (4% of the step); at one thread it is even. It does not pay when K = C·kw is a few
# floats (LeNet's conv1, C = 1: kh GEMMs with K = 5) or the columns fit in L2 anyway (the digits
# CNN's 3x3 convolutions, 3–4% slower), hence the gate.


def _row_shifts_pay(backend, x, kernel, stride, groups, out_hw):
    cols_bytes = x.shape[1] * kernel[0] * kernel[1] * out_hw[0] * out_hw[1] * x.shape[0] * x.itemsize
    return (backend.device_type == "cpu" and stride[0] == 1 and kernel[0] > 1
            and x.shape[1] // groups * kernel[1] >= 16 and cols_bytes > 1 << 21)


def _by_row_shifts(backend, x, weight, stride, padding, dilation, groups, out_hw):
    """(G, O/G, OH·OW·N): conv2d's GEMM output from the kw column shifts of the padded rows
    (the note [row shifts]); needs a row stride of 1."""
    as_strided = backend.xp.lib.stride_tricks.as_strided
    padded = _batch_last(backend, x, padding)                                       # (C, Hp, Wp, N)
    c, hp, _, n = padded.shape
    (kh, kw), (oh, ow) = weight.shape[2:], out_hw
    sc, sh, sw, sn = padded.strides
    shifts = backend.xp.ascontiguousarray(as_strided(                                 # (C, kw, Hp, OW, N)
        padded, shape=(c, kw, hp, ow, n), strides=(sc, sw * dilation[1], sh, sw * stride[1], sn)))
    cg, og = c // groups, weight.shape[0] // groups
    s = shifts.strides
    rows = as_strided(shifts, shape=(groups, kh, cg * kw, oh * ow * n),              # kernel row i: rows i·dh …
                      strides=(cg * s[0], dilation[0] * s[2], s[1], s[4]))
    w = weight.reshape(groups, og, cg, kh, kw).transpose(0, 3, 1, 2, 4).reshape(groups, kh, og, cg * kw)
    parts = w @ rows                                                                  # (G, kh, O/G, OH·OW·N)
    out = parts[:, 0]
    for i in range(1, kh):
        out += parts[:, i]
    return out


@_conv2d.vjp
def _conv2d_vjp(ctx, g):
    x, weight = ctx.saved
    p = ctx.params
    gx = None if weight is None else _conv2d_input(g, weight, size=ctx.shapes[0][2:], **p)
    gw = None if x is None else _conv2d_weight(x, g, kernel=ctx.shapes[1][2:], **p)
    return gx, gw


def _bilinear_jvp(op):
    """The forward-mode rule of a bilinear op ``op(a, b)``: ``op(ta, b) + op(a, tb)``."""
    def jvp(ctx, ta, tb):
        a, b = ctx.inputs
        return jvp_total(ctx.out.shape, None if ta is None else op(ta, b, **ctx.params),
                         None if tb is None else op(a, tb, **ctx.params))
    return jvp


_conv2d.jvp(_bilinear_jvp(_conv2d))


@primitive("conv2d_input", save=("g", "weight"), save_when=("weight", "g"), same_dtype=True)
def _conv2d_input(backend, g, weight, size, stride, padding, dilation, groups):
    """The transposed convolution: col2im of ``Wᵀ g`` onto an image of spatial ``size``."""
    n, (oh, ow) = g.shape[0], g.shape[2:]
    cg, kernel = weight.shape[1], weight.shape[2:]
    w_t = weight.reshape(groups, weight.shape[0] // groups, -1).transpose(0, 2, 1)
    cols = w_t @ _rows(backend, g, groups)                                                    # (G, Cg·kh·kw, OH·OW·N)
    # Every product w·g of the sum is formed and nothing else, so a non-finite weight spreads
    # NaN/inf exactly where PyTorch's gradient has them.
    cols = cols.reshape((groups * cg,) + tuple(kernel) + (oh, ow, n))
    (ph, pw) = padding
    out = _col2im(backend, cols, (size[0] + 2 * ph, size[1] + 2 * pw), stride, dilation)
    return _batch_first(backend, out[:, ph:ph + size[0], pw:pw + size[1]])


@_conv2d_input.vjp
def _conv2d_input_vjp(ctx, gy):
    g, weight = ctx.saved
    p = dict(ctx.params)
    del p["size"]
    gg = None if weight is None else _conv2d(gy, weight, **p)
    gw = None if g is None else _conv2d_weight(gy, g, kernel=ctx.shapes[1][2:], **p)
    return gg, gw


_conv2d_input.jvp(_bilinear_jvp(_conv2d_input))


@primitive("conv2d_weight", save=("x", "g"), save_when=("g", "x"), same_dtype=True)
def _conv2d_weight(backend, x, g, kernel, stride, padding, dilation, groups):
    """``g · im2col(x)ᵀ``: the weight gradient of conv2d, shaped (O, C/groups, kh, kw)."""
    cols = _im2col(backend, x, kernel, stride, padding, dilation, groups, g.shape[2:])
    # cols · gᵀ with the long OH·OW·N axis contiguous in both operands is ~1.7x faster in BLAS
    # than g · colsᵀ (measured at LeNet's conv2); the small (Cg·kh·kw, O/G) result is transposed after.
    gw = (cols @ _rows(backend, g, groups).transpose(0, 2, 1)).transpose(0, 2, 1)             # (G, O/G, Cg·kh·kw)
    return backend.xp.ascontiguousarray(gw).reshape((g.shape[1], x.shape[1] // groups) + tuple(kernel))


@_conv2d_weight.vjp
def _conv2d_weight_vjp(ctx, gw):
    x, g = ctx.saved
    p = dict(ctx.params)
    del p["kernel"]
    gx = None if g is None else _conv2d_input(g, gw, size=ctx.shapes[0][2:], **p)
    gg = None if x is None else _conv2d(x, gw, **p)
    return gx, gg


_conv2d_weight.jvp(_bilinear_jvp(_conv2d_weight))


# ----- the public functions ---------------------------------------------------------------------
def _spatial(stride, padding, dilation, kernel=None):
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    if isinstance(padding, str):
        padding = _named_padding(padding, stride, dilation, kernel)
    return dict(stride=stride, padding=pair(padding, "padding"), dilation=dilation)


def _named_padding(name, stride, dilation, kernel):
    """PyTorch's padding="valid" (none) and "same" (output size = input size, stride 1)."""
    if name == "valid":
        return (0, 0)
    if name != "same":
        raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {name!r}")
    if stride != (1, 1):
        raise ValueError(f"padding='same' needs stride 1, got stride {stride}")
    totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
    if any(t % 2 for t in totals):
        raise ValueError(f"padding='same' with kernel {tuple(kernel)} and dilation {dilation} needs uneven padding, "
                         "which gradflow does not support; pad explicitly")
    return tuple(t // 2 for t in totals)


def _check(name, x, weight, bias, groups, in_axis, out_channels, ndim):
    if x.ndim != ndim or weight.ndim != ndim:
        raise ShapeError(f"{name} expects input and weight with {ndim} dimensions, got input {x.shape} "
                         f"and weight {weight.shape}")
    if groups < 1 or x.shape[1] % groups or out_channels % groups:
        raise ShapeError(f"{name}: groups={groups} must divide the input channels {x.shape[1]} and the "
                         f"output channels {out_channels}")
    if x.shape[1] != in_axis:
        raise ShapeError(f"{name}: input {x.shape} has {x.shape[1]} channels but weight {weight.shape} "
                         f"expects {in_axis} (groups={groups})")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ShapeError(f"{name}: bias of shape {bias.shape} does not match {out_channels} output channels")


def _add_bias(out, bias):
    return out if bias is None else out + reshape(bias, (1, -1) + (1,) * (out.ndim - 2))


@half_under_autocast
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation of (N, C, H, W) ``x`` with (O, C/groups, kh, kw) ``weight``
    (PyTorch's layout); ``stride``, ``padding`` and ``dilation`` are ints or pairs.

    >>> import gradflow as gf
    >>> gf.nn.functional.conv2d(gf.ones(2, 3, 8, 8), gf.ones(4, 3, 3, 3), padding=1).shape
    (2, 4, 8, 8)
    """
    _check("conv2d", x, weight, bias, groups, weight.shape[1] * groups, weight.shape[0], 4)
    spatial = _spatial(stride, padding, dilation, weight.shape[2:])
    return _add_bias(_conv2d(x, weight, groups=int(groups), **spatial), bias)


@half_under_autocast
def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation of (N, C, L) ``x`` with (O, C/groups, k) ``weight``: conv2d on a
    height-1 image, so it shares conv2d's primitives and gradients."""
    _check("conv1d", x, weight, bias, groups, weight.shape[1] * groups, weight.shape[0], 3)
    spatial = _spatial(_along_row(stride, 1), padding if isinstance(padding, str) else _along_row(padding, 0),
                       _along_row(dilation, 1), (1, weight.shape[2]))
    out = _conv2d(reshape(x, (x.shape[0], x.shape[1], 1, x.shape[2])),
                  reshape(weight, (weight.shape[0], weight.shape[1], 1, weight.shape[2])), groups=int(groups),
                  **spatial)
    return _add_bias(reshape(out, (out.shape[0], out.shape[1], out.shape[3])), bias)


def _along_row(value, height_value):
    """A conv1d argument (an int or a 1-tuple) as the pair conv2d takes for a height-1 image."""
    return (height_value, int(value) if isinstance(value, int) else int(tuple(value)[0]))


@half_under_autocast
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The transposed convolution (the gradient of conv2d with respect to its input) of (N, C_in, H, W)
    ``x`` with (C_in, C_out/groups, kh, kw) ``weight``; output size per axis
    ``(H - 1)·stride - 2·padding + dilation·(k - 1) + output_padding + 1``.

    >>> import gradflow as gf
    >>> gf.nn.functional.conv_transpose2d(gf.ones(1, 4, 5, 5), gf.ones(4, 2, 3, 3), stride=2).shape
    (1, 2, 11, 11)
    """
    _check("conv_transpose2d", x, weight, bias, groups, weight.shape[0], weight.shape[1] * groups, 4)
    spatial = _spatial(stride, padding, dilation)
    extra = pair(output_padding, "output_padding")
    for e, s, d in zip(extra, spatial["stride"], spatial["dilation"]):
        if e >= s and e >= d:
            raise ValueError(f"conv_transpose2d: output_padding {extra} must be smaller than the stride "
                             f"{spatial['stride']} or the dilation {spatial['dilation']}")
    size = tuple((h - 1) * s - 2 * p + d * (k - 1) + e + 1 for h, s, p, d, k, e in zip(
        x.shape[2:], spatial["stride"], spatial["padding"], spatial["dilation"], weight.shape[2:], extra))
    if min(size) < 1:
        raise ShapeError(f"conv_transpose2d: input {x.shape} with weight {weight.shape} and {spatial} gives "
                         f"the empty output size {size}")
    return _add_bias(_conv2d_input(x, weight, size=size, groups=int(groups), **spatial), bias)
