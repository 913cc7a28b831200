"""Names of path ablations (SPEC 7) and the path lengths each one keeps.

``rm{set}`` removes lengths, ``only{set}`` keeps exactly those, ``le{k}`` keeps lengths <= k,
``ge{k}`` keeps >= k (lengths as in :mod:`rcpb.chains`). numpy only, no torch.
"""

from __future__ import annotations

import re

import numpy as np

from rcpb.chains import existing_lengths
from rcpb.errors import RcpbError

_SET_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")
_ABLATION = re.compile(r"^(rm|only|le|ge)(.+)$")


def _parse_set(text: str, name: str) -> list[int]:
    """'1,3-5' -> [1, 3, 4, 5]."""
    out: set[int] = set()
    for item in text.split(","):
        m = _SET_ITEM.match(item.strip())
        if not m:
            raise RcpbError(_syntax_message(name))
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise RcpbError(f"ablation = {name!r}: range {item!r} runs backwards; write it as {hi}-{lo}.")
        out.update(range(lo, hi + 1))
    return sorted(out)


def _syntax_message(name: str) -> str:
    return (
        f"ablation = {name!r}: unknown syntax; use rm{{set}} (remove lengths), only{{set}} "
        "(keep exactly), le{k} (keep lengths <= k) or ge{k} (keep lengths >= k), where a set is "
        "comma-separated lengths and ranges, e.g. rm3, rm2-3, rm1,3, only2,4, le3, ge4."
    )


def parse_ablation(name: str | None, recurrent_layers: int, T: int) -> list[int]:
    """Allowed path lengths (sorted) of a multi-path model with ablation ``name``.

    ``name`` is ``rm{set}`` (remove), ``only{set}`` (keep exactly), ``le{k}`` (keep <= k) or
    ``ge{k}`` (keep >= k); a set is comma-separated lengths or ranges ``a-b``
    (``rm3``, ``rm2-3``, ``rm1,3``, ``only2,4``). ``None`` or ``""`` keeps every length.
    Raises RcpbError for unknown syntax, lengths that do not exist for
    (recurrent_layers, T) and sets that would remove every path.
    """
    lengths = existing_lengths(recurrent_layers, T)
    if name is None or name == "":
        return lengths
    if not isinstance(name, str):
        raise RcpbError(_syntax_message(str(name)))
    m = _ABLATION.match(name.strip())
    if not m:
        raise RcpbError(_syntax_message(name))
    kind, rest = m.groups()
    if kind in ("le", "ge"):
        if not rest.isdigit():
            raise RcpbError(_syntax_message(name))
        given = [int(rest)]
    else:
        given = _parse_set(rest, name)
    missing = [d for d in given if d not in lengths]
    if missing:
        raise RcpbError(
            f"ablation = {name!r}: length(s) {', '.join(map(str, missing))} do not exist for "
            f"{recurrent_layers} recurrent layer(s) and {T} iterations; existing lengths are "
            f"{lengths[0]}..{lengths[-1]}."
        )
    if kind == "rm":
        allowed = [d for d in lengths if d not in given]
    elif kind == "only":
        allowed = list(given)
    elif kind == "le":
        allowed = [d for d in lengths if d <= given[0]]
    else:
        allowed = [d for d in lengths if d >= given[0]]
    if not allowed:
        raise RcpbError(
            f"ablation = {name!r} removes every path (existing lengths {lengths[0]}..{lengths[-1]}); "
            "keep at least one length."
        )
    return allowed


def ablation_sets_adjacent(n_lengths_removed: int, recurrent_layers: int, T: int) -> list[str]:
    """Names of all ablations removing ``n_lengths_removed`` adjacent lengths, shortest first.

    1 layer, T = 7 (lengths 1..7): n = 1 -> rm1..rm7 (7 sets), n = 2 -> rm1-2..rm6-7 (6),
    n = 3 -> rm1-3..rm5-7 (5). Sets that would remove every length are left out.
    """
    lengths = existing_lengths(recurrent_layers, T)
    if not isinstance(n_lengths_removed, (int, np.integer)) or n_lengths_removed < 1:
        raise RcpbError(f"number of lengths removed = {n_lengths_removed!r}: must be an integer >= 1.")
    n = int(n_lengths_removed)
    if n >= len(lengths):
        return []
    out = []
    for i in range(len(lengths) - n + 1):
        lo, hi = lengths[i], lengths[i + n - 1]
        out.append(f"rm{lo}" if n == 1 else f"rm{lo}-{hi}")
    return out


def lege_sets(T: int, recurrent_layers: int = 1) -> list[str]:
    """Names ``le{k}`` then ``ge{k}`` for every existing length k (1 layer: le1..leT, ge1..geT).

    ``le{max}`` and ``ge{min}`` keep every length (the unablated model); they are included
    so each curve runs to its end point.
    """
    lengths = existing_lengths(recurrent_layers, T)
    return [f"le{k}" for k in lengths] + [f"ge{k}" for k in lengths]
