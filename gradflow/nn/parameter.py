"""Parameter: a leaf Tensor that a Module registers as trainable."""
from __future__ import annotations

from ..tensor import Tensor, tensor


class Parameter(Tensor):
    """A Tensor that requires grad and is found by ``Module.parameters()`` when set as an attribute.

    >>> import gradflow as gf
    >>> w = gf.nn.Parameter(gf.zeros(2, 3))
    >>> w.requires_grad, w.is_leaf
    (True, True)
    """

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        # Share the caller's array (like torch.nn.Parameter(t)): no copy, no graph history.
        array = data.data if isinstance(data, Tensor) else tensor(data).data
        super().__init__(array)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
