"""Models trained per hour: one training process per model (K = 1) against packs of K models.

    python benchmarks/pack_throughput.py                           # CPU, 2 threads, both mixes
    python benchmarks/pack_throughput.py --device cuda --json gpu.json
    python benchmarks/pack_throughput.py --mix example --sizes 1,4,16 --engines loop
    python benchmarks/pack_throughput.py --quick                   # a few seconds: smoke test

Every model trains exactly ``--steps`` steps (train: 1 phase, ``max_steps`` = steps,
``eval_every`` = steps, patience far beyond reach), on a synthetic dataset in rcpb's format
written to a temporary folder (random images and Poisson counts; the split sizes of NS 2250).
Each measurement is a whole ``rcpb`` process, start-up included:

- K = 1 (engine ``solo``, today's path): one ``rcpb train CONFIG --out DIR`` per model;
- K > 1: one ``rcpb train --from-grid DIR_1 .. DIR_K --slots K --engine E`` training K models
  of one structure (seeds 0..K-1) at once, for each engine (``stacked``, ``loop``).

Mixes: ``example`` = the model structures of config.yaml's demo grid (feed-forward 3 and 5
blocks, recurrent 1 and 2 layers at T = 2 and 4 with the four readout modes, multi-path)
at its size (24 px, batch 64, 8 channels, 34 neurons); ``paper`` = paper-size models (37 px,
batch 256, 8 / 16 / 32 channels, feed-forward 3 blocks and recurrent 1 layer T = 7, 2-avg).

Printed per mix, side by side: models per hour per structure and K (and the ratio to K = 1 of
the same structure, measured in the same run), the mix's models per hour (every structure the
same number of models: total models / total wall time), the processes' CPU seconds per model
(user + system over all threads, start-up included: on a shared machine less sensitive to
other processes than wall time) and the in-process milliseconds per model-step, with the machine's load average (os.getloadavg) before and after. Cells whose
estimated time (from K = 1 of the same structure and the largest smaller pack of the same
engine) exceeds ``--cell-limit`` seconds are
skipped and shown as ``skip``; a mix ratio then covers the structures measured in both columns
(marked ``*``).

``--json FILE`` writes the measured rows for ``rcpb grid CONFIG --cost --benchmark FILE``
(rcpb.cost): per structure, K and engine the process wall time, the in-process training time
(the first finished member's ``wall_time_s`` in metrics.json: the slots run the same steps
and finish together, the later members' times include their mates' final evaluation; it
includes the step-0 and final validation and the first steps' warm-up), ``s_per_model_step`` = training time / (K x steps), ``overhead_s_per_model`` =
(process wall - training time) / K (start-up, data preparation, model set-up, evaluation,
writing) and ``models_per_hour``, plus the machine and its load.

Runs unchanged on a GPU machine (``--device cuda``; nothing here imports torch).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rcpb.cost import BENCHMARK_FORMAT, SOLO, step_macs  # noqa: E402  (torch-free)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from processes import run_measured  # noqa: E402  (benchmarks/processes.py)

ENGINES = ("stacked", "loop")
BASE = dict(act="relu", first_block_order="bn_act", loss="mse", split_seed=0,
            train_fraction=1.0, allowed_lengths=None, ablation=None)


@dataclass
class Mix:
    """A set of model structures at one data size."""

    name: str
    input_size: int
    batch: int
    neurons: int
    steps: int                          # default steps per model
    split: tuple[int, int, int]         # train, validation, test stimuli
    structures: list[tuple[str, dict]]  # (label, structure fields)

    def describe(self) -> str:
        channels = sorted({s["channels"] for _, s in self.structures})
        return (f"{self.input_size} px, batch {self.batch}, "
                f"{'/'.join(map(str, channels))} channels, {self.neurons} neurons, "
                f"{sum(self.split)} stimuli ({'/'.join(map(str, self.split))})")


def ff(blocks: int, channels: int) -> dict:
    return dict(arch="ff", family="ff", blocks=blocks, channels=channels,
                recurrent_layers=None, iterations=None, readout=None)


def rec(layers: int, T: int, readout: str, channels: int, arch: str = "recurrent") -> dict:
    return dict(arch=arch, family=arch, blocks=None, channels=channels,
                recurrent_layers=layers, iterations=T, readout=readout)


def mixes(quick: bool) -> dict[str, Mix]:
    if quick:
        return {"example": Mix("example", 16, 8, 4, 2, (32, 12, 16),
                               [("ff3", ff(3, 4)), ("rec-L1-T2-2avg", rec(1, 2, "2-avg", 4))]),
                "paper": Mix("paper", 16, 8, 4, 2, (32, 12, 16),
                             [("rec-L1-T2-2avg", rec(1, 2, "2-avg", 4))])}
    example = [
        ("ff3", ff(3, 8)),
        ("ff5", ff(5, 8)),
        ("rec-L1-T2-noavg", rec(1, 2, "no-avg", 8)),
        ("rec-L1-T4-2avg", rec(1, 4, "2-avg", 8)),
        ("rec-L2-T2-late", rec(2, 2, "late-avg", 8)),
        ("rec-L2-T4-early", rec(2, 4, "early-avg", 8)),
        ("mp-L1-T2-noavg", rec(1, 2, "no-avg", 8, "multipath")),
        ("mp-L1-T4-2avg", rec(1, 4, "2-avg", 8, "multipath")),
    ]
    paper = [(f"ff3-c{c}", ff(3, c)) for c in (8, 16, 32)] + \
            [(f"rec-L1-T7-2avg-c{c}", rec(1, 7, "2-avg", c)) for c in (8, 16, 32)]
    return {"example": Mix("example", 24, 64, 34, 40, (1400, 350, 500), example),
            "paper": Mix("paper", 37, 256, 34, 10, (1400, 350, 500), paper)}


# ----------------------------------------------------------------------------- set-up


def write_dataset(path: Path, mix: Mix, seed: int = 0) -> None:
    """A random dataset in rcpb's format: uint8 images, Poisson counts of 4 trials."""
    import numpy as np

    from rcpb.data.format import Dataset, write_dataset as write

    rng = np.random.default_rng(seed)
    n = sum(mix.split)
    rates = rng.gamma(2.0, 1.5, size=(n, 1, mix.neurons))
    write(path, Dataset(
        images=rng.integers(0, 256, size=(n, mix.input_size, mix.input_size), dtype=np.uint8),
        responses=rng.poisson(rates, size=(n, 4, mix.neurons)).astype(np.float32),
        attrs={"name": f"pack_throughput_{mix.name}"}))


