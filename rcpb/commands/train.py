"""``rcpb train``: train one model, or a pack of models in one process.

    rcpb train CONFIG --out DIR                    one configuration (a pack of one)
    rcpb train --from-grid DIR [DIR ...]           the workflow's packs
        [--slots K] [--engine loop|stacked] [--done FILE]

CONFIG is a JSON file or a JSON string starting with ``{`` (one training configuration, see
``rcpb grid CONFIG --show ID``). With ``--from-grid`` each DIR is
``results/{dataset}/{family}/{config_id}``: its configuration is the line of
``results/{dataset}/grid.jsonl`` (written when the workflow starts) with that id. The command
resolves every configuration (validates the fields, fills ``train`` defaults and the
data-derived ``input_size`` and ``n_neurons``) and trains them with
:func:`rcpb.pack.run.run_pack`, K = ``--slots`` at a time (default: all), which writes
``config.json``, ``log.csv``, ``best.pt``, ``paths.json`` and, last, ``metrics.json`` into
each folder (see that module; a training that diverges is written as failed and does not stop
the others). ``--done FILE``: once every member is finished, write FILE listing each member's
status (the workflow's pack marker).

All files are written atomically, so a folder holds a complete ``metrics.json`` or none. A
folder that already has ``metrics.json`` for the same configuration is left alone; for a
different configuration the command refuses before training anything. An interrupted run keeps
no partial state: rerunning trains the unfinished members from scratch and gives the same
numbers as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from rcpb.errors import RcpbError

# Fields every configuration needs, and the extra fields per architecture.
REQUIRED = ("arch", "dataset_file", "loss", "channels", "act", "first_block_order")
ARCH_REQUIRED = {
    "ff": ("blocks",),
    "recurrent": ("recurrent_layers", "iterations", "readout"),
    "multipath": ("recurrent_layers", "iterations", "readout"),
}
# Defaults for fields that are not model hyperparameters.
FIELD_DEFAULTS = {"split_seed": 0, "train_fraction": 1.0, "model_seed": 0}
PREPROCESS_DEFAULTS = {"crop": None, "downsample": 1, "neuron_scale": None}
# Filled from the data / the command line; ignored when comparing with an existing run.
DATA_FIELDS = ("input_size", "n_neurons")
EXECUTION_FIELDS = ("device", "threads")



def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train one model from a configuration",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("config", metavar="CONFIG", nargs="?",
                   help="JSON file, or a JSON string starting with '{'")
    p.add_argument("--out", metavar="DIR", help="output folder (with CONFIG)")
    p.add_argument("--from-grid", metavar="DIR", nargs="+",
                   help="train the models of folders DIR = results/{dataset}/{family}/{config_id}, "
                        "each configured by the line of results/{dataset}/grid.jsonl with its id "
                        "(instead of CONFIG and --out)")
    p.add_argument("--slots", type=int, default=None,
                   help="models trained at once (default: all); a finished one's slot takes "
                        "the next configuration of its kind")
    p.add_argument("--engine", choices=("loop", "stacked"), default=None,
                   help="how a pack's step is computed (default: loop on cpu, stacked on cuda; "
                        "docs/performance.md)")
    p.add_argument("--done", metavar="FILE",
                   help="when every member is finished, write FILE (JSON) with their status")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="overrides the config's 'device' (default cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads; overrides the config's 'threads' "
                        "(default: OMP_NUM_THREADS, else 1)")
    p.set_defaults(run=run)


# ----------------------------------------------------------------------------- config


def load_config(text: str) -> dict:
    """Parse CONFIG: a JSON string starting with '{' or the path of a JSON file."""
    if text.lstrip().startswith("{"):
        source = "the CONFIG argument"
        raw = text
    else:
        source = text
        try:
            raw = Path(text).read_text(encoding="utf-8")
        except OSError as exc:
            raise RcpbError(f"cannot read config file {text}: {exc.strerror}; "
                            "pass a JSON file path or a JSON string starting with '{'") from None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RcpbError(f"{source} is not valid JSON ({exc}); fix the syntax") from None
    if not isinstance(config, dict):
        raise RcpbError(f"{source} must hold one JSON object (a training configuration)")
    return config


def resolve_config(config: dict, device: str | None = None, threads: int | None = None) -> dict:
    """Validate ``config`` and fill defaults (not yet ``input_size`` / ``n_neurons``).

    Raises RcpbError naming the field and the fix. ``device`` / ``threads`` from the command
    line override the config's execution settings (defaults cpu, 1).
    """
    from rcpb.train import LOSSES, TRAIN_DEFAULTS

    cfg = dict(config)
    missing = [k for k in REQUIRED if cfg.get(k) is None]
    if missing:
        raise RcpbError(f"config: missing required field(s) {', '.join(missing)}; "
                        "add them (see the training configuration in the docs)")
    if cfg["arch"] not in ARCH_REQUIRED:
        raise RcpbError(f"config field 'arch': unknown value {cfg['arch']!r}; "
                        f"use one of {', '.join(ARCH_REQUIRED)}")
    missing = [k for k in ARCH_REQUIRED[cfg["arch"]] if cfg.get(k) is None]
    if missing:
        raise RcpbError(f"config: arch {cfg['arch']!r} needs field(s) {', '.join(missing)}")
    if cfg["loss"] not in LOSSES:
        raise RcpbError(f"config field 'loss': unknown value {cfg['loss']!r}; use one of {LOSSES}")
    for key, value in FIELD_DEFAULTS.items():
        if cfg.get(key) is None:
            cfg[key] = value
    fraction = cfg["train_fraction"]
    if not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise RcpbError(f"config field 'train_fraction': {fraction!r} must be a number in (0, 1]")

    pre = cfg.get("preprocess") or {}
    if not isinstance(pre, dict):
        raise RcpbError("config field 'preprocess' must be an object with crop, downsample, neuron_scale")
    cfg["preprocess"] = {**PREPROCESS_DEFAULTS, **pre}

    tr = cfg.get("train") or {}
    if not isinstance(tr, dict):
        raise RcpbError("config field 'train' must be an object")
    unknown = sorted(set(tr) - set(TRAIN_DEFAULTS))
    if unknown:
        raise RcpbError(f"config field 'train': unknown key(s) {', '.join(unknown)}; "
                        f"known keys: {', '.join(TRAIN_DEFAULTS)}")
    tr = {**TRAIN_DEFAULTS, **tr}
    positive_int = ("batch_size", "phases", "eval_every", "patience", "max_steps")
    for key in positive_int:
        if not isinstance(tr[key], int) or isinstance(tr[key], bool) or tr[key] < 1:
            raise RcpbError(f"config field 'train.{key}': {tr[key]!r} must be a positive integer")
    for key in ("lr", "lr_decay"):
        if not isinstance(tr[key], (int, float)) or tr[key] <= 0:
            raise RcpbError(f"config field 'train.{key}': {tr[key]!r} must be a positive number")
    for key in ("readout_l1", "smoothness"):
        if not isinstance(tr[key], (int, float)) or tr[key] < 0:
            raise RcpbError(f"config field 'train.{key}': {tr[key]!r} must be a number >= 0")
    if not isinstance(tr["data_seed"], int):
        raise RcpbError(f"config field 'train.data_seed': {tr['data_seed']!r} must be an integer")
    cfg["train"] = tr

    cfg["device"] = device or cfg.get("device") or "cpu"
    if cfg["device"] not in ("cpu", "cuda"):
        raise RcpbError(f"config field 'device': {cfg['device']!r}; use cpu or cuda")
    cfg["threads"] = int(threads or cfg.get("threads") or _env_threads())
    if cfg["threads"] < 1:
        raise RcpbError(f"--threads / config field 'threads': {cfg['threads']} must be >= 1")
    return cfg


def _env_threads() -> int:
    """``OMP_NUM_THREADS`` (Snakemake sets it to a job's threads), else 1."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def _comparable(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in DATA_FIELDS + EXECUTION_FIELDS}


def _fill_data_fields(cfg: dict, data) -> None:
    for key, value in (("input_size", data.input_size), ("n_neurons", int(data.n_neurons))):
        given = cfg.get(key)
        if given is not None and given != value:
            raise RcpbError(f"config field '{key}' is {given} but the prepared data of "
                            f"{cfg['dataset_file']} give {value}; remove the field or fix preprocess")
        cfg[key] = value


def _check_existing(out: Path, cfg: dict) -> bool:
    """True if ``out`` already holds a finished run of ``cfg``; raise if of another config."""
    if not (out / "metrics.json").exists():
        return False  # nothing finished there: (re)train from scratch
    from rcpb.atomic_files import read_json

    try:
        old = read_json(out / "config.json")
    except RcpbError:       # missing or corrupted
        old = None
    if old is not None and _comparable(old) == _comparable(cfg):
        return True
    raise RcpbError(f"{out} already holds a trained model of a different configuration "
                    f"(see {out / 'config.json'}); choose another --out or delete that folder")


# ----------------------------------------------------------------------------- run


@contextmanager
def _torch_settings(torch, threads: int, device: str):
    """Thread count and deterministic algorithms for the run; restored afterwards, so that
    calling :func:`run` in-process leaves torch's global settings as they were."""
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    torch.set_num_threads(threads)
    # The CPU kernels rcpb uses are deterministic already; on CUDA some backward kernels (e.g.
    # index_select's) use atomics. use_deterministic_algorithms imports torch._inductor (about
    # 1 s per training process), so it is only switched on where it matters.
    if device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        if device == "cuda":
            torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[3], saved[4]


def _members(args) -> list[tuple[dict, Path]]:
    """(configuration, output folder) pairs from CONFIG and --out, or from --from-grid."""
    if args.from_grid is not None:
        if args.config is not None or args.out is not None:
            raise RcpbError("rcpb train: give either CONFIG and --out, or --from-grid DIR ...")
        from rcpb.grid import GRID_FILE, read_grid_entries

        by_grid: dict[Path, list[Path]] = {}
        for folder in map(Path, args.from_grid):
            by_grid.setdefault(folder.parent.parent / GRID_FILE, []).append(folder)
        members = []
        for grid_file, folders in by_grid.items():
            entries = read_grid_entries(grid_file, [f.name for f in folders])
            members += [(entries[f.name], f) for f in folders]
        return members
    if args.config is None or args.out is None:
        raise RcpbError("rcpb train: give CONFIG and --out DIR (or --from-grid DIR ...)")
    return [(load_config(args.config), Path(args.out))]


def run(args) -> int:
    if args.slots is not None and args.slots < 1:
        raise RcpbError(f"--slots {args.slots}: must be >= 1")
    members = [(resolve_config(config, device=args.device, threads=args.threads), out)
               for config, out in _members(args)]
    device = members[0][0]["device"]
    threads = members[0][0]["threads"]
    if device == "cuda":
        from rcpb.process.gpu_slot import claim_gpu

        claim_gpu()  # before torch initialises CUDA
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RcpbError("--device cuda: no CUDA device is available; use --device cpu")
    from rcpb.pack.run import run_pack, write_done

    with _torch_settings(torch, threads, device):
        status = run_pack(members, slots=args.slots, engine=args.engine)
    errors = [out for out, s in status.items() if s == "error"]
    if errors:   # no marker: the pack is not finished; a rerun retries these members only
        raise RcpbError(f"{len(errors)} of {len(status)} member(s) hit an error after training "
                        f"(see the log above): {', '.join(errors)}; the others are finished")
    if args.done is not None:
        write_done(Path(args.done), status)
    counts = {s: sum(1 for v in status.values() if v == s) for s in sorted(set(status.values()))}
    if set(counts) == {"done-before"}:
        print("rcpb train: every folder already holds its configuration's results; nothing to do",
              file=sys.stderr)
    else:
        print("rcpb train: " + ", ".join(f"{n} {s}" for s, n in counts.items()), file=sys.stderr)
    # one configuration that failed is an error; in a pack a failure is one member's result
    return 1 if args.from_grid is None and "failed" in status.values() else 0
