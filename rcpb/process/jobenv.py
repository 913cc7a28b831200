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


def put_workflow_on_pythonpath(root: str | os.PathLike) -> None:
    """Make the workflow's own modules (``analysis``) importable, here and in every job.

    ``root`` is the repository (the folder holding ``analysis/``). It goes first on
    ``sys.path`` (for the Snakefile, which imports ``analysis.workflow``) and on ``PYTHONPATH``
    (inherited by jobs, which run ``python -m analysis...`` with the working directory of
    ``snakemake -d``, not the repository). ``analysis`` is not installed by ``pip install``: it
    belongs to the workflow, and rcpb never imports it.
    """
    root = os.path.abspath(root)
    if sys.path[:1] != [root]:
        sys.path.insert(0, root)
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if entries[:1] != [root]:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *entries])