def configuration(mix: Mix, structure: dict, data: Path, steps: int, seed: int,
                  device: str, threads: int) -> dict:
    """A training configuration like a grid line, trained exactly ``steps`` steps."""
    from rcpb import grid

    cfg = dict(BASE, **structure, dataset=mix.name, dataset_file=str(data), model_seed=seed,
               preprocess={"crop": None, "downsample": 1, "neuron_scale": None,
                           "split_sizes": list(mix.split)},
               train={"batch_size": mix.batch, "lr": 1e-3, "lr_decay": 3.0, "phases": 1,
                      "eval_every": steps, "patience": 10 ** 6, "max_steps": steps,
                      "readout_l1": 0.01, "smoothness": 5e-6, "data_seed": seed},
               partner_id=None)
    cfg["config_id"] = grid.config_id(cfg)
    cfg.update(device=device, threads=threads)
    return cfg


def rcpb_command() -> list[str]:
    return [sys.executable, "-m", "rcpb"]


class Failed(Exception):
    """A measured process exited with an error (message: the end of its output)."""


def run_process(command: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """Run ``command``: (wall seconds, CPU seconds of the process, all threads, user + system).
    Raises :class:`Failed` when it fails."""
    wall, usage, code, output = run_measured(command, cwd, env)
    if code != 0:
        lines = output.strip().splitlines() or [""]
        raise Failed(f"exit status {code}: {lines[-1][-500:]}")
    return wall, usage.ru_utime + usage.ru_stime


def training_seconds(out: Path) -> tuple[float | None, str | None]:
    """The member's in-process training time (metrics.json wall_time_s), and its failure."""
    metrics = json.loads((out / "metrics.json").read_text())
    wall = metrics.get("wall_time_s")
    return (float(wall) if isinstance(wall, (int, float)) else None), metrics.get("failed")


@dataclass
class Cell:
    """One measurement: K models of one structure with one engine (``solo``: K processes)."""

    structure: str
    K: int
    engine: str
    walls: list[float] = field(default_factory=list)       # process wall, per repeat
    cpus: list[float] = field(default_factory=list)        # process CPU time, per repeat
    steal: list = field(default_factory=list)              # % of the machine's CPU stolen
    trains: list[float] = field(default_factory=list)      # in-process training time
    failed: int = 0
    skipped: str | None = None
    error: str | None = None

    def wall(self) -> float:
        return statistics.median(self.walls)

    def models_per_hour(self) -> float:
        return 3600 * self.K / self.wall()

    def cpu_per_model(self) -> float:
        return statistics.median(self.cpus) / self.K

    def train(self) -> float | None:
        return statistics.median(self.trains) if self.trains else None


class Runner:
    """Runs the cells of one mix in a temporary folder."""

    def __init__(self, mix: Mix, steps: int, device: str, threads: int, tmp: Path):
        self.mix, self.steps, self.device, self.threads = mix, steps, device, threads
        self.tmp = tmp / mix.name
        self.tmp.mkdir(parents=True)
        self.data = self.tmp / "data.h5"
        write_dataset(self.data, mix)
        self.env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                 os.environ.get("PYTHONPATH")])))
        self.count = 0

    def _configs(self, structure: dict, K: int) -> list[dict]:
        return [configuration(self.mix, structure, self.data, self.steps, seed, self.device,
                              self.threads) for seed in range(K)]

    def solo(self, structure: dict) -> tuple[float, float, float | None, int]:
        """One ``rcpb train CONFIG --out DIR`` process: (wall, CPU, training time, failures)."""
        self.count += 1
        (cfg,) = self._configs(structure, 1)
        work = self.tmp / f"solo{self.count}"
        work.mkdir()
        (work / "config.json").write_text(json.dumps(cfg))
        out = work / "out"
        try:
            wall, cpu = run_process(rcpb_command() + ["train", str(work / "config.json"),
                                                      "--out", str(out), "--device", self.device,
                                                      "--threads", str(self.threads)],
                                    self.env, work)
            train, failed = training_seconds(out)
        finally:
            shutil.rmtree(work)
        return wall, cpu, train, int(failed is not None)

    def pack(self, structure: dict, K: int, engine: str
             ) -> tuple[float, float, float | None, int]:
        """One ``rcpb train --from-grid`` process training K models at once."""
        from rcpb.grid import GRID_FILE

        self.count += 1
        work = self.tmp / f"pack{self.count}"
        results = work / "results" / self.mix.name
        results.mkdir(parents=True)
        configs = self._configs(structure, K)
        (results / GRID_FILE).write_text("".join(json.dumps(c, sort_keys=True) + "\n"
                                                 for c in configs))
        dirs = [results / c["family"] / c["config_id"] for c in configs]
        try:
            wall, cpu = run_process(rcpb_command() + ["train", "--from-grid"]
                                    + [str(d) for d in dirs]
                                    + ["--slots", str(K), "--engine", engine, "--device",
                                       self.device, "--threads", str(self.threads)],
                                    self.env, work)
            measured = [training_seconds(d) for d in dirs]
        finally:
            shutil.rmtree(work)
        trains = [t for t, _ in measured if t is not None]
        failed = sum(f is not None for _, f in measured)
        # the slots start together and finish at the same step; members are then evaluated and
        # written one after the other, so the first one's wall_time_s is the training time
        return wall, cpu, (min(trains) if len(trains) == K else None), failed


