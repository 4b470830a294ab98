"""Function transforms shaped like ``torch.func`` / JAX: grad, vjp, jvp, jacrev, jacfwd, hessian, hvp.

Each takes a function of Tensors and works on its inputs' values; none touches any ``.grad``.

>>> import gradflow as gf
>>> from gradflow import func
>>> f = lambda x: (x ** 3).sum()
>>> x = gf.tensor([1.0, 2.0], dtype="float64")
>>> func.grad(f)(x)                                   # 3x²
tensor([ 3., 12.], dtype=float64)
>>> func.hvp(f, (x,), (gf.ones_like(x),))[1][0]       # 6x · v, the Hessian never formed
tensor([ 6., 12.], dtype=float64)

Reverse mode (grad, vjp, jacrev) runs the engine; forward mode (jvp, jacfwd) runs dual tensors
(``gradflow.autograd.forward_ad``). ``hessian`` is forward-over-reverse: the gradient is computed by
reverse mode while tangents flow through its backward ops. ``hvp`` offers both that and
reverse-over-reverse (differentiate ``<grad f, v>`` again); neither ever forms a Hessian.

# Note: [composing transforms]
A transform calls ``f`` on fresh inputs. When a primal itself requires grad (an outer transform is
differentiating through this one) or carries a tangent, the fresh input stays connected to it and
the inner gradient is built with ``create_graph=True``, so ``grad(grad(f))``, ``jacfwd(jacrev(f))``
and ``grad`` of a ``jvp`` compose. Only one forward-mode level can be open, so ``jacfwd(jacfwd(f))``
is refused; use ``jacfwd(jacrev(f))``.
"""
from __future__ import annotations

import functools

from .autograd import forward_ad, grad_mode
from .autograd.engine import grad as _engine_grad
from .errors import ShapeError
from .tensor import Tensor

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "hvp"]


# ----- helpers --------------------------------------------------------------------------------
def _check_tensors(values, what):
    for i, v in enumerate(values):
        if not isinstance(v, Tensor):
            raise TypeError(f"{what} {i} must be a Tensor, got {type(v).__name__}")
        if v.dtype.kind != "f":
            raise TypeError(f"{what} {i} has dtype {v.dtype}; only floating tensors can be differentiated")


def _argnums_tuple(argnums, count):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not -count <= n < count:
            raise ValueError(f"argnums {argnums} out of range for a function called with {count} arguments")
    return tuple(n % count for n in nums)


def _is_nested(primal):
    return primal.requires_grad or forward_ad.tangent_of(primal) is not None


def _fresh_input(primal):
    """A tensor with ``primal``'s value that requires grad, for ``f`` to be differentiated at.

    Connected to ``primal`` (its graph and its tangent) when an outer transform needs that;
    otherwise a new leaf, so the inner backward walks only ``f``'s graph.
    """
    if primal.requires_grad:
        from .ops.shape import _reshape

        return _reshape(primal, shape=primal.shape)   # a recorded, zero-copy identity
    leaf = Tensor(primal.data, requires_grad=True)
    tangent = forward_ad.tangent_of(primal)
    if tangent is not None:
        forward_ad._attach(leaf, tangent)
    return leaf


def _zeros_like(t):
    from .backends import of_array

    return Tensor(of_array(t.data).xp.zeros_like(t.data))


def _gradients(outputs, inputs, cotangents, nested):
    """d<outputs, cotangents>/d(inputs), zeros for unused inputs (a graph of it when ``nested``)."""
    with grad_mode.enable_grad():
        grads = _engine_grad(outputs, inputs, cotangents, retain_graph=True, create_graph=nested,
                             allow_unused=True)
    return tuple(_zeros_like(x) if g is None else g for g, x in zip(grads, inputs))


def _scalar(out, name):
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}: the function must return a Tensor, got {type(out).__name__}")
    if out.data.size != 1:
        raise ShapeError(f"{name}: the function must return a scalar (one element), got shape {out.shape}; "
                         "use jacrev/jacfwd for vector outputs, or vjp with a cotangent")
    return out


# ----- reverse mode ---------------------------------------------------------------------------
def grad_and_value(f, argnums=0, has_aux=False):
    """Like ``grad``, returning ``(gradient, value)`` (``(gradient, (value, aux))`` with has_aux)."""
    @functools.wraps(f)
    def wrapper(*args):
        nums = _argnums_tuple(argnums, len(args))
        _check_tensors([args[n] for n in nums], "differentiated argument")
        nested = any(_is_nested(args[n]) for n in nums)
        args = list(args)
        inputs = []
        for n in nums:
            args[n] = _fresh_input(args[n])
            inputs.append(args[n])
        with grad_mode.enable_grad():
            result = f(*args)
        out, aux = result if has_aux else (result, None)
        out = _scalar(out, "grad")
        if not out.requires_grad:
            grads = tuple(_zeros_like(x) for x in inputs)
        else:
            grads = _gradients([out], inputs, None, nested)
        if not nested:
            out = out.detach()
        g = grads[0] if isinstance(argnums, int) else grads
        return (g, (out, aux)) if has_aux else (g, out)
    return wrapper


