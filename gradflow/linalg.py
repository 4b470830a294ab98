"""``gradflow.linalg``: NumPy's and PyTorch's linear-algebra names (the ops live in gradflow/ops)."""
from .ops import matmul  # the autocasting entry point (ops/autocast.py)
from .ops.norms import matrix_norm, norm, svdvals, vector_norm

__all__ = ["matmul", "matrix_norm", "norm", "svdvals", "vector_norm"]
