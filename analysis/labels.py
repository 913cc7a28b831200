"""Training-fraction labels used in file names, the number formats of tables and headlines,
and the joining of their notes (light: no pandas, imported when the workflow starts)."""

from __future__ import annotations

import math

from rcpb.errors import RcpbError


def join_notes(*notes) -> str:
    """Non-empty notes, deduplicated in order, joined with '; '."""
    out = []
    for n in notes:
        if isinstance(n, str) and n and n not in out:
            out.append(n)
    return "; ".join(out)


def fmt(value, kind: str) -> str:
    """A number as tables and headlines print it; "n/a" when missing or not finite.

    kind: "perf" (0.1234), "diff" (+0.0123), "pct" (+3.41, no % sign), "p" (0.004, 1.2e-05),
    "int" (12), "frac" (a training fraction: "25 %"); anything else: ``str(value)``.
    """
    if kind not in ("perf", "diff", "pct", "p", "int", "frac"):
        return str(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(v):
        return "n/a"
    if kind == "perf":
        return f"{v:.4f}"
    if kind == "diff":
        return f"{v:+.4f}"
    if kind == "pct":
        return f"{v:+.2f}"
    if kind == "p":
        return f"{v:.2g}" if v >= 1e-4 else f"{v:.1e}"
    if kind == "int":
        return str(int(v))
    return f"{fraction_label(v)} %"


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


def blocks_label(value) -> str:
    """'3 blocks' for a feed-forward depth, 'n/a' when there is none (None, NaN, text)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return f"{int(v)} blocks" if math.isfinite(v) else "n/a"