# ----------------------------------------------------------------------------- measuring


def measure(runner: Runner, sizes: list[int], engines: list[str], repeats: int,
            cell_limit: float, log) -> dict[tuple[str, int, str], Cell]:
    mix = runner.mix
    cells: dict[tuple[str, int, str], Cell] = {}
    columns = [(1, SOLO)] * (1 in sizes) + [(k, e) for k in sizes if k > 1 for e in engines]
    for repeat in range(repeats):
        for label, structure in mix.structures:
            for K, engine in columns:
                cell = cells.setdefault((label, K, engine), Cell(label, K, engine))
                if cell.skipped or cell.error:
                    continue
                if K > 1:
                    est = estimate(cells, label, K, engine)
                    if est is not None:
                        if est > cell_limit:
                            cell.skipped = f"est. {est:.0f} s > --cell-limit {cell_limit:g}"
                            log(f"  {mix.name} {label} K={K} {engine}: skipped ({cell.skipped})")
                            continue
                ticks = cpu_ticks()
                try:
                    if engine == SOLO:
                        wall, cpu, train, failed = runner.solo(structure)
                    else:
                        wall, cpu, train, failed = runner.pack(structure, K, engine)
                except Failed as exc:
                    cell.error = str(exc)
                    log(f"  {mix.name} {label} K={K} {engine}: ERROR, {exc}")
                    continue
                cell.walls.append(wall)
                cell.cpus.append(cpu)
                steal = steal_percent(ticks, cpu_ticks())
                cell.steal.append(steal)
                if train is not None:
                    cell.trains.append(train)
                cell.failed += failed
                log(f"  {mix.name} {label} K={K} {engine}: {wall:.1f} s, CPU {cpu:.1f} s"
                    + (f" (training {train:.1f} s)" if train is not None else "")
                    + (f", {failed} failed" if failed else "")
                    + (f", steal {steal:g} %" if steal else "")
                    + (f" [repeat {repeat + 1}]" if repeats > 1 else ""))
    return cells


