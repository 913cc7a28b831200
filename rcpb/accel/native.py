"""Compile a C file of the package once per machine and load it with ctypes.

rcpb's only C code (``rcpb/accel/kernels.c``) is built on first use with the system's C
compiler (``$CC``, else ``cc``) with OpenMP, optimised for the CPU it runs on
(``-march=native``), and cached in
``$RCPB_CACHE_DIR`` (default ``$XDG_CACHE_HOME/rcpb`` or ``~/.cache/rcpb``). The cache key
covers the source, the compiler command and the CPU model and flags, so machines of different
kinds sharing one home directory (a cluster) each get their own build. Builds go to a temporary
name and are renamed into place: jobs that start at the same time do not see half a library.

Without a compiler, without OpenMP (e.g. Apple's clang) or with ``RCPB_NATIVE=0``,
:func:`load` returns None (with one warning, except for ``RCPB_NATIVE=0``) and
:func:`rcpb.accel.accelerate` leaves the models on stock PyTorch.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

_loaded: dict[str, ctypes.CDLL | None] = {}


def cache_dir() -> Path:
    if os.environ.get("RCPB_CACHE_DIR"):
        return Path(os.environ["RCPB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rcpb"


def enabled() -> bool:
    """False when ``RCPB_NATIVE=0`` asks for the PyTorch formulations only."""
    return os.environ.get("RCPB_NATIVE", "1") != "0"


def _cpu_identity() -> str:
    """CPU model and instruction-set flags (Linux), else what platform reports."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        keep = [line for line in lines if line.split(":")[0].strip() in
                ("model name", "flags", "Features", "CPU part")]
        return "\n".join(sorted(set(keep)))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


# Tried in order: -march=native where the compiler knows it (the kernels vectorise without it
# too). OpenMP is required: a single-threaded build would be slower than PyTorch's kernels.
_FLAG_SETS = (["-march=native", "-fopenmp"], ["-fopenmp"])


def _compile(source: Path, target: Path, compiler: list[str]) -> str | None:
    """Build ``source`` into ``target``; None on success, else the compiler's message."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    error = ""
    for flags in _FLAG_SETS:
        command = compiler + ["-O3", "-std=c99", *flags, "-shared", "-fPIC", str(source),
                              "-o", tmp]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode == 0:
            os.replace(tmp, target)
            return None
        error = result.stderr.strip()
    os.unlink(tmp)
    return f"no OpenMP build possible (-fopenmp): {error}"


def load(source: Path) -> ctypes.CDLL | None:
    """The shared library built from ``source`` (a C file), or None if it cannot be built.

    The first failure in a process is reported once as a warning naming the reason.
    """
    key = str(source)
    if key in _loaded:
        return _loaded[key]
    lib = None
    if enabled():
        cc = os.environ.get("CC") or "cc"
        compiler = shlex.split(cc)                    # CC may carry flags ("ccache gcc -m64")
        digest = hashlib.sha256(
            source.read_bytes() + cc.encode() + repr(_FLAG_SETS).encode()
            + _cpu_identity().encode() + sys.platform.encode()).hexdigest()[:16]
        reason = None
        try:
            target = cache_dir() / f"{source.stem}-{digest}.so"
        except RuntimeError as exc:                   # no home directory to cache in
            reason = f"no cache directory ({exc}; set RCPB_CACHE_DIR)"
        if reason is None and not target.exists():
            if not compiler or shutil.which(compiler[0]) is None:
                reason = f"no C compiler ({cc!r} not found; set CC)"
            else:
                try:
                    error = _compile(source, target, compiler)
                except OSError as exc:          # e.g. a cache directory we cannot write
                    error = str(exc)
                if error is not None:
                    reason = f"{cc} failed: {error[-500:]}"
        if reason is None:
            try:
                lib = ctypes.CDLL(str(target))
            except OSError as exc:
                reason = f"cannot load {target}: {exc}"
        if reason is not None:
            warnings.warn(f"rcpb: {source.name} not built ({reason}); using the slower "
                          "stock PyTorch models", RuntimeWarning, stacklevel=2)
    _loaded[key] = lib
    return lib
