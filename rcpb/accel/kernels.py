"""The C kernels of ``kernels.c`` (BN with or without ReLU, average pooling, 3x3 convolutions),
built on first use.

:func:`library` returns the loaded library with its function signatures set, or None when it
cannot be built (no C compiler, or ``RCPB_NATIVE=0``; see :mod:`rcpb.accel.native`), in which case
the models use their PyTorch formulations. Arrays are passed as ``tensor.data_ptr()``: callers
pass contiguous float32 CPU tensors and keep them alive during the call.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from rcpb.accel import native

_P, _N, _I, _F = ctypes.c_void_p, ctypes.c_long, ctypes.c_int, ctypes.c_float
_SIGNATURES = {
    "rcpb_bn_relu_chunks": ([_I, _N], _I),
    "rcpb_bn_relu_stats": ([_P, _N, _N, _P, _P, _I], None),
    "rcpb_bn_relu_forward": ([_P, _N, _N, _P, _P, _F, _P, _I], None),
    "rcpb_bn_relu_backward_sums": ([_P, _P, _N, _N, _P, _P, _F, _P, _P, _I], None),
    "rcpb_bn_relu_backward_input": ([_P, _P, _N, _N, _P, _P, _F, _P, _P, _P, _P, _I], None),
    "rcpb_avg_pool_forward": ([_P, _N, _N, _N, _N, _P, _I], None),
    "rcpb_avg_pool_backward": ([_P, _N, _N, _N, _N, _P, _I], None),
    "rcpb_conv3x3_winograd": ([_P, _P, _N, _N, _N, _N, _N, _P, _I], _I),
    "rcpb_conv3x3_winograd_weight_grad": ([_P, _P, _N, _N, _N, _N, _N, _P, _I], _I),
}
_typed: set[int] = set()


def library() -> ctypes.CDLL | None:
    """kernels.c, compiled and loaded once per process (None without a C compiler)."""
    lib = native.load(Path(__file__).with_name("kernels.c"))
    if lib is not None and id(lib) not in _typed:
        for name, (argtypes, restype) in _SIGNATURES.items():
            function = getattr(lib, name)
            function.argtypes, function.restype = argtypes, restype
        _typed.add(id(lib))
    return lib


def available() -> bool:
    """Whether the kernels are built and loaded."""
    return library() is not None
