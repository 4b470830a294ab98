"""``detect_anomaly()``: raise as soon as a forward output or a gradient holds NaN or infinity.

Off by default (the check costs a pass over every array); the error names the op.
"""
from __future__ import annotations

from .node import anomaly


class detect_anomaly:
    """Context manager and decorator turning on NaN/inf detection in forward and backward."""

    def __init__(self, enabled=True):
        self.enabled = enabled

    def __enter__(self):
        self._previous = anomaly["enabled"]
        anomaly["enabled"] = self.enabled
        return self

    def __exit__(self, *exc):
        anomaly["enabled"] = self._previous
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.enabled):
                return fn(*args, **kwargs)
        return wrapper


def is_anomaly_enabled() -> bool:
    return anomaly["enabled"]