def estimate(cells: dict, label: str, K: int, engine: str) -> float | None:
    """Expected seconds of a cell: start-up + K times the solo training time, or the largest
    smaller pack of this engine scaled by K over its size, whichever is larger."""
    out = None
    solo = cells.get((label, 1, SOLO))
    if solo is not None and solo.walls:
        out = solo.wall() + (K - 1) * (solo.train() or solo.wall())
    smaller = [c for (lb, k, e), c in cells.items()
               if lb == label and e == engine and k < K and c.walls]
    if smaller:
        prev = max(smaller, key=lambda c: c.K)
        out = max(out or 0.0, prev.wall() * K / prev.K)
    return out


def rows_for_json(runner: Runner, cells: dict) -> list[dict]:
    mix, rows = runner.mix, []
    structures = dict(mix.structures)
    for (label, K, engine), cell in cells.items():
        if not cell.walls:
            continue
        model = dict(structures[label], input_size=mix.input_size, n_neurons=mix.neurons)
        train = cell.train()
        per_step = (train if train is not None else cell.wall()) / (K * runner.steps)
        rows.append({
            "mix": mix.name, "structure": label, "K": K, "engine": engine,
            "config": {k: v for k, v in structures[label].items() if v is not None},
            "input_size": mix.input_size, "batch": mix.batch, "n_neurons": mix.neurons,
            "steps": runner.steps, "repeats": len(cell.walls),
            "macs_per_model_step": step_macs(model, mix.batch),
            "wall_s": cell.wall(), "walls_s": cell.walls,
            "train_s": train,
            "s_per_model_step": per_step,
            "overhead_s_per_model": (None if train is None
                                     else max(cell.wall() - train, 0.0) / K),
            "models_per_hour": cell.models_per_hour(),
            "cpu_s": statistics.median(cell.cpus), "cpu_s_per_model": cell.cpu_per_model(),
            "steal_percent": cell.steal,
            "failed": cell.failed,
        })
    return rows


# ----------------------------------------------------------------------------- table


