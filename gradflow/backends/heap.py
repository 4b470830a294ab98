"""glibc's heap policy for the NumPy backend's temporaries.

Note: [heap trimming]
glibc serves a block of at least M_MMAP_THRESHOLD bytes with its own mmap and, when more than
M_TRIM_THRESHOLD bytes are free at the top of the heap, gives them back to the system. Both start
low (128 KiB) and only grow to the largest mmap'd block freed so far (at most 32 MiB; the trim
threshold follows at twice that). A process whose arrays are all a few hundred KiB never lifts
them: every step frees more than the trim threshold at the top of the heap, glibc returns it,
and the next step's arrays fault the same pages in again, zeroed by the kernel. The digits CNN
at batch 64 (`gradflow train --model cnn`) took 558 minor page faults a step that way, 5.2 ms a
step instead of 4.0 on one core; PyTorch's step takes none.

``tune()`` starts the heap where glibc's own adaptation ends for large arrays: mmap from 32 MiB,
trim above 64 MiB free. The cost is up to 64 MiB of freed heap kept resident. It runs once, when
the NumPy backend is built; ``GRADFLOW_MALLOC=default`` in the environment leaves glibc's policy
alone, and on other C libraries it does nothing.
"""
from __future__ import annotations

import ctypes
import os
import platform

# mallopt parameters, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20   # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD


def tune():
    """Set the two thresholds (see the note above); True if glibc took them."""
    if os.environ.get("GRADFLOW_MALLOC", "").strip().lower() == "default":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
