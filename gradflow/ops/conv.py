"""Convolution as three bilinear primitives, each the others' VJPs (so every order is covered).

For ``y = conv2d(x, w)`` (PyTorch's cross-correlation, weight (O, C/groups, kh, kw)):
  ``gx = conv2d_input(g, w)``   col2im of ``g W``: the transposed convolution
  ``gw = conv2d_weight(x, g)``  ``gᵀ · im2col(x)``
and the VJPs of those two are again conv2d / conv2d_input / conv2d_weight with the roles of
their arguments swapped. Each is one im2col (strided views of the padded input, copied in two
passes so the long one moves contiguous runs) and one batched GEMM over the groups; col2im adds back with one strided slice
per kernel offset (``windows.py``; at stride 1 one shift of the flattened rows, ``rows_add``). conv2d keeps x only if w needs a gradient and w only if x
does, like matmul: average pooling (a conv with a constant kernel) therefore keeps nothing.

``conv_transpose2d`` is ``conv2d_input`` with the output size PyTorch's formula gives; conv1d is
conv2d on a height-1 image.
"""
from __future__ import annotations

from ..errors import ShapeError
from .autocast import half_under_autocast
from .registry import primitive
from .shape import jvp_total, reshape
from .windows import output_shape, pad, pair, rows_add, windows, windows_add


def _im2col(backend, x, kernel, stride, padding, dilation, groups, out_hw):
    """(groups, C/groups·kh·kw, N·OH·OW): the one copy of x's windows each GEMM reads. Channels
    lead and (N, OH, OW) trail. Built in two copies: first the kw column shifts of every padded
    row, (C, kw, N, Hp, OW), read in runs of OW; then the kh row shifts of that, which at stride 1
    are runs of OH·OW contiguous floats. Together they are ~1.8x faster than one copy of the 7-d
    window view, whose every run is OW long (0.50 → 0.28 ms at LeNet's conv2)."""
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = kernel, out_hw
    padded = pad(backend, x.transpose(1, 0, 2, 3), padding)                          # (C, N, Hp, Wp)
    shifts = windows(backend, padded, (1, kw), (1, stride[1]), (1, dilation[1]), (padded.shape[2], ow))
    shifts = backend.xp.ascontiguousarray(shifts[..., 0, :].transpose(0, 4, 1, 2, 3))  # (C, kw, N, Hp, OW)
    view = windows(backend, shifts, (kh, 1), (stride[0], 1), (dilation[0], 1), (oh, ow))  # (C, kw, N, OH, OW, kh, 1)
    return view[..., 0].transpose(0, 5, 1, 2, 3, 4).reshape(groups, -1, n * oh * ow)