def table(runner: Runner, cells: dict, sizes: list[int], engines: list[str]) -> str:
    mix = runner.mix
    columns = [(1, SOLO)] * (1 in sizes) + [(k, e) for k in sizes if k > 1 for e in engines]
    width = 17
    labels = [label for label, _ in mix.structures]
    name_w = max(len(x) for x in labels + ["mix (all above)"]) + 1
    head = f"{'':<{name_w}}" + "".join(f"{f'K={k} {e}':>{width}}" for k, e in columns)
    out = [head]

    def ratio_text(value, base):
        return f" ({value / base:4.1f}x)" if base else ""

    def section(title: str, value, fmt: str, higher_is_better: bool, mark_failed: bool):
        """One row per structure: ``value(cell)`` in each column, with its ratio to K = 1."""
        out.append(f"{title:<{name_w}}" + "-" * (len(head) - name_w))
        for label in labels:
            base = cells.get((label, 1, SOLO))
            base_value = value(base) if base and base.walls else None
            line = f"{label:<{name_w}}"
            for k, e in columns:
                cell = cells[(label, k, e)]
                if not cell.walls:
                    line += f"{'ERROR' if cell.error else 'skip':>{width}}"
                    continue
                v = value(cell)
                text = format(v, fmt)
                if (k, e) != (1, SOLO) and base_value:
                    text += ratio_text(v, base_value) if higher_is_better else \
                        ratio_text(base_value, v)
                text += "!" if mark_failed and cell.failed else ""
                line += f"{text:>{width}}"
            out.append(line)

    section("models per hour", Cell.models_per_hour, ",.0f", True, True)
    # the mix: the same number of models of every structure measured in this column (and in
    # K = 1 for the ratio): models / total wall
    line = f"{'mix (all above)':<{name_w}}"
    for k, e in columns:
        measured = [lb for lb in labels if cells[(lb, k, e)].walls
                    and ((1, SOLO) not in columns or cells[(lb, 1, SOLO)].walls)]
        if not measured:
            error = any(cells[(lb, k, e)].error for lb in labels)
            line += f"{'ERROR' if error else 'skip':>{width}}"
            continue
        mph = 3600 * len(measured) / sum(cells[(lb, k, e)].wall() / k for lb in measured)
        text = f"{mph:,.0f}"
        if (k, e) != (1, SOLO) and (1, SOLO) in columns:
            base = 3600 * len(measured) / sum(cells[(lb, 1, SOLO)].wall() for lb in measured)
            text += ratio_text(mph, base)
        text += "*" if len(measured) < len(labels) else ""
        line += f"{text:>{width}}"
    out.append(line)
    section("CPU s per model", Cell.cpu_per_model, ".2f", False, False)
    out.append(f"{'ms per model-step':<{name_w}}" + "-" * (len(head) - name_w))
    for label in labels:
        line = f"{label:<{name_w}}"
        for k, e in columns:
            cell = cells[(label, k, e)]
            train = cell.train() if cell.walls else None
            text = f"{1e3 * train / (k * runner.steps):.1f}" if train is not None else (
                ("ERROR" if cell.error else "skip") if not cell.walls else "?")
            line += f"{text:>{width}}"
        out.append(line)
    return "\n".join(out)


# ----------------------------------------------------------------------------- machine


