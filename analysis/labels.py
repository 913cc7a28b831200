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


def report_fraction_label(label: str) -> str:
    """The report's "training data" label for a file-name label: "25" -> "0.25 (25 %)".

    The report sorts labels as text; led by the fraction (0.125 < 0.25 < 0.5 < 1), text order
    is numeric order, which "12.5 %", "25 %", "100 %" would not be.
    """
    return f"{parse_fraction_label(label):g} ({label} %)"
