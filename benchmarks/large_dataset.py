"""Peak memory of a training job and of the aggregation on a large synthetic dataset.

    python benchmarks/large_dataset.py                       # 50,000 images of 64 x 64 px, 8,000 neurons
    python benchmarks/large_dataset.py --stimuli 2000 --neurons 300 --side 32 --out /tmp/small
    python benchmarks/large_dataset.py --aggregate-repeat 100   # the aggregation as for 100x the models

Writes a dataset file in rcpb's format (SPEC 2.1) into ``--out`` (reused when one with the same
settings is there), generated in blocks of stimuli so that this script itself never holds more
than a block: uint8 images (a smooth random field: an 8 x 8 grid of grey levels, upsampled, plus
pixel noise), Poisson counts of a random linear-nonlinear model (each neuron a Gaussian
receptive field on the 8 x 8 grid, random sign, softplus), float32, one trial for the training
and validation stimuli and ``--repeats`` for the ``--test`` test stimuli (the trial axis is
NaN-padded), a stored ``split`` and the ``true_rates`` (so that the baselines have a truth).

Then it runs, each as its own process under ``/usr/bin/time -v`` (its "Maximum resident set
size"), the workflow's steps on that file:

- ``train``: one training job as rules/train.smk runs it, ``rcpb train --from-grid DIR ...
  --slots K --done MARKER`` on a grid file; the pack holds ``--fractions`` (default 1.0 and 0.5:
  on the CPU a job holds every training fraction and split seed of one architecture and size)
  of one feed-forward model, ``--steps`` steps each;
- ``aggregate``: rules/aggregate.smk, ``python -m analysis.aggregate --models models.txt ...``
  (results.csv, neurons.csv, failed.csv) over the trained folders, each listed
  ``--aggregate-repeat`` times (as for a grid with that many times the models);
- ``baselines``: rules/aggregate.smk, ``python -m rcpb.baselines FILE ...`` (the truth scored
  like the models).

It prints each step's peak resident memory and wall time next to the dataset's size on disk and
in memory: the images as the model's float32 input, the trial-averaged responses (the targets),
the stored trials (float32, NaN-padded) and the trials of the repeated stimuli (the only ones a
noise ceiling uses). ``--json FILE`` writes the same numbers. Linux only (``/usr/bin/time``;
Debian/Ubuntu: ``apt-get install time``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIME = "/usr/bin/time"
DATASET = "large"
BLOCK = 1000          # stimuli generated (and written) at a time
GRID = 8              # the random field's grid: GRID x GRID grey levels per image
TEST, VAL = 2, 1      # split codes (rcpb.data.splits)
MB = 2 ** 20


# ----------------------------------------------------------------------------- the dataset


def settings(args) -> dict:
    """What the dataset file depends on (stored as its attributes; equal -> reused)."""
    return {"stimuli": args.stimuli, "side": args.side, "neurons": args.neurons,
            "test": args.test, "val": args.val, "repeats": args.repeats, "seed": args.seed}


def same_dataset(path: Path, wanted: dict) -> bool:
    import h5py

    if not path.exists():
        return False
    try:
        with h5py.File(path, "r") as f:
            return json.loads(f.attrs.get("benchmark_settings", "{}")) == wanted
    except OSError:
        return False


def write_dataset(path: Path, s: dict, log=print) -> None:
    """The synthetic dataset file (module docstring), written block by block."""
    import h5py
    import numpy as np

    n, side, neurons, repeats = s["stimuli"], s["side"], s["neurons"], s["repeats"]
    if s["test"] + s["val"] >= n:
        sys.exit(f"--test {s['test']} + --val {s['val']} leave no training stimuli of {n}")
    rng = np.random.default_rng([s["seed"], 0])
    split = np.zeros(n, dtype=np.int8)
    order = rng.permutation(n)
    split[order[:s["test"]]] = TEST
    split[order[s["test"]:s["test"] + s["val"]]] = VAL
    # receptive fields on the GRID x GRID field: a Gaussian at a random place, random sign,
    # scaled so that the drive has unit variance over stimuli (field values uniform in [0, 1))
    yy, xx = np.mgrid[0:GRID, 0:GRID]
    centre = rng.uniform(0, GRID - 1, size=(2, neurons))
    width = rng.uniform(0.7, 2.0, size=neurons)
    rf = np.exp(-((yy.reshape(-1, 1) - centre[0]) ** 2 + (xx.reshape(-1, 1) - centre[1]) ** 2)
                / (2 * width ** 2))                                      # [GRID^2, neurons]
    rf *= rng.choice([-1.0, 1.0], size=neurons) / np.sqrt((rf ** 2).sum(0) / 12)
    pixel = (np.arange(side) * GRID) // side                             # field cell of a pixel
    tmp = path.with_name(path.name + ".tmp")
    start = time.perf_counter()
    with h5py.File(tmp, "w") as f:
        images = f.create_dataset("images", (n, side, side), dtype=np.uint8,
                                  chunks=(min(n, 64), side, side), compression="gzip",
                                  compression_opts=4)
        # one chunk per few stimuli and every trial and neuron: blocks of stimuli read whole chunks
        rows = max(1, min(n, MB // (repeats * neurons * 4)))
        responses = f.create_dataset("responses", (n, repeats, neurons), dtype=np.float32,
                                     chunks=(rows, repeats, neurons), compression="gzip",
                                     compression_opts=1, shuffle=True)
        rates = f.create_dataset("true_rates", (n, neurons), dtype=np.float32,
                                 chunks=(max(1, min(n, MB // (neurons * 4))), neurons),
                                 compression="gzip", compression_opts=1, shuffle=True)
        f.create_dataset("split", data=split)
        for first in range(0, n, BLOCK):
            last = min(n, first + BLOCK)
            block = np.random.default_rng([s["seed"], 1, first])
            field = block.random((last - first, GRID, GRID))
            noise = block.integers(0, 48, size=(last - first, side, side))
            images[first:last] = (field[:, pixel][:, :, pixel] * 200 + noise).astype(np.uint8)
            drive = (field.reshape(-1, GRID * GRID) - 0.5) @ rf                # [block, neurons]
            rate = np.logaddexp(0.0, 1.5 * drive - 0.5).astype(np.float32)   # softplus
            trials = np.full((last - first, repeats, neurons), np.nan, dtype=np.float32)
            trials[:, 0] = block.poisson(rate)
            test = np.flatnonzero(split[first:last] == TEST)
            trials[test, 1:] = block.poisson(rate[test, None], size=(test.size, repeats - 1,
                                                                     neurons))
            responses[first:last] = trials
            rates[first:last] = rate
            if last == n or (first // BLOCK) % 10 == 9:
                log(f"  dataset: {last:,} / {n:,} stimuli ({time.perf_counter() - start:.0f} s)")
        f.attrs["name"] = DATASET
        f.attrs["source"] = "benchmarks/large_dataset.py (synthetic)"
        f.attrs["benchmark_settings"] = json.dumps(s, sort_keys=True)
    os.replace(tmp, path)


def sizes(s: dict) -> dict:
    """Bytes of the dataset in memory, by what holds them (module docstring)."""
    n, side, neurons, repeats = s["stimuli"], s["side"], s["neurons"], s["repeats"]
    return {"images_float32": n * side * side * 4,
            "trial_means_float32": n * neurons * 4,
            "trials_float32": n * repeats * neurons * 4,
            "repeated_trials_float32": s["test"] * repeats * neurons * 4}


# ----------------------------------------------------------------------------- the steps


def configuration(args, data: Path, fraction: float) -> dict:
    """One training configuration like a grid line: a feed-forward model, ``--steps`` steps."""
    from rcpb import grid

    cfg = dict(dataset=DATASET, dataset_file=str(data), family="ff", arch="ff", blocks=3,
               channels=args.channels, recurrent_layers=None, iterations=None, readout=None,
               act="relu", first_block_order="bn_act", loss=args.loss, split_seed=0,
               train_fraction=fraction, model_seed=0, allowed_lengths=None, ablation=None,
               partner_id=None,
               preprocess={"crop": None, "downsample": 1, "neuron_scale": None},
               train={"batch_size": args.batch, "lr": 1e-3, "lr_decay": 3.0, "phases": 1,
                      "eval_every": args.steps, "patience": 10 ** 6, "max_steps": args.steps,
                      "readout_l1": 0.01, "smoothness": 5e-6, "data_seed": 0})
    cfg["config_id"] = grid.config_id(cfg)
    cfg.update(device="cpu", threads=args.threads)
    return cfg


def measured(name: str, command: list[str], cwd: Path, env: dict, log) -> dict:
    """Run ``command`` under /usr/bin/time -v: {step, command, peak_rss_mb, wall_s}."""
    report = cwd / f"{name}.time"
    output = cwd / f"{name}.log"
    start = time.perf_counter()
    with open(output, "w") as out:
        code = subprocess.call([TIME, "-v", "-o", str(report)] + command, cwd=cwd, env=env,
                               stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    text = report.read_text() if report.exists() else ""
    if code != 0:
        tail = "\n".join(output.read_text().splitlines()[-15:])
        sys.exit(f"{name} failed (exit status {code}); the end of {output}:\n{tail}\n{text}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    rss = int(found.group(1)) / 1024 if found else float("nan")
    log(f"  {name}: peak {rss:,.0f} MB, {wall:.0f} s")
    return {"step": name, "command": " ".join(command), "peak_rss_mb": rss, "wall_s": wall}


def run_steps(args, data: Path, work: Path, log) -> list[dict]:
    from rcpb.grid import GRID_FILE

    results = work / "results" / DATASET
    if results.exists():
        shutil.rmtree(results)
    results.mkdir(parents=True)
    configs = [configuration(args, data, f) for f in args.fractions]
    (results / GRID_FILE).write_text("".join(json.dumps(c, sort_keys=True) + "\n"
                                             for c in configs))
    folders = [f"results/{DATASET}/{c['family']}/{c['config_id']}" for c in configs]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                         os.environ.get("PYTHONPATH")])))
    python = [sys.executable]
    steps = [measured("train", python + ["-m", "rcpb", "train", "--from-grid", *folders,
                                         "--slots", str(len(folders)),
                                         "--done", f"results/{DATASET}/packs/bench.done"],
                      work, env, log)]
    (results / "models.txt").write_text("".join(f + "\n" for f in folders * args.aggregate_repeat))
    (results / "aliases.json").write_text("[]")
    steps.append(measured("aggregate", python + [
        "-m", "analysis.aggregate", "--models", f"results/{DATASET}/models.txt",
        "--aliases", f"results/{DATASET}/aliases.json",
        "--results", f"results/{DATASET}/results.csv",
        "--neurons", f"results/{DATASET}/neurons.csv",
        "--failed", f"results/{DATASET}/failed.csv"], work, env, log))
    steps.append(measured("baselines", python + [
        "-m", "rcpb.baselines", str(data), "--dataset", DATASET,
        "--preprocess", json.dumps(configs[0]["preprocess"]), "--split-seeds", "0",
        "--out", f"results/{DATASET}/baselines.csv"], work, env, log))
    for folder in folders:
        metrics = json.loads((work / folder / "metrics.json").read_text())
        if "failed" in metrics:
            sys.exit(f"{folder}: the training failed ({metrics['failed']})")
        log(f"  {folder}: test cc_raw {metrics['test']['cc_raw']:.3f}, cc_norm2 "
            f"{metrics['test']['cc_norm2']:.3f}")
    return steps


# ----------------------------------------------------------------------------- main


def table(s: dict, file_bytes: int, steps: list[dict]) -> str:
    b = sizes(s)
    lines = [
        f"dataset: {s['stimuli']:,} images of {s['side']}x{s['side']} px, {s['neurons']:,} "
        f"neurons; {s['test']:,} test stimuli with {s['repeats']} trials, the others 1",
        f"  file on disk (gzip)                          {file_bytes / MB:9,.0f} MB",
        f"  images as float32 model input                {b['images_float32'] / MB:9,.0f} MB",
        f"  trial-averaged responses (targets), float32  {b['trial_means_float32'] / MB:9,.0f} MB",
        f"  stored trials, float32 (NaN-padded)          {b['trials_float32'] / MB:9,.0f} MB",
        f"  trials of the repeated stimuli, float32      "
        f"{b['repeated_trials_float32'] / MB:9,.0f} MB",
        "",
        f"{'step':<10} {'peak RSS':>10} {'wall':>7}  command",
    ]
    for st in steps:
        lines.append(f"{st['step']:<10} {st['peak_rss_mb']:>7,.0f} MB {st['wall_s']:>5.0f} s  "
                     f"{st['command'][:150]}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stimuli", type=int, default=50_000)
    p.add_argument("--side", type=int, default=64, help="image side (px)")
    p.add_argument("--neurons", type=int, default=8_000)
    p.add_argument("--test", type=int, default=1_000, help="test stimuli (repeated trials)")
    p.add_argument("--val", type=int, default=5_000, help="validation stimuli (one trial)")
    p.add_argument("--repeats", type=int, default=4, help="trials per test stimulus (>= 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "rcpb_large_dataset",
                   help="working folder: the dataset file (kept and reused) and the results "
                        "(default: rcpb_large_dataset in the system's temporary folder)")
    p.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.5],
                   help="training fractions of the pack's members (one model each)")
    p.add_argument("--steps", type=int, default=20, help="training steps per model")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--loss", choices=("poisson", "mse"), default="poisson")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--aggregate-repeat", type=int, default=1, metavar="N",
                   help="list each trained folder N times in the aggregation's models.txt")
    p.add_argument("--json", type=Path, help="write the numbers to this file")
    args = p.parse_args(argv)
    if args.repeats < 2:
        p.error("--repeats must be >= 2 (a noise ceiling needs repeated trials)")
    if not Path(TIME).exists():
        sys.exit(f"{TIME} not found: it measures each step's peak memory (Debian/Ubuntu: "
                 f"apt-get install time)")

    def log(line):
        print(line, file=sys.stderr, flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out.resolve()
    data = work / f"{DATASET}.h5"
    s = settings(args)
    if same_dataset(data, s):
        log(f"reusing {data}")
    else:
        log(f"writing {data}")
        write_dataset(data, s, log)
    log(f"load average {os.getloadavg()[0]:.2f}; running the steps in {work}")
    steps = run_steps(args, data, work, log)
    print(table(s, data.stat().st_size, steps))
    if args.json:
        args.json.write_text(json.dumps({"dataset": s, "file_bytes": data.stat().st_size,
                                         "bytes": sizes(s), "steps": steps}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