def grad(f, argnums=0, has_aux=False):
    """The gradient of scalar-valued ``f`` with respect to argument ``argnums`` (an int or a tuple).

    >>> gradflow.func.grad(lambda x: (x * x).sum())(gradflow.tensor([1.0, 2.0])).tolist()
    [2.0, 4.0]
    """
    with_value = grad_and_value(f, argnums, has_aux)

    @functools.wraps(f)
    def wrapper(*args):
        g, value = with_value(*args)
        return (g, value[1]) if has_aux else g
    return wrapper


def vjp(f, *primals):
    """``(f(*primals), vjp_fn)``; ``vjp_fn(u)`` returns ``uᵀ J``, one cotangent per primal.

    ``vjp_fn`` may be called many times (the graph is kept while it lives). ``u`` has the output's
    shape (a tuple of them when ``f`` returns a tuple).
    """
    _check_tensors(primals, "primal")
    nested = any(_is_nested(p) for p in primals)
    inputs = tuple(_fresh_input(p) for p in primals)
    with grad_mode.enable_grad():
        out = f(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    _check_tensors(outs, "output")

    def vjp_fn(cotangent):
        cotangents = cotangent if isinstance(out, tuple) else (cotangent,)
        if len(cotangents) != len(outs):
            raise ShapeError(f"vjp_fn got {len(cotangents)} cotangents for {len(outs)} outputs")
        for i, (u, o) in enumerate(zip(cotangents, outs)):
            if not isinstance(u, Tensor) or u.shape != o.shape:
                got = u.shape if isinstance(u, Tensor) else type(u).__name__
                raise ShapeError(f"vjp_fn: cotangent {i} is {got}, expected a Tensor of the output's shape {o.shape}")
        live = [(o, u) for o, u in zip(outs, cotangents) if o.requires_grad]
        if not live:
            return tuple(_zeros_like(x) for x in inputs)
        return _gradients([o for o, _ in live], inputs, [u for _, u in live], nested)

    if not nested:
        out = tuple(o.detach() for o in outs) if isinstance(out, tuple) else out.detach()
    return out, vjp_fn


def jacrev(f, argnums=0):
    """The Jacobian of ``f`` by reverse mode, one VJP per output element.

    Shape ``out.shape + input.shape`` (a tuple of them for a tuple ``argnums``). Cheaper than
    ``jacfwd`` when the output is smaller than the input.
    """
    @functools.wraps(f)
    def wrapper(*args):
        nums = _argnums_tuple(argnums, len(args))
        _check_tensors([args[n] for n in nums], "differentiated argument")

        def g(*diff):
            full = list(args)
            for n, d in zip(nums, diff):
                full[n] = d
            return f(*full)

        out, vjp_fn = vjp(g, *[args[n] for n in nums])
        _check_tensors([out], "output")
        if out.data.size == 0:
            raise ShapeError("jacrev: the function returned an empty tensor; its Jacobian has no rows")
        rows = [[] for _ in nums]
        for basis in _basis(out):
            for k, row in enumerate(vjp_fn(basis)):
                rows[k].append(row)
        jacobians = tuple(_assemble(r, out.shape, args[n].shape) for r, n in zip(rows, nums))
        return jacobians[0] if isinstance(argnums, int) else jacobians
    return wrapper


def _basis(t):
    """The standard basis of ``t``'s space, as tensors of its shape, dtype and device."""
    from .backends import of_array

    xp = of_array(t.data).xp
    for i in range(t.data.size):
        e = xp.zeros(t.data.size, dtype=t.dtype)
        e[i] = 1
        yield Tensor(e.reshape(t.data.shape))


def _assemble(pieces, lead_shape, trail_shape):
    from .ops import reshape, stack

    return reshape(stack(pieces), tuple(lead_shape) + tuple(trail_shape))


# ----- forward mode ---------------------------------------------------------------------------
def jvp(f, primals, tangents):
    """``(f(*primals), J v)``: the Jacobian-vector product in one forward pass carrying tangents.

    ``primals`` and ``tangents`` are tuples of Tensors of matching shapes.

    >>> x = gradflow.tensor([1.0, 2.0], dtype="float64")
    >>> gradflow.func.jvp(lambda x: x * x, (x,), (gradflow.ones_like(x),))[1].tolist()
    [2.0, 4.0]
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp got {len(primals)} primals but {len(tangents)} tangents")
    _check_tensors(primals, "primal")
    _check_tensors(tangents, "tangent")
    with forward_ad.dual_level():
        duals = [forward_ad.make_dual(p, t) for p, t in zip(primals, tangents)]
        out = f(*duals)
        outs = out if isinstance(out, tuple) else (out,)
        _check_tensors(outs, "output")
        out_tangents = tuple(_tangent_or_zeros(o) for o in outs)
    if not any(p.requires_grad for p in primals):
        # Nothing outside differentiates these: drop any graph the rules recorded on the way.
        outs, out_tangents = tuple(o.detach() for o in outs), tuple(t.detach() for t in out_tangents)
    if isinstance(out, tuple):
        return outs, out_tangents
    return outs[0], out_tangents[0]


def _tangent_or_zeros(out):
    tangent = forward_ad.tangent_of(out)
    return _zeros_like(out) if tangent is None else tangent


def jacfwd(f, argnums=0):
    """The Jacobian of ``f`` by forward mode, one JVP per input element (column by column).

    Same shape as ``jacrev``'s; cheaper when the input is smaller than the output.
    """
    @functools.wraps(f)
    def wrapper(*args):
        nums = _argnums_tuple(argnums, len(args))
        _check_tensors([args[n] for n in nums], "differentiated argument")
        jacobians = []
        for n in nums:
            def g(x, n=n):
                full = list(args)
                full[n] = x
                return f(*full)

            columns, out = [], None
            for basis in _basis(args[n]):
                out, column = jvp(g, (args[n],), (basis,))
                _check_tensors([out], "output")
                columns.append(column)
            jacobians.append(_columns_to_jacobian(columns, out, args[n]))
        return jacobians[0] if isinstance(argnums, int) else tuple(jacobians)
    return wrapper


def _columns_to_jacobian(columns, out, x):
    from .ops import reshape, stack

    return reshape(stack(columns, axis=-1), tuple(out.shape) + tuple(x.shape))


# ----- second order ---------------------------------------------------------------------------
def hessian(f, argnums=0):
    """The Hessian of scalar-valued ``f``, forward-over-reverse (``jacfwd(jacrev(f))``).

    Shape ``x.shape + x.shape``. It is formed column by column, one Hessian-vector product each:
    use ``hvp`` when only products are needed.

    >>> W = gradflow.ones(2, 2, dtype="float64")
    >>> gradflow.func.hessian(lambda W: 0.1 / 2 * (W * W).sum())(W).reshape(4, 4).tolist()[0]
    [0.1, 0.0, 0.0, 0.0]
    """
    if not isinstance(argnums, int):
        raise TypeError(f"hessian takes one int argnums, got {argnums!r}; call it once per argument")
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(f, primals, tangents, method="reverse-over-reverse"):
    """``(f(*primals), H v)`` for scalar-valued ``f``: the Hessian-vector product, never forming H.

    ``H v`` is a tuple with one product per primal (``H`` is the Hessian in all primals jointly).

    ``method="reverse-over-reverse"`` (the default) differentiates ``<grad f, v>`` by reverse mode
    again, as the lecture derives it. ``"forward-over-reverse"`` computes the gradient by reverse
    mode while the tangents ``v`` flow through the forward and backward pass, and keeps no graph of
    the backward pass alive afterwards. Both cost a few gradients; on NumPy the default measured
    faster (``python -m benchmarks.hvp``: about 2.2x a gradient against 3x for forward-over-reverse
    on a 100k-parameter MLP), because tangents double every elementwise op of the backward pass
    while the second reverse pass skips the parts that do not reach the weights.
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"hvp got {len(primals)} primals but {len(tangents)} tangents")
    _check_tensors(primals, "primal")
    _check_tensors(tangents, "tangent")
    for i, (p, v) in enumerate(zip(primals, tangents)):
        if p.shape != v.shape or p.dtype != v.dtype:
            raise ShapeError(f"hvp: tangent {i} is {v.shape} {v.dtype} but primal {i} is {p.shape} {p.dtype}")
    if method == "forward-over-reverse":
        return _hvp_forward_over_reverse(f, primals, tangents)
    if method == "reverse-over-reverse":
        return _hvp_reverse_over_reverse(f, primals, tangents)
    raise ValueError(f"hvp method must be 'forward-over-reverse' or 'reverse-over-reverse', got {method!r}")


