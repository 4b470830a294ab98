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
