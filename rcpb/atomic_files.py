"""Atomic file writes: a reader never sees a half-written file.

Every writer puts the content into a temporary file next to the target (same
directory, so the same file system), flushes it to disk and then renames it over
the target with :func:`os.replace`, which is atomic on POSIX and Windows. A process
killed midway leaves at most a stray ``*.tmp.<pid>`` file, never a partial target.

A write that fails because the disk is full or the folder is not writable raises one
:class:`rcpb.errors.RcpbError` naming the target and the cause ("no space left on device",
"permission denied"), and leaves neither the target nor the temporary file behind.

Readers of the files rcpb writes (:func:`read_json`, :func:`read_csv_file`,
:func:`load_torch_file`) turn a truncated or corrupted file into an RcpbError that names the
file and the fix (delete it and rerun what wrote it), instead of returning garbage.

torch and pandas are imported only inside the functions that need them, so this module is
cheap to import from command modules.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from rcpb.errors import RcpbError

#: errno values of a disk that has no room left for the file
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
#: errno values of a folder or file system the process may not write to
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    For writers that need a path (h5py, pandas, matplotlib); the temporary name ends in
    ``.tmp.<pid>``, so pass the file format explicitly where a writer guesses it from the name.

    A full disk or an unwritable folder (while creating the folder, writing the temporary file
    in the ``with`` body, or renaming it) raises :class:`RcpbError` (:func:`write_error`); in
    every case of failure the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            yield tmp
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            if not _is_write_failure(exc, path, tmp):
                raise
            raise write_error(path, exc) from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass        # nothing was created there (an unwritable folder)


def _is_write_failure(exc: OSError, path: Path, tmp: Path) -> bool:
    """Whether ``exc`` is the write of ``path`` failing: no space left (any file), or a
    permission error on the target, its temporary file or one of its folders (not, say, on an
    input file the writer reads while writing)."""
    if exc.errno in _NO_SPACE:
        return True
    if exc.errno not in _NOT_WRITABLE:
        return False
    if exc.filename is None:
        return True
    own = {str(path), str(tmp), *(str(p) for p in path.parents)}
    return str(exc.filename) in own


def write_error(path: str | Path, exc: OSError) -> RcpbError:
    """The RcpbError of a failed write of ``path``: the cause (the OS's words, e.g. "no space
    left on device", "permission denied") and what to do."""
    cause = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    if exc.errno in _NO_SPACE:
        fix = f"free space on the disk that holds {Path(path).parent} and rerun"
    elif exc.errno in _NOT_WRITABLE:
        fix = f"make {Path(path).parent} writable (or write the results elsewhere) and rerun"
    else:
        fix = "fix the cause and rerun"
    return RcpbError(f"cannot write {path}: {cause}; {fix}. Nothing was written to {path}.")


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

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # through a Python file object: a full disk is an OSError (ENOSPC) that atomic_path
        # reports, where torch's own file writer would raise a RuntimeError without the cause
        torch.save(obj, f)


# --------------------------------------------------------------------------- checked readers


def rerun_fix(path: str | Path) -> str:
    """The default fix of a corrupted file: delete it and rerun the target that writes it."""
    return f"delete {path} and rerun its target"


def _read_failure(path: Path, exc: OSError, fix: str) -> RcpbError:
    if isinstance(exc, FileNotFoundError):
        return RcpbError(f"{path} is missing; {fix}.")
    cause = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return RcpbError(f"cannot read {path}: {cause}.")


def read_json(path: str | Path, fix: str | None = None):
    """The JSON value in ``path`` (a file written by :func:`write_json_atomic`); RcpbError
    naming the file and ``fix`` (default
    :func:`rerun_fix`) when it is missing, truncated or otherwise not valid JSON."""
    path = Path(path)
    fix = fix or rerun_fix(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise _read_failure(path, exc, fix) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RcpbError(f"{path} is truncated or corrupted (not valid JSON: {exc}); "
                        f"{fix}.") from None


def read_csv_file(path: str | Path, fix: str | None = None, **read_csv_kwargs):
    """``pandas.read_csv(path, **read_csv_kwargs)`` of a CSV file written whole (by
    :func:`write_csv_atomic` or pandas through :func:`atomic_path`), which ends with a line
    break: a file that ends inside a line (truncated) or has no bytes at all raises RcpbError
    naming it and ``fix`` (default :func:`rerun_fix`), as does a missing file. A file cut at a
    line break looks like a shorter table and cannot be told from one."""
    import pandas as pd

    path = Path(path)
    fix = fix or rerun_fix(path)
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size:
                f.seek(-1, os.SEEK_END)
                last = f.read(1)
    except OSError as exc:
        raise _read_failure(path, exc, fix) from None
    if size == 0:
        raise RcpbError(f"{path} is empty (0 bytes, not even a header line): truncated or "
                        f"never written whole; {fix}.")
    if last != b"\n":
        raise RcpbError(f"{path} is truncated (its last line is incomplete); {fix}.")
    try:
        return pd.read_csv(path, **read_csv_kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise RcpbError(f"{path} is corrupted (not a valid CSV table: {exc}); {fix}.") from None


def load_torch_file(path: str | Path, fix: str | None = None, **load_kwargs):
    """``torch.load(path, **load_kwargs)`` of a file written by :func:`save_atomic`;
    RcpbError naming the file and ``fix`` (default :func:`rerun_fix`) when it is missing or
    not a complete torch archive (truncated or corrupted). A complete archive that torch cannot
    load for another reason (e.g. a tensor on a device this machine lacks) raises torch's own
    error."""
    import zipfile

    import torch

    path = Path(path)
    fix = fix or rerun_fix(path)
    try:
        with open(path, "rb") as f:
            complete = zipfile.is_zipfile(f)   # torch.save writes a zip archive
    except OSError as exc:
        raise _read_failure(path, exc, fix) from None
    if not complete:
        raise RcpbError(f"{path} is truncated or corrupted (not a complete torch.save "
                        f"archive); {fix}.")
    try:
        return torch.load(path, **load_kwargs)
    except (RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        if "zip" in str(exc).lower() or isinstance(exc, (EOFError, zipfile.BadZipFile)):
            raise RcpbError(f"{path} is corrupted ({exc}); {fix}.") from None
        raise
