"""Memory: what backprop keeps alive, how it grows with batch size, and how to make it fit.

``track`` counts saved buffers at the graph's chokepoint; ``profile`` sweeps batch sizes and fits
``bytes = fixed + per_example × batch``; ``plan`` picks segments to checkpoint under a budget.
README.md beside this file derives the textbook MLP's numbers by hand.
"""
from .allocator import meter
from .report import format_bytes, parse_bytes
from .tracker import Tracker, optimizer_state_bytes, track

__all__ = ["track", "Tracker", "meter", "format_bytes", "parse_bytes", "optimizer_state_bytes"]
from .fit import LinearFit, QuadraticFit  # noqa: E402
from .profile import Profile, measure_step, profile  # noqa: E402

__all__ += ["LinearFit", "QuadraticFit", "Profile", "measure_step", "profile"]
from .plan import Plan, plan  # noqa: E402

__all__ += ["Plan", "plan"]
