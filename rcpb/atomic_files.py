"""Atomic file writes: a reader never sees a half-written file.

Every writer puts the content into a temporary file next to the target (same
directory, so the same file system), flushes it to disk and then renames it over
the target with :func:`os.replace`, which is atomic on POSIX and Windows. A process
killed midway leaves at most a stray ``*.tmp.<pid>`` file, never a partial target.

torch is imported only inside :func:`save_atomic`, so this module is cheap to import
from command modules.
"""

from __future__ import annotations

import csv
import io
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    For writers that need a path (h5py, pandas, matplotlib); the temporary name ends in
    ``.tmp.<pid>``, so pass the file format explicitly where a writer guesses it from the name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def jsonable(value):
    """Recursively turn numpy/torch scalars and arrays into Python floats, ints and lists
    (and mapping keys into strings), so that ``json.dumps`` accepts the result."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy array/scalar, torch tensor
        return jsonable(value.tolist())
    return value


def write_json_atomic(path: str | Path, obj) -> None:
    """Write ``obj`` (passed through :func:`jsonable`) as indented JSON to ``path`` atomically.

    Non-finite floats are written as ``NaN`` / ``Infinity`` (Python's json default),
    so :func:`json.load` reads back exactly what was written.
    """
    write_text_atomic(path, json.dumps(jsonable(obj), indent=2) + "\n")


def write_csv_atomic(path: str | Path, rows: Iterable[dict], columns: list[str]) -> None:
    """Write dict ``rows`` as CSV with header ``columns`` to ``path`` atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row[c] for c in columns})
    write_text_atomic(path, buf.getvalue())


def save_atomic(obj, path: str | Path) -> None:
    """``torch.save(obj, path)`` atomically (same argument order as torch.save)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def read_json(path: str | Path):
    """Read a JSON file written by :func:`write_json_atomic`."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)
