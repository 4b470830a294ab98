"""Norms: ``gradflow.linalg.norm`` with NumPy's vector and matrix orders.

Vector norms and the max-sum matrix norms are compositions (abs, pow, sum, max), so their
gradients and second derivatives come from those rules; the 2-norm's gradient at the zero vector
is 0 (PyTorch's choice) through ``_vector_2norm``. Matrix norms that need singular values (2, -2,
"nuc") use the ``svdvals`` primitive, whose VJP is ``U diag(g) Vᵀ``; under create_graph (and in its
JVP) U and Vᵀ are differentiable primitives of their own, so every order differentiates (the note
[singular vectors]).
"""
from __future__ import annotations

import math

from ..backends import of_array
from ..errors import ShapeError
from ..tensor import Tensor, _axis_alias, _keepdims_alias
from .reduce import _normalize_axis, max as _max, min as _min, sum as _sum
from .registry import constant, data_of, primitive
from .shape import reshape, swapaxes, transpose, unsqueeze


@primitive("vector_2norm", save=("x", "out"))
def _vector_2norm(backend, x, axis, keepdims):
    return backend.xp.sqrt((x * x).sum(axis=axis, keepdims=keepdims))


def _kept(out, shape, axis, keepdims):
    return out if keepdims else reshape(out, tuple(1 if d in axis else s for d, s in enumerate(shape)))


@_vector_2norm.vjp
def _vector_2norm_vjp(ctx, g):
    x, out = ctx.saved
    axis, keepdims = ctx.params["axis"], ctx.params["keepdims"]
    norm = _kept(out, ctx.shapes[0], axis, keepdims)
    # x / |x|, with 0 where the norm is 0 (a subgradient; PyTorch returns the same).
    zero = data_of(norm) == 0
    safe = norm + constant(zero.astype(data_of(norm).dtype))
    return _kept(g, ctx.shapes[0], axis, keepdims) * x / safe


@_vector_2norm.jvp
def _vector_2norm_jvp(ctx, t):
    x, out = ctx.inputs[0], ctx.out
    axis, keepdims = ctx.params["axis"], ctx.params["keepdims"]
    zero = out.data == 0
    return _sum(t * x, axis=axis, keepdims=keepdims) / (out + Tensor(zero.astype(out.dtype)))


@primitive("svdvals", save=("x",))
def _svdvals(backend, x):
    return backend.xp.linalg.svd(x, compute_uv=False)


@_svdvals.vjp
def _svdvals_vjp(ctx, g):
    (x,) = ctx.saved
    if isinstance(g, Tensor):
        # create_graph=True: U and Vᵀ as differentiable functions of x (``_svd_u``/``_svd_vh``),
        # so the gradient is differentiable again (the note [singular vectors]).
        return (_svd_u(x) * unsqueeze(g, -2)) @ _svd_vh(x)
    u, _, vh = of_array(x).xp.linalg.svd(x, full_matrices=False)
    return (u * g[..., None, :]) @ vh


# Note: [singular vectors]
# svdvals' gradient U diag(g) Vᵀ depends on x through the singular vectors, so its own derivative
# needs theirs. ``_svd_u`` and ``_svd_vh`` are the thin SVD's U and Vᵀ as primitives (each runs
# LAPACK's deterministic SVD of the same x, so their signs agree); their VJPs are the standard
# ones (Townsend, "Differentiating the Singular Value Decomposition", 2016), written with
# svdvals, _svd_u and _svd_vh again so every order differentiates. With s = svdvals(x), S =
# diag(s), V = (Vᵀ)ᵀ and F_ij = 1 / (s_j² − s_i²) off the diagonal, 0 on it:
#   from Ū:  x̄ = U (F ∘ (UᵀŪ − ŪᵀU)) S Vᵀ + (I − UUᵀ) Ū S⁻¹ Vᵀ
#   from V̄:  x̄ = U S (F ∘ (VᵀV̄ − V̄ᵀV)) Vᵀ + U S⁻¹ V̄ᵀ (I − VVᵀ)
# They hold where the singular values are distinct and, for a non-square x, nonzero: at repeated
# singular values U and V are not functions of x and the second derivative of the 2-norm is
# infinite there (F); an exactly rank-deficient non-square x divides by s = 0. Only gauge-
# invariant uses are meaningful (u_i, v_i flip sign together); svdvals' gradient is one.
@primitive("svd_u", save=("x",))
def _svd_u(backend, x):
    return backend.xp.linalg.svd(x, full_matrices=False)[0]


