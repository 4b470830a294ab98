"""Counting what a computation launches: ``with gradflow.profiler.count() as c: ...``.

Every op and kernel-table call is counted at one dispatch point (``gradflow.backends.dispatch``,
which says what the bytes and flops mean); this is the public name for it.

>>> import gradflow as gf
>>> with gf.profiler.count() as c:
...     y = gf.ones(4, 3) @ gf.ones(3, 2)
>>> c.rows[("op", "matmul")].flops     # 2·M·N·K
48
"""
from .backends.dispatch import Counter, Row, counting as count

__all__ = ["count", "Counter", "Row"]
