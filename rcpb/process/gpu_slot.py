"""One GPU per training on a workstation with several GPUs and no scheduler.

Under SLURM every job gets its GPU through ``CUDA_VISIBLE_DEVICES``. On a workstation
(``profiles/local``) Snakemake runs up to N GPU trainings at once but never sets that variable
itself, so each training claims a GPU here: the first one whose lock file
``.snakemake/gpu-slots/{index}.lock`` it can lock. The lock is held by the process and released
by the operating system when it ends, also when it is killed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess

LOCK_DIR = os.path.join(".snakemake", "gpu-slots")

# open lock files of the GPUs this process holds (closing one releases its lock)
_held: list = []


def gpu_count() -> int:
    """GPUs that ``nvidia-smi -L`` lists (0 without nvidia-smi). Does not initialise CUDA."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                 check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))


def claim_gpu(n_gpus: int | None = None, lock_dir: str = LOCK_DIR) -> int | None:
    """Claim a free GPU for this process and expose only it through ``CUDA_VISIBLE_DEVICES``.

    Does nothing (returns None) when ``CUDA_VISIBLE_DEVICES`` is already set (a scheduler
    assigned the GPU) or the machine has fewer than 2 GPUs. Returns the claimed GPU's index,
    or None when every GPU is locked by another training (the job then shares GPU 0's
    default). Must run before CUDA is initialised. ``n_gpus``: GPU count (default: nvidia-smi).
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES"):
        return None
    n_gpus = gpu_count() if n_gpus is None else n_gpus
    if n_gpus < 2:
        return None
    os.makedirs(lock_dir, exist_ok=True)
    for index in range(n_gpus):
        lock = open(os.path.join(lock_dir, f"{index}.lock"), "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        _held.append(lock)
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
        return index
    return None


def release_all() -> None:
    """Release the GPUs this process claimed (for tests; a process releases them when it ends)."""
    while _held:
        _held.pop().close()