@primitive("svd_vh", save=("x",))
def _svd_vh(backend, x):
    return backend.xp.linalg.svd(x, full_matrices=False)[2]


def _mT(a):
    return swapaxes(a, -1, -2)


def _f_matrix(s):
    """F_ij = 1 / (s_j² − s_i²) off the diagonal, 0 on it."""
    s2 = s * s
    off = constant(1.0 - of_array(data_of(s)).xp.eye(s.shape[-1], dtype=data_of(s).dtype))
    return off / (unsqueeze(s2, -2) - unsqueeze(s2, -1) + (1.0 - off))


@_svd_u.vjp
def _svd_u_vjp(ctx, g):
    (x,) = ctx.saved
    u, s, vh = _svd_u(x), _svdvals(x), _svd_vh(x)
    utg = _mT(u) @ g
    inner = _f_matrix(s) * (utg - _mT(utg)) * unsqueeze(s, -2)
    return (u @ inner + (g - u @ utg) / unsqueeze(s, -2)) @ vh


@_svd_u.jvp
def _svd_u_jvp(ctx, t):
    # dU = U (F ∘ (dP S + S dPᵀ)) + (I − UUᵀ) dX V S⁻¹, with dP = Uᵀ dX V
    x = ctx.inputs[0]
    u, s, vh = _svd_u(x), _svdvals(x), _svd_vh(x)
    tv = t @ _mT(vh)
    dp = _mT(u) @ tv
    inner = _f_matrix(s) * (dp * unsqueeze(s, -2) + unsqueeze(s, -1) * _mT(dp))
    return u @ inner + (tv - u @ dp) / unsqueeze(s, -2)


@_svd_vh.jvp
def _svd_vh_jvp(ctx, t):
    # dV = V (F ∘ (S dP + dPᵀ S)) + (I − VVᵀ) dXᵀ U S⁻¹, transposed for Vᵀ
    x = ctx.inputs[0]
    u, s, vh = _svd_u(x), _svdvals(x), _svd_vh(x)
    ut = _mT(u) @ t
    dp = ut @ _mT(vh)
    inner = _f_matrix(s) * (unsqueeze(s, -1) * dp + _mT(dp) * unsqueeze(s, -2))
    return _mT(inner) @ vh + (ut - dp @ vh) / unsqueeze(s, -1)


@_svd_vh.vjp
def _svd_vh_vjp(ctx, g):
    (x,) = ctx.saved
    u, s, vh = _svd_u(x), _svdvals(x), _svd_vh(x)
    gvh_v = g @ _mT(vh)                        # (V̄ᵀV) with V̄ = gᵀ: the transpose of VᵀV̄
    inner = unsqueeze(s, -1) * (_f_matrix(s) * (_mT(gvh_v) - gvh_v))
    return u @ (inner @ vh + (g - gvh_v @ vh) / unsqueeze(s, -1))


@_svdvals.jvp
def _svdvals_jvp(ctx, t):
    # d s_i = u_iᵀ dX v_i, with U and V differentiable (the note [singular vectors])
    x = ctx.inputs[0]
    return _sum(_mT(_svd_u(x)) @ t * _svd_vh(x), axis=-1)


def svdvals(x):
    """Singular values of the last two axes, largest first; differentiable to any order where they are
    distinct (and, for a non-square matrix, nonzero)."""
    if x.ndim < 2:
        raise ShapeError(f"svdvals needs a matrix (at least 2 axes), got shape {x.shape}")
    return _svdvals(x)