def _hvp_forward_over_reverse(f, primals, tangents):
    with forward_ad.dual_level(record_tangents=False):
        duals = [forward_ad.make_dual(p, v) for p, v in zip(primals, tangents)]
        inputs = [_fresh_input(d) for d in duals]
        with grad_mode.enable_grad():
            out = _scalar(f(*inputs), "hvp")
        if not out.requires_grad:
            return out, tuple(_zeros_like(p) for p in primals)
        # create_graph=True makes the engine run the differentiable VJP rules (ops), through which
        # the tangents flow; nothing differentiates that graph afterwards.
        grads = _gradients([out], inputs, None, nested=True)
        products = tuple(_tangent_or_zeros(g) for g in grads)
    return out.detach(), tuple(Tensor(h.data) for h in products)


def _hvp_reverse_over_reverse(f, primals, tangents):
    inputs = [_fresh_input(p) for p in primals]
    with grad_mode.enable_grad():
        out = _scalar(f(*inputs), "hvp")
        if not out.requires_grad:
            return out, tuple(_zeros_like(p) for p in primals)
        grads = _gradients([out], inputs, None, nested=True)
        live = [(g, v) for g, v in zip(grads, tangents) if g.requires_grad]
        if not live:
            return out.detach(), tuple(_zeros_like(p) for p in primals)
        products = _engine_grad([g for g, _ in live], inputs, [v for _, v in live], allow_unused=True)
    return out.detach(), tuple(_zeros_like(p) if h is None else h for h, p in zip(products, primals))
