"""Training-fraction labels used in file names (light: no pandas, imported when the
workflow starts)."""

from __future__ import annotations

from rcpb.errors import RcpbError


def fraction_label(fraction: float) -> str:
    """Training fraction as the percent string used in file names: 1.0 -> "100", 0.125 -> "12.5"."""
    return f"{round(float(fraction) * 100, 6):g}"


def parse_fraction_label(label: str) -> float:
    """Inverse of fraction_label: "25" -> 0.25."""
    try:
        return float(label) / 100.0
    except ValueError:
        raise RcpbError(
            f"training fraction {label!r}: expected a percentage such as 25, 50 or 100."
        ) from None