def _vector_norm(x, ord, axis, keepdims):
    from .elementwise import abs, pow

    if ord is None or ord == 2:
        return _vector_2norm(x, axis=axis, keepdims=keepdims)
    if ord == math.inf:
        return _max(abs(x), axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return _min(abs(x), axis=axis, keepdims=keepdims)
    if ord == 0:
        return Tensor((x.data != 0).sum(axis=axis, keepdims=keepdims).astype(x.dtype))
    if ord == 1:
        return _sum(abs(x), axis=axis, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(f"norm: ord {ord!r} is a matrix norm; give two axes (or a 2-D tensor)")
    return pow(_sum(pow(abs(x), float(ord)), axis=axis, keepdims=keepdims), 1.0 / ord)


def _matrix_norm(x, ord, axes, keepdims):
    from .elementwise import abs

    row, col = axes
    if ord in (None, "fro"):
        return _vector_2norm(x, axis=axes, keepdims=keepdims)
    if ord in (1, -1, math.inf, -math.inf):
        # 1: the largest column sum of |x|; inf: the largest row sum.
        summed, other = (row, col) if ord in (1, -1) else (col, row)
        sums = _sum(abs(x), axis=summed, keepdims=True)
        pick = _max if ord > 0 else _min
        out = pick(sums, axis=other, keepdims=True)
    elif ord in (2, -2, "nuc"):
        moved = transpose(x, *([d for d in range(x.ndim) if d not in axes] + [row, col]))
        values = svdvals(moved)
        out = _sum(values, axis=-1) if ord == "nuc" else (_max if ord == 2 else _min)(values, axis=-1)
        out = reshape(out, tuple(1 if d in axes else s for d, s in enumerate(x.shape)))
    else:
        raise ValueError(f"norm: invalid order {ord!r} for a matrix norm (1, -1, 2, -2, inf, -inf, 'fro', 'nuc')")
    return out if keepdims else reshape(out, tuple(s for d, s in enumerate(x.shape) if d not in axes))


def norm(x, ord=None, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """NumPy's ``linalg.norm``: with ``axis`` an int (or a 1-D tensor), a vector norm (``ord`` any p, inf,
    -inf, 0); with two axes (or a 2-D tensor and ``ord`` given), a matrix norm (1, -1, 2, -2, inf, -inf,
    "fro", "nuc"). Without ``ord`` and ``axis``: the 2-norm of all entries.

    >>> gradflow.linalg.norm(gradflow.tensor([3., 4.])).item()
    5.0
    """
    axis = _axis_alias(axis, dim)
    keep = bool(_keepdims_alias(keepdims, keepdim))
    if axis is None:
        if ord is None:
            axes = _normalize_axis(tuple(range(x.ndim)), x.ndim, x.shape) if x.ndim else None
            return _vector_2norm(x, axis=axes, keepdims=keep)
        if x.ndim not in (1, 2):
            raise ShapeError(f"norm: ord={ord!r} without axis needs a 1-D or 2-D tensor, got shape {x.shape}")
        axis = tuple(range(x.ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    normalized = _normalize_axis(tuple(axes), x.ndim, x.shape)
    if len(normalized) != len(axes):
        raise ShapeError(f"norm: repeated axes {axes} for shape {x.shape}")
    if len(axes) == 1:
        return _vector_norm(x, ord, normalized, keep)
    if len(axes) == 2:
        axes = tuple(a % x.ndim for a in axes)
        return _matrix_norm(x, ord, axes, keep)
    raise ShapeError(f"norm: give one axis (vector norm) or two (matrix norm), got {axes}")


def vector_norm(x, ord=2, dim=None, keepdim=False):
    """PyTorch's ``linalg.vector_norm``: the ``ord`` norm of the entries over ``dim`` (all by default)."""
    axes = _normalize_axis(tuple(range(x.ndim)) if dim is None else dim, x.ndim, x.shape)
    return _vector_norm(x, ord, axes, bool(keepdim))


def matrix_norm(x, ord="fro", dim=(-2, -1), keepdim=False):
    """PyTorch's ``linalg.matrix_norm`` over the two axes ``dim``."""
    return _matrix_norm(x, ord, tuple(d % x.ndim for d in dim), bool(keepdim))

