"""The environment the workflow's jobs run in."""

from __future__ import annotations

import os
import sys


def put_interpreter_first_on_path() -> None:
    """Put the bin directory of the running Python first on ``PATH`` (inherited by jobs).

    Snakemake's jobs call ``rcpb`` and ``python``; started as ``.venv/bin/snakemake`` without
    activating the virtual environment, the shell would otherwise find another Python (or no
    ``rcpb`` at all). A job run in a conda environment (``--sdm conda``) puts that environment
    first again on activation.
    """
    bindir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + path
