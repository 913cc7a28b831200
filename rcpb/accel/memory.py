"""Keep freed tensor memory in the process for reuse (glibc's malloc; CPU training speed).

PyTorch's CPU allocator takes every tensor from ``malloc`` and returns it with ``free``. With
glibc's default settings, blocks above a (dynamic) threshold are mapped fresh from the kernel
(``mmap``) and the top of the heap is given back (trimmed) when enough of it is free. A
training step allocates and frees tens of feature maps of several MB (e.g. 7 MB for
[256, 8, 29, 29] floats), so every step maps fresh pages again, and the kernel zero-fills each
4 kB page on its first touch (what that costs: docs/performance.md).

:func:`keep_freed_memory` sets glibc's ``M_MMAP_THRESHOLD`` to its maximum (32 MiB: blocks
below it come from the heap) and ``M_TRIM_THRESHOLD`` high (the heap is not trimmed), so that
after the first step, the memory of the previous step is reused. The price is that a process
keeps its peak heap until it exits, which a training process needs again at every step
anyway. Numbers do not change (only where memory comes from). Elsewhere (macOS, Windows,
other C libraries) this does nothing.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters of glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024   # glibc's upper limit on 64-bit systems
_TRIM_THRESHOLD = 2 ** 31 - 1            # largest int: in effect, never trim

_done = False


def keep_freed_memory() -> bool:
    """Configure glibc's malloc as described in the module docstring, once per process.

    Returns True if the settings are in effect (glibc on Linux), False otherwise.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; setting a threshold also switches off glibc's dynamic
    # adjustment of both thresholds.
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
                 and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return _done
