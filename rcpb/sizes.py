"""Image sizes: one number for a square, ``[h, w]`` (rows, columns) for any other frame.

Configs (``preprocess.crop``) and training configurations (``input_size``) store a square size
as one integer, so square configurations keep the ids they had before frames could be
rectangular, and any other size as the list ``[h, w]``. Code that needs both sides calls
:func:`hw`; code that stores a size calls :func:`size_value`.
"""

from __future__ import annotations


def hw(size) -> tuple[int, int]:
    """``(h, w)`` in pixels of a size given as ``s`` (square) or ``[h, w]``."""
    if isinstance(size, (list, tuple)):
        h, w = size
        return int(h), int(w)
    return int(size), int(size)


def size_value(h: int, w: int) -> int | list[int]:
    """The stored form of an ``h`` x ``w`` size: ``h`` when square, else ``[h, w]``."""
    return int(h) if int(h) == int(w) else [int(h), int(w)]


def size_text(size) -> str:
    """``"37"`` for a square, ``"36x64"`` (rows x columns) otherwise."""
    h, w = hw(size)
    return str(h) if h == w else f"{h}x{w}"


def is_size(value, minimum: int = 1) -> bool:
    """True for an integer >= ``minimum`` or a list/tuple of two such integers."""
    def ok(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= minimum
    if isinstance(value, (list, tuple)):
        return len(value) == 2 and all(ok(v) for v in value)
    return ok(value)


def parse_size(text: str):
    """A command-line size: ``"37"`` -> 37, ``"36x64"`` -> [36, 64] (rows x columns)."""
    import argparse

    parts = str(text).lower().split("x")
    if len(parts) in (1, 2) and all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        return size_value(int(parts[0]), int(parts[-1]))
    raise argparse.ArgumentTypeError(f"{text!r} is not a size; give N (a square) or HxW, e.g. 36x64")
