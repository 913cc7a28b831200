"""Run a command as a measured child process (shared by the benchmark scripts)."""

import os
import subprocess
import time
from pathlib import Path


def run_measured(command: list[str], cwd: Path, env: dict | None = None,
                 keep_stdout: bool = True):
    """Run ``command`` in ``cwd`` and wait for it.

    Returns ``(wall seconds, resource usage of the child (os.wait4), exit code, output)``;
    output is stdout and stderr together, or stderr alone with ``keep_stdout=False`` (stdout is
    then discarded, e.g. a long job listing).
    """
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL,
                            stderr=subprocess.STDOUT if keep_stdout else subprocess.PIPE)
    output = (proc.stdout if keep_stdout else proc.stderr).read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    return wall, usage, os.waitstatus_to_exitcode(status), output