def _rows(g, groups):
    """(groups, O/groups, N·OH·OW): an (N, O, OH, OW) array as the GEMM's channel-major operand."""
    n, o, oh, ow = g.shape
    return g.transpose(1, 0, 2, 3).reshape(groups, o // groups, n * oh * ow)


def _batch_major(backend, out):
    """A (C, N, H, W) result as a contiguous (N, C, H, W) array."""
    return backend.xp.ascontiguousarray(out.transpose(1, 0, 2, 3))


def _conv_flops(arrays, out):
    x, w = arrays
    return 2 * out.size * (w.size // w.shape[0])


@primitive("conv2d", save=("x", "weight"), save_when=("weight", "x"), same_dtype=True, flops=_conv_flops)
def _conv2d(backend, x, weight, stride, padding, dilation, groups):
    n = x.shape[0]
    o, kernel = weight.shape[0], weight.shape[2:]
    out_hw = output_shape("conv2d", x.shape[2:], kernel, stride, padding, dilation)
    cols = _im2col(backend, x, kernel, stride, padding, dilation, groups, out_hw)
    out = weight.reshape(groups, o // groups, -1) @ cols                             # (G, O/G, N·OH·OW)
    return _batch_major(backend, out.reshape((o, n) + out_hw))


@_conv2d.vjp
def _conv2d_vjp(ctx, g):
    x, weight = ctx.saved
    p = ctx.params
    gx = None if weight is None else _conv2d_input(g, weight, size=ctx.shapes[0][2:], **p)
    gw = None if x is None else _conv2d_weight(x, g, kernel=ctx.shapes[1][2:], **p)
    return gx, gw


@_conv2d.jvp
def _conv2d_jvp(ctx, tx, tw):
    x, weight = ctx.inputs
    return jvp_total(ctx.out.shape, None if tx is None else _conv2d(tx, weight, **ctx.params),
                     None if tw is None else _conv2d(x, tw, **ctx.params))


@primitive("conv2d_input", save=("g", "weight"), save_when=("weight", "g"), same_dtype=True)
def _conv2d_input(backend, g, weight, size, stride, padding, dilation, groups):
    """The transposed convolution: col2im of ``Wᵀ g`` onto an image of spatial ``size``."""
    n, (oh, ow) = g.shape[0], g.shape[2:]
    cg, kernel = weight.shape[1], weight.shape[2:]
    w_t = weight.reshape(groups, weight.shape[0] // groups, -1).transpose(0, 2, 1)
    padded_hw = (size[0] + 2 * padding[0], size[1] + 2 * padding[1])
    if tuple(stride) == (1, 1) and bool(backend.xp.isfinite(weight).all()):
        # g laid on the padded grid's row width (zeros past OW): col2im then adds whole rows at a
        # time (rows_add), a third faster than OW-long runs at LeNet sizes although the GEMM grows
        # by Wp/OW. Non-finite weights take the general path: their products with the zero
        # columns would be NaN and spill into the next row.
        wide = backend.xp.zeros((g.shape[1], n, oh, padded_hw[1]), dtype=g.dtype)
        wide[..., :ow] = g.transpose(1, 0, 2, 3)
        cols = w_t @ wide.reshape(groups, g.shape[1] // groups, -1)                  # (G, Cg·kh·kw, N·OH·Wp)
        out = rows_add(backend, cols.reshape((groups * cg,) + tuple(kernel) + (n, -1)), padded_hw, dilation)
        out = out[..., padding[0]:padding[0] + size[0], padding[1]:padding[1] + size[1]]
        return _batch_major(backend, out)
    cols = w_t @ _rows(g, groups)
    # (G, Cg·kh·kw, N·OH·OW) viewed as (G, Cg, N, OH, OW, kh, kw): each kernel offset's block stays contiguous.
    cols = cols.reshape((groups, cg) + tuple(kernel) + (n, oh, ow)).transpose(0, 1, 4, 5, 6, 2, 3)
    out = windows_add(backend, cols, padded_hw, stride, dilation, padding, size)  # (G, Cg, N, H, W)
    return _batch_major(backend, out.reshape((groups * cg, n) + tuple(size)))


@_conv2d_input.vjp
def _conv2d_input_vjp(ctx, gy):
    g, weight = ctx.saved
    p = dict(ctx.params)
    del p["size"]
    gg = None if weight is None else _conv2d(gy, weight, **p)
    gw = None if g is None else _conv2d_weight(gy, g, kernel=ctx.shapes[1][2:], **p)
    return gg, gw


@_conv2d_input.jvp
def _conv2d_input_jvp(ctx, tg, tw):
    g, weight = ctx.inputs
    return jvp_total(ctx.out.shape, None if tg is None else _conv2d_input(tg, weight, **ctx.params),
                     None if tw is None else _conv2d_input(g, tw, **ctx.params))


@primitive("conv2d_weight", save=("x", "g"), save_when=("g", "x"), same_dtype=True)
def _conv2d_weight(backend, x, g, kernel, stride, padding, dilation, groups):
    """``g · im2col(x)ᵀ``: the weight gradient of conv2d, shaped (O, C/groups, kh, kw)."""
    cols = _im2col(backend, x, kernel, stride, padding, dilation, groups, g.shape[2:])
    # cols · gᵀ with the long N·OH·OW axis contiguous in both operands is ~1.5x faster in BLAS
    # than g · colsᵀ (measured at LeNet's conv2); the small (Cg·kh·kw, O/G) result is transposed after.
    gw = (cols @ _rows(g, groups).transpose(0, 2, 1)).transpose(0, 2, 1)             # (G, O/G, Cg·kh·kw)
    return backend.xp.ascontiguousarray(gw).reshape((g.shape[1], x.shape[1] // groups) + tuple(kernel))


@_conv2d_weight.vjp
def _conv2d_weight_vjp(ctx, gw):
    x, g = ctx.saved
    p = dict(ctx.params)
    del p["kernel"]
    gx = None if g is None else _conv2d_input(g, gw, size=ctx.shapes[0][2:], **p)
    gg = None if x is None else _conv2d(x, gw, **p)
    return gx, gg


@_conv2d_weight.jvp
def _conv2d_weight_jvp(ctx, tx, tg):
    x, g = ctx.inputs
    return jvp_total(ctx.out.shape, None if tx is None else _conv2d_weight(tx, g, **ctx.params),
                     None if tg is None else _conv2d_weight(x, tg, **ctx.params))


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
