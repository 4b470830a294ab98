"""Plain NumPy references for the CNN rows of op_table.py: written from the definitions, one
output pixel at a time (slow, obvious, independent of gradflow's im2col code)."""
import math

import numpy as np


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, width = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow))
    per_group = o // groups
    for oc in range(o):
        channels = slice((oc // per_group) * cg, (oc // per_group + 1) * cg)
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, channels, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
                out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3))
    return out if b is None else out + b[None, :, None, None]


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Scatter each input pixel times the kernel onto the output (the definition of the transpose)."""
    (sh, sw), (ph, pw), (dh, dw), (eh, ew) = _pair(stride), _pair(padding), _pair(dilation), _pair(output_padding)
    n, c, h, width = x.shape
    _, og, kh, kw = w.shape
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + eh + 1
    ow = (width - 1) * sw - 2 * pw + dw * (kw - 1) + ew + 1
    full = np.zeros((n, og * groups, oh + 2 * ph + sh, ow + 2 * pw + sw))
    per_group = c // groups
    for ic in range(c):
        outs = slice((ic // per_group) * og, (ic // per_group + 1) * og)
        for i in range(h):
            for j in range(width):
                full[:, outs, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw] += (
                    x[:, ic, i, j][:, None, None, None] * w[ic][None])
    out = full[:, :, ph:ph + oh, pw:pw + ow]
    return out if b is None else out + b[None, :, None, None]


def pool_size(size, kernel, stride, padding, dilation=1, ceil_mode=False):
    """PyTorch's pooled length: floor (or ceil) of the window count, the last start in the input or padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    count = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    return count - 1 if ceil_mode and (count - 1) * stride >= size + padding else count


def pool2d(x, kernel, stride=None, padding=0, reduce=np.max, fill=-np.inf, dilation=1, ceil_mode=False):
    """Each window reduced; padding cells hold ``fill``, cells past the padded input (ceil mode) NaN,
    which the nan-reductions skip."""
    (kh, kw), (dh, dw) = _pair(kernel), _pair(dilation)
    (sh, sw) = _pair(stride if stride is not None else kernel)
    (ph, pw) = _pair(padding)
    oh = pool_size(x.shape[2], kh, sh, ph, dh, ceil_mode)
    ow = pool_size(x.shape[3], kw, sw, pw, dw, ceil_mode)
    grid = np.full(x.shape[:2] + ((oh - 1) * sh + dh * (kh - 1) + 1 + 2 * ph + x.shape[2],
                                  (ow - 1) * sw + dw * (kw - 1) + 1 + 2 * pw + x.shape[3]), np.nan)
    grid[:, :, :x.shape[2] + 2 * ph, :x.shape[3] + 2 * pw] = fill
    grid[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]] = x
    nan_reduce = {np.max: np.nanmax, np.mean: np.nanmean}.get(reduce, reduce)
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = grid[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
            out[:, :, i, j] = nan_reduce(window, axis=(2, 3))
    return out


def max_unpool2d(x, indices, out_hw):
    out = np.zeros(x.shape[:2] + (out_hw[0] * out_hw[1],))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[n, c, indices[n, c].reshape(-1)] = x[n, c].reshape(-1)
    return out.reshape(x.shape[:2] + tuple(out_hw))


def adaptive_avg_pool2d(x, size):
    oh, ow = _pair(size)
    h, w = x.shape[2:]
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            rows = slice(i * h // oh, math.ceil((i + 1) * h / oh))
            cols = slice(j * w // ow, math.ceil((j + 1) * w / ow))
            out[:, :, i, j] = x[:, :, rows, cols].mean(axis=(2, 3))
    return out


def batch_norm(x, weight, bias, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    normalized = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    return normalized * weight.reshape(shape) + bias.reshape(shape)


def group_norm(x, groups, weight, bias, eps=1e-5):
    g = x.reshape(x.shape[0], groups, -1)
    normalized = ((g - g.mean(axis=2, keepdims=True)) / np.sqrt(g.var(axis=2, keepdims=True) + eps)).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return normalized * weight.reshape(shape) + bias.reshape(shape)


def resize(x, out_hw, scales, mode, align_corners=False):
    """PyTorch's source coordinates, pixel by pixel."""
    h, w = x.shape[2:]
    out = np.zeros(x.shape[:2] + tuple(out_hw))

    def source(i, scale, size, out_size):
        if align_corners:
            return i * (size - 1) / (out_size - 1) if out_size > 1 else 0.0
        return max((i + 0.5) * scale - 0.5, 0.0)

    for i in range(out_hw[0]):
        for j in range(out_hw[1]):
            if mode in ("nearest", "nearest-exact"):
                shift = 0.5 if mode == "nearest-exact" else 0.0
                out[:, :, i, j] = x[:, :, min(int((i + shift) * scales[0]), h - 1),
                                    min(int((j + shift) * scales[1]), w - 1)]
                continue
            total = 0.0
            sy, sx = source(i, scales[0], h, out_hw[0]), source(j, scales[1], w, out_hw[1])
            y0, x0 = min(int(sy), h - 1), min(int(sx), w - 1)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            ly, lx = sy - y0, sx - x0
            for yy, wy in ((y0, 1 - ly), (y1, ly)):
                for xx, wx in ((x0, 1 - lx), (x1, lx)):
                    total = total + wy * wx * x[:, :, yy, xx]
            out[:, :, i, j] = total
    return out
