"""``bytes = fixed + per_example × batch``: a least-squares line and the batch a budget allows."""
from __future__ import annotations

import numpy as np


class LinearFit:
    """A fitted line over (batch size, bytes) points."""

    def __init__(self, batch_sizes, values):
        sizes = np.asarray(batch_sizes, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        if sizes.shape != values.shape or sizes.size < 2 or np.unique(sizes).size < 2:
            raise ValueError(f"a fit needs at least two distinct batch sizes with one value each, got "
                             f"sizes {list(batch_sizes)} and {values.size} values")
        design = np.stack([np.ones_like(sizes), sizes], axis=1)
        (self.fixed, self.per_example), *_ = np.linalg.lstsq(design, values, rcond=None)
        residual = values - design @ np.array([self.fixed, self.per_example])
        self.max_relative_error = float(np.max(np.abs(residual) / np.maximum(values, 1)))

    def predict(self, batch_size):
        return float(self.fixed + self.per_example * batch_size)

    def max_batch(self, budget_bytes):
        """The largest batch whose predicted bytes fit ``budget_bytes`` (0 if none does)."""
        if self.per_example <= 0:
            raise ValueError(f"bytes do not grow with batch size (per example {self.per_example:.1f}); "
                             "max_batch is unbounded")
        return max(0, int((budget_bytes - self.fixed) // self.per_example))

    def to_dict(self):
        return {"fixed_bytes": self.fixed, "per_example_bytes": self.per_example,
                "max_relative_error": self.max_relative_error}

    def __repr__(self):
        return f"LinearFit(fixed={self.fixed:.0f} B, per_example={self.per_example:.1f} B)"


class QuadraticFit:
    """``bytes = fixed + linear × size + quadratic × size²`` over (size, bytes) points: memory
    against a transformer's sequence length L, where attention keeps L × L probabilities per head.

    >>> fit = QuadraticFit([1, 2, 3], [10 + 3 + 2, 10 + 6 + 8, 10 + 9 + 18])
    >>> round(fit.fixed), round(fit.linear), round(fit.quadratic), fit.max_size(100)
    (10, 3, 2, 6)
    """

    def __init__(self, sizes, values):
        sizes = np.asarray(sizes, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        if sizes.shape != values.shape or np.unique(sizes).size < 3:
            raise ValueError(f"a quadratic fit needs at least three distinct sizes with one value each, got "
                             f"sizes {list(sizes)} and {values.size} values")
        design = np.stack([np.ones_like(sizes), sizes, sizes * sizes], axis=1)
        (self.fixed, self.linear, self.quadratic), *_ = np.linalg.lstsq(design, values, rcond=None)
        residual = values - design @ np.array([self.fixed, self.linear, self.quadratic])
        self.max_relative_error = float(np.max(np.abs(residual) / np.maximum(values, 1)))

    def predict(self, size):
        return float(self.fixed + self.linear * size + self.quadratic * size * size)

    def max_size(self, budget_bytes):
        """The largest integer size whose predicted bytes fit ``budget_bytes`` (0 if none does)."""
        a, b, c = self.quadratic, self.linear, self.fixed - budget_bytes
        if a <= 0 and b <= 0:
            raise ValueError("bytes do not grow with size; max_size is unbounded")
        root = -c / b if a <= 0 else (-b + np.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)
        size = max(0, int(np.floor(root)))
        while size > 0 and self.predict(size) > budget_bytes:  # floor of a float root may overshoot by one
            size -= 1
        return size

    def to_dict(self):
        return {"fixed_bytes": self.fixed, "linear_bytes": self.linear, "quadratic_bytes": self.quadratic,
                "max_relative_error": self.max_relative_error}

    def __repr__(self):
        return f"QuadraticFit(fixed={self.fixed:.0f} B, linear={self.linear:.1f} B, quadratic={self.quadratic:.2f} B)"