def machine(device: str, threads: int) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    info = {"host": platform.node(), "platform": platform.platform(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "device": device, "threads": threads}
    try:
        info["torch"] = version("torch")
    except PackageNotFoundError:
        info["torch"] = None
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f
                                if line.startswith("model name")), None)
    except OSError:
        info["cpu"] = platform.processor() or None
    if device == "cuda" and shutil.which("nvidia-smi"):
        try:
            info["gpu"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=60).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            info["gpu"] = None
    return info


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs from /proc/stat (None where there is none). Steal:
    time a virtual machine's CPUs waited for the host, which slows a run without showing in
    its load."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_percent(before, after) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per process")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps per model (default: 40 for the example mix, "
                             "10 for the paper mix)")
    parser.add_argument("--sizes", default="1,4,16,64", help="pack sizes K (1 = one process "
                        "per model)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--mix", choices=("example", "paper", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=1,
                        help="measure every cell this many times (median)")
    parser.add_argument("--cell-limit", type=float, default=120.0,
                        help="skip a cell whose estimated time exceeds this (seconds)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny models, 2 steps, sizes 1,2 unless given (a smoke test)")
    parser.add_argument("--json", metavar="FILE",
                        help="write the measured rows (for rcpb grid CONFIG --cost)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.quick and args.sizes == parser.get_default("sizes"):
        args.sizes = "1,2"
    try:
        args.sizes = sorted({int(k) for k in args.sizes.split(",")})
    except ValueError:
        parser.error(f"--sizes {args.sizes}: give pack sizes such as 1,4,16,64")
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes: pack sizes are integers >= 1")
    args.engines = [e for e in args.engines.split(",") if e]
    unknown = sorted(set(args.engines) - set(ENGINES))
    if unknown or not args.engines:
        parser.error(f"--engines: use {', '.join(ENGINES)} (got {', '.join(unknown) or 'none'})")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_arguments(argv)
    chosen = ["example", "paper"] if args.mix == "both" else [args.mix]
    info = machine(args.device, args.threads)
    info["load_before"] = load()
    print(f"rcpb pack throughput: device {args.device}, {args.threads} threads per process; "
          f"{info.get('cpu')}, {info['cpu_count']} cores; torch {info['torch']}"
          + (f"; GPU {info['gpu']}" if info.get("gpu") else ""))
    print(f"load average before: {' '.join(map(str, info['load_before']))} (1, 5, 15 min)",
          flush=True)

    def log(text):
        print(text, file=sys.stderr, flush=True)

    all_rows, all_errors, tables = [], [], []
    # a kill (SIGTERM) ends like Ctrl-C: the temporary folder is removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="rcpb_pack_throughput_"))
    try:
        for name in chosen:
            mix = mixes(args.quick)[name]
            steps = args.steps or mix.steps
            runner = Runner(mix, steps, args.device, args.threads, tmp)
            loads = [load()]
            ticks = cpu_ticks()
            start = time.perf_counter()
            cells = measure(runner, args.sizes, args.engines, args.repeats, args.cell_limit, log)
            took = time.perf_counter() - start
            loads.append(load())
            steal = steal_percent(ticks, cpu_ticks())
            errors = [f"  ERROR {c.structure} K={c.K} {c.engine}: {c.error}"
                      for c in cells.values() if c.error]
            text = (f"\n{name} mix: {mix.describe()}; {steps} steps per model; "
                    f"{args.repeats} repeat(s); {took:.0f} s; load {loads[0][0]} -> "
                    f"{loads[1][0]}" + (f"; CPU steal {steal:g} %" if steal is not None else "")
                    + "\n" + table(runner, cells, args.sizes, args.engines)
                    + "".join("\n" + e for e in errors))
            print(text, flush=True)
            tables.append(text)
            all_rows += rows_for_json(runner, cells)
            all_errors += [{"mix": name, "structure": c.structure, "K": c.K, "engine": c.engine,
                            "error": c.error} for c in cells.values() if c.error]
    finally:
        if args.keep:
            print(f"temporary files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    info["load_after"] = load()
    print(f"\nload average after: {' '.join(map(str, info['load_after']))} (1, 5, 15 min)")
    print("K=1 solo: one 'rcpb train CONFIG --out DIR' process per model (start-up included); "
          "K>1: one 'rcpb train --from-grid' process per pack of K models of one structure. "
          "(x): models per hour against K=1 of the same structure in this run (CPU s: "
          "K=1's CPU seconds per model / this cell's). CPU s per model: the process's user + "
          "system time over all its threads / K, start-up included (less sensitive to other "
          "processes' load than wall time). "
          "ms per model-step: in-process training time (metrics.json wall_time_s of the "
          "first member to finish) / (K x steps); no start-up. skip: over --cell-limit; "
          "*: the mix over the structures measured; !: a member failed (NaN/inf); ERROR: the "
          "process failed (listed under the table). "
          "CPU steal: share of the machine's CPU time its host took (a virtual machine's "
          "hidden load; per cell in --json).")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "format": BENCHMARK_FORMAT, "device": args.device, "threads": args.threads,
            "sizes": args.sizes, "engines": args.engines, "repeats": args.repeats,
            "quick": args.quick, "machine": info, "rows": all_rows, "errors": all_errors,
            "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        }, indent=1))
        print(f"measured rows written to {args.json} (rcpb grid CONFIG --cost --benchmark "
              f"{args.json})")
    return 1 if all_errors else 0


if __name__ == "__main__":
    sys.exit(main())
