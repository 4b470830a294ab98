"""dtype names: gradflow.float32 and friends are NumPy dtypes, so both spellings work anywhere."""
from __future__ import annotations

import numpy as np

from .errors import DTypeError

float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
uint8 = np.dtype("uint8")
uint16 = np.dtype("uint16")
uint32 = np.dtype("uint32")
uint64 = np.dtype("uint64")
bool_ = np.dtype("bool")
half, float, double, long = float16, float32, float64, int64  # PyTorch's aliases

_default_float = float32
SUPPORTED = {float16, float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, uint64, bool_}


def resolve(spec) -> np.dtype | None:
    """A dtype from a NumPy dtype, a dtype name (``"float64"``) or a gradflow dtype; None stays None."""
    if spec is None:
        return None
    try:
        dtype = np.dtype(spec)
    except TypeError as exc:
        raise DTypeError(f"not a dtype: {spec!r}") from exc
    if dtype not in SUPPORTED:
        raise DTypeError(f"dtype {dtype} is not supported; use one of {sorted(d.name for d in SUPPORTED)}")
    return dtype


def is_floating(dtype) -> bool:
    return dtype.kind == "f"


def default_float() -> np.dtype:
    return _default_float


def set_default_dtype(dtype) -> None:
    """Set the dtype Python floats become (float32 unless changed); must be a floating dtype."""
    global _default_float
    dtype = resolve(dtype)
    if not is_floating(dtype):
        raise DTypeError(f"the default dtype must be floating, got {dtype}")
    _default_float = dtype


def get_default_dtype() -> np.dtype:
    return _default_float


# Note: [integer operands of floating ops]
# An integer tensor meeting a floating one takes the floating operand's dtype, as in PyTorch:
# int64 × float32 is float32. NumPy 2 would give float64, silently doubling memory and
# changing precision — against the rule that mixing float32 and float64 raises instead of
# promoting. Python floats meeting an integer tensor become the default float dtype (float32).
def promote_integers(arrays):
    """``arrays`` with every integer array cast to the one floating dtype among them (if any)."""
    floating = [a.dtype for a in arrays if a.dtype.kind == "f"]
    if not floating:
        return arrays
    target = floating[0]
    return tuple(a.astype(target) if a.dtype.kind in "iu" else a for a in arrays)
