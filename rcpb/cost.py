"""Estimated compute of a grid before it is submitted (``rcpb grid CONFIG --cost``).

The estimate, per training configuration::

    hours = (o_K + steps * s) / 3600
    steps = phases * max_steps                       (model-steps; an UPPER BOUND)
    s     = a_K + b_K * m                            (seconds per model-step)
    m     = 3 * batch * forward_macs(cfg)            (multiply-adds of one training step)

- ``steps``: the training budget, ``train.phases * train.max_steps``. It is an upper bound:
  early stopping (``train.patience``) ends most phases sooner. Only a benchmark file that
  records a measured ``typical_step_fraction`` (the fraction of the budget real runs used)
  gives a second, typical estimate; none is assumed otherwise.
- ``m``: multiply-adds of one training step of one model, counted analytically from the
  structure (:func:`forward_macs`: the convolutions and the readout's factorized FC; BN,
  activations, pooling and Adam are memory-bound and not counted) times the minibatch
  ``batch = min(train.batch_size, n_train)`` times 3 (forward, input gradient and weight
  gradient: backward is about twice the forward).
- ``a_K`` (seconds) and ``b_K`` (seconds per multiply-add): least-squares fit (of relative
  residuals, :func:`fit_line`) of the measured seconds per model-step against ``m`` over the
  rows of a benchmark file
  (``benchmarks/pack_throughput.py --json FILE``) for pack size K and the engine the trainer
  uses on the benchmark's device (:func:`rcpb.pack.run.default_engine`). K is the number of models trained at once: the config's ``pack_slots``, limited
  by the number of members of the pack (:func:`rcpb.grid.packs`: ``pack_size`` configurations
  of one structure) with the same minibatch size; the nearest measured K is used.
  ``a`` absorbs the per-step overhead (kernel launches, Python), ``b`` the arithmetic rate.
- ``o_K`` (seconds per model): the fixed cost of one model outside its steps at that pack size
  (process start-up shared by K models, data preparation, model set-up, final evaluation and
  writing the results): the median of the benchmark rows' ``overhead_s_per_model``.
- hours are wall-clock hours of the device that ran the benchmark: GPU-hours (one GPU busy
  with one pack) when it was measured with ``--device cuda``, CPU-hours of one training
  process with the benchmark's thread count on CPU (core-hours = CPU-hours x threads).

Without a benchmark file, :func:`measure_here` times a few training steps of a handful of the
grid's own structures on this machine (one model at a time, in this process, seconds), so the
estimate is for K = 1 without process start-up; the output says so.

Benchmark file (JSON): ``{"format": "rcpb-pack-throughput", "device": "cpu" | "cuda",
"threads": int, "rows": [{"K": int, "engine": str, "macs_per_model_step": int,
"s_per_model_step": float, "overhead_s_per_model": float (optional), ...}, ...],
"typical_step_fraction": float (optional), ...}``. Engines: ``solo`` (K = 1: one training
per process, today's path), ``stacked`` and ``loop`` (:data:`rcpb.pack.run.ENGINES`).

Torch-free except :func:`measure_here`.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from rcpb.errors import RcpbError
from rcpb.sizes import hw, size_value

BENCHMARK_FORMAT = "rcpb-pack-throughput"
FIRST_KERNEL = 9       # CPB1's Conv(9) (rcpb.models.feedforward.FIRST_KERNEL)
POOL = 3               # AvgPool(3, stride 3, ceil_mode) before the readout
BACKWARD_FACTOR = 3    # forward + backward (input and weight gradients) = 3 x forward
SOLO = "solo"          # the engine name of K = 1, one training per process


# ----------------------------------------------------------------------------- multiply-adds


def pooled_size(side: int) -> int:
    """Length of AvgPool(3, stride 3, ceil_mode=True)'s output along one axis (rcpb.models.readout)."""
    return math.ceil((side - POOL) / POOL) + 1


def _chains(layers: int, iterations: int, allowed: list[int] | None) -> list[tuple[int, int]]:
    """(end iteration, length) of the multi-path model's chains (rcpb.chains)."""
    from rcpb.chains import enumerate_chains

    chains = [(c.end, c.length) for c in enumerate_chains(layers, iterations)]
    if allowed is not None:
        chains = [c for c in chains if c[1] in set(allowed)]
    return chains


def conv3_count(cfg: dict) -> int:
    """Applications of a Conv(3) (channels -> channels) in one forward pass of one image."""
    arch = cfg["arch"]
    if arch == "ff":
        return int(cfg["blocks"]) - 1
    T, layers = int(cfg["iterations"]), int(cfg["recurrent_layers"])
    if arch == "recurrent":
        # layer 2: Wff once (CPB1's output is the same at every t), Wlat at t = 2..T;
        # layers 3..: Wff at every t, Wlat at t = 2..T
        return T + (layers - 1) * (2 * T - 1)
    # multipath: ff2(x1) once, shared by every chain; each chain adds its other convs
    return 1 + sum(length - 1 for _, length in _chains(layers, T, cfg.get("allowed_lengths")))


def readout_reads(cfg: dict) -> int:
    """Feature maps the readout's FC is applied to in one forward pass."""
    if cfg["arch"] == "ff" or cfg["readout"] == "no-avg":
        return 1
    if cfg["arch"] == "recurrent":
        return int(cfg["iterations"])
    return len({end for end, _ in _chains(int(cfg["recurrent_layers"]), int(cfg["iterations"]),
                                          cfg.get("allowed_lengths"))})


def forward_macs(cfg: dict) -> int:
    """Multiply-adds of one forward pass of one image through the model of ``cfg``.

    Needs ``arch``, ``channels``, ``input_size``, ``n_neurons`` and the architecture's fields
    (``blocks``; ``recurrent_layers``, ``iterations``, ``readout``, ``allowed_lengths``).
    With an H x W input (``input_size``, rcpb.sizes), h = H - 8 and w = W - 8 (CPB1 has no
    padding), c = channels, n = neurons: CPB1 ``h w * c * 81`` + each Conv(3) ``h w * c^2 * 9``
    + each readout ``pooled(h) pooled(w) * c * n``.
    """
    c, n = int(cfg["channels"]), int(cfg["n_neurons"])
    h, w = (s - FIRST_KERNEL + 1 for s in hw(cfg["input_size"]))
    pix = h * w
    return (pix * c * FIRST_KERNEL ** 2 + conv3_count(cfg) * pix * c * c * 9
            + readout_reads(cfg) * pooled_size(h) * pooled_size(w) * c * n)


def step_macs(cfg: dict, batch: int) -> int:
    """Multiply-adds of one training step of one model: 3 x forward x batch."""
    return BACKWARD_FACTOR * int(batch) * forward_macs(cfg)


# ----------------------------------------------------------------------------- fit


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(a, b) of ``y = a + b * x`` by least squares of the relative residuals
    ``(y - a - b x) / y`` (weights ``1 / y^2``: the measured times span milliseconds to
    seconds, and each row should count alike, not the slowest ones alone), with a >= 0 and
    b >= 0 (a time per step and a time per multiply-add cannot be negative: when the free fit
    gives a negative one, it is 0 and the other is fitted alone). Needs two distinct x values
    and positive y."""
    if len(xs) != len(ys) or len(set(xs)) < 2 or min(ys) <= 0:
        raise ValueError("fit_line needs at least two points with distinct x and positive y")
    w = [1.0 / (y * y) for y in ys]
    sw = sum(w)
    sx = sum(wi * x for wi, x in zip(w, xs))
    sy = sum(wi * y for wi, y in zip(w, ys))
    sxx = sum(wi * x * x for wi, x in zip(w, xs))
    sxy = sum(wi * x * y for wi, x, y in zip(w, xs, ys))
    b = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    a = (sy - b * sx) / sw
    if b < 0:
        return sy / sw, 0.0
    if a < 0:
        return 0.0, sxy / sxx
    return a, b


@dataclass
class Model:
    """Seconds per model-step ``a + b * macs`` and per-model overhead ``o`` at pack size K."""

    K: int
    engine: str
    a: float
    b: float
    overhead: float
    n_rows: int

    def seconds(self, macs: int, steps: int) -> float:
        return self.overhead + steps * (self.a + self.b * macs)


@dataclass
class Benchmark:
    """The measured rows and where they come from."""

    source: str                  # file name, or a description of the quick measurement
    device: str
    threads: int | None
    rows: list[dict]
    typical_fraction: float | None = None
    typical_source: str | None = None
    notes: list[str] = field(default_factory=list)
    _models: dict = field(default_factory=dict)

    def sizes(self, engine: str) -> list[int]:
        return sorted({r["K"] for r in self.rows if r["engine"] == engine})

    def choose(self, K: int, wanted: str) -> tuple[int, str]:
        """The measured (K, engine) that stands for K models at once with engine ``wanted``:
        K = 1: ``solo`` (one process per model) where measured; K > 1: the nearest measured
        pack size (log scale; ties: the smaller) of ``wanted``, or of another engine (the
        first by name) where ``wanted`` was not measured; ``solo`` only when the file has no
        pack at all."""
        engines = {r["engine"] for r in self.rows}
        packed = sorted(engines - {SOLO})
        if (K == 1 and SOLO in engines) or not packed:
            engine = SOLO
        else:
            engine = wanted if wanted in packed else packed[0]
        return min(((k, engine) for k in self.sizes(engine)),
                   key=lambda c: (abs(math.log(c[0]) - math.log(K)), c[0]))

    def model(self, K: int, wanted_engine: str) -> Model:
        """The fitted cost model for ``K`` models at once (nearest measured K)."""
        k, engine = self.choose(K, wanted_engine)
        key = (k, engine)
        if key not in self._models:
            rows = [r for r in self.rows if r["K"] == k and r["engine"] == engine]
            xs = [float(r["macs_per_model_step"]) for r in rows]
            ys = [float(r["s_per_model_step"]) for r in rows]
            if len(set(xs)) >= 2:
                a, b = fit_line(xs, ys)
            else:  # one size measured: proportional to the work
                a, b = 0.0, statistics.fmean(ys) / xs[0]
            overheads = [float(r["overhead_s_per_model"]) for r in rows
                         if r.get("overhead_s_per_model") is not None]
            overhead = statistics.median(overheads) if overheads else 0.0
            self._models[key] = Model(k, engine, a, b, max(overhead, 0.0), len(rows))
        return self._models[key]


def _problem(path, text: str) -> RcpbError:
    return RcpbError(f"benchmark file {path}: {text}. Write one with "
                     f"'python benchmarks/pack_throughput.py --json {path}'.")


def load_benchmark(path: str | Path) -> Benchmark:
    """Read and check a benchmark file; RcpbError naming the file and the problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _problem(path, f"cannot be read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _problem(path, f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != BENCHMARK_FORMAT:
        raise _problem(path, f"is not a pack_throughput benchmark (expected \"format\": "
                             f"\"{BENCHMARK_FORMAT}\" at the top level)")
    device = data.get("device")
    if device not in ("cpu", "cuda"):
        raise _problem(path, f"\"device\" is {device!r}; expected \"cpu\" or \"cuda\"")
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows:
        raise _problem(path, "has no measured rows (\"rows\" must be a non-empty list)")
    for i, row in enumerate(rows):
        where = f"rows[{i}]"
        if not isinstance(row, dict):
            raise _problem(path, f"{where} is not an object")
        for key, kind in (("K", int), ("macs_per_model_step", (int, float)),
                          ("s_per_model_step", (int, float))):
            value = row.get(key)
            if not isinstance(value, kind) or isinstance(value, bool) or not value > 0 \
                    or not math.isfinite(value):
                raise _problem(path, f"{where}.{key} is {value!r}; expected a positive number"
                                     + (" (integer)" if kind is int else ""))
        if not isinstance(row.get("engine"), str):
            raise _problem(path, f"{where}.engine is {row.get('engine')!r}; expected a name "
                                 f"(solo, stacked or loop)")
        overhead = row.get("overhead_s_per_model")
        if overhead is not None and (not isinstance(overhead, (int, float))
                                     or isinstance(overhead, bool)
                                     or not math.isfinite(overhead)):
            raise _problem(path, f"{where}.overhead_s_per_model is {overhead!r}; expected a "
                                 f"number of seconds")
    fraction = data.get("typical_step_fraction")
    if fraction is not None and (not isinstance(fraction, (int, float))
                                 or isinstance(fraction, bool) or not 0 < fraction <= 1):
        raise _problem(path, f"\"typical_step_fraction\" is {fraction!r}; expected a number "
                             f"in (0, 1]")
    threads = data.get("threads")
    return Benchmark(source=str(path), device=device,
                     threads=threads if isinstance(threads, int) else None, rows=rows,
                     typical_fraction=fraction,
                     typical_source=data.get("typical_step_fraction_source"))


# ----------------------------------------------------------------------------- data shapes


@dataclass
class Shape:
    """What the cost needs from a dataset's data: model input, neurons, training stimuli."""

    input_size: int | list[int]   # s or [h, w] (rcpb.sizes)
    n_neurons: int
    n_train_full: int | None      # size of the 100 % training set (None: unknown)
    source: str


def _h5_shapes(path: Path) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        return {k: tuple(f[k].shape) for k in ("images", "responses", "split") if k in f}


def _after_preprocess(image_hw: tuple[int, int], preprocess: dict, where: str):
    """Model input (s or [h, w]) of images ``image_hw`` px after crop and downsampling."""
    crop = preprocess.get("crop")
    factor = int(preprocess.get("downsample") or 1)
    h, w = image_hw
    if crop is not None:
        if hw(crop)[0] > h or hw(crop)[1] > w:
            raise RcpbError(f"{where}: preprocess.crop = {crop} does not fit {h}x{w} px images.")
        h, w = hw(crop)
    if h % factor or w % factor:
        raise RcpbError(f"{where}: preprocess.downsample = {factor} does not divide {h}x{w} px.")
    return size_value(h // factor, w // factor)


def dataset_shape(name: str, dataset: dict, input_size: int | None = None,
                  n_neurons: int | None = None) -> Shape:
    """Input size, neurons and training-set size of a dataset of the workflow config.

    Read from the dataset file when it exists, else (simulated datasets) from the image file
    and the simulator's settings; ``input_size`` / ``n_neurons`` override. RcpbError when the
    data do not exist yet and no override is given.
    """
    from rcpb import grid

    preprocess = dataset.get("preprocess") or {}
    path = Path(grid.dataset_file(name, dataset))
    size = neurons = stimuli = None
    source = None
    if path.exists():
        shapes = _h5_shapes(path)
        if "images" in shapes and "responses" in shapes:
            size = _after_preprocess(shapes["images"][1:3], preprocess, f"datasets.{name}")
            neurons, stimuli = shapes["responses"][2], shapes["images"][0]
            source = str(path)
    if source is None and "simulate" in dataset:
        sim = dataset["simulate"]
        images = Path(sim["images"])
        if images.exists():
            shapes = _h5_shapes(images)
            image_hw = shapes["images"][1:3]
            if sim.get("input_size"):
                image_hw = hw(sim["input_size"])
            size = _after_preprocess(image_hw, preprocess, f"datasets.{name}")
            neurons, stimuli = int(sim.get("neurons") or 34), shapes["images"][0]
            source = f"simulated from {images}"
    if input_size is not None:
        size, source = input_size, "--input-size" if source is None else source
    if n_neurons is not None:
        neurons = n_neurons
    if size is None or neurons is None:
        raise RcpbError(
            f"datasets.{name}: {path} does not exist yet, so the model input size and the "
            f"number of neurons are unknown; give them with --input-size N --neurons N "
            f"(e.g. the paper's NS 2250: --input-size 37 --neurons 34).")
    n_train = None
    sizes = preprocess.get("split_sizes")
    if sizes:
        n_train = int(sizes[0])
    elif stimuli is not None:
        from rcpb.data.splits import split_sizes

        n_train = split_sizes(int(stimuli))[0]
    return Shape(size_value(*hw(size)), int(neurons), n_train,
                 source or "--input-size / --neurons")


# ----------------------------------------------------------------------------- estimate


def pack_settings(config: dict) -> tuple[int, int, str]:
    """(pack_size, pack_slots, where they come from) of a workflow config."""
    from rcpb import grid

    size, slots = grid.pack_settings(config)
    given = [k for k in ("pack_size", "pack_slots") if config.get(k) is not None]
    device = config.get("device") or "cpu"
    source = ("the config" if len(given) == 2 else
              f"the {device} default of rcpb.grid.PACK_DEFAULTS" if not given else
              f"{given[0]} from the config, the other the {device} default")
    return size, slots, source


def _resolved(cfg: dict, shape: Shape) -> tuple[dict, int]:
    """cfg with the data-derived fields, and its minibatch size."""
    from rcpb.data.splits import n_for_fraction

    batch = int((cfg.get("train") or {}).get("batch_size") or 256)
    if shape.n_train_full is not None:
        batch = min(batch, n_for_fraction(shape.n_train_full, float(cfg["train_fraction"])))
    return dict(cfg, input_size=shape.input_size, n_neurons=shape.n_neurons), batch


@dataclass
class Line:
    dataset: str
    family: str
    trainings: int = 0
    model_steps: int = 0
    seconds: float = 0.0
    sizes: set = field(default_factory=set)


def estimate(expanded: dict[str, list[dict]], shapes: dict[str, Shape], bench: Benchmark,
             pack_size: int, slots: int, engine: str) -> list[Line]:
    """One :class:`Line` per dataset and family (grid order), seconds summed per config.

    The configurations are cut into packs as the workflow does (:func:`rcpb.grid.packs`);
    within a pack, members with the same minibatch size train ``min(slots, their number)`` at
    once (the trainer's slot kinds, :func:`rcpb.pack.kinds.slot_kind`).
    """
    from rcpb.grid import FAMILIES, packs

    lines = []
    for name, configs in expanded.items():
        shape = shapes[name]
        per_family: dict[str, Line] = {}
        # grouped as the workflow groups them for this engine's device (rcpb.pack.kinds.job_key)
        for members in packs(configs, pack_size, "cuda" if engine == "stacked" else "cpu").values():
            resolved = [(cfg, *_resolved(cfg, shape)) for cfg in members]
            kinds: dict[int, int] = {}
            for _, _, batch in resolved:
                kinds[batch] = kinds.get(batch, 0) + 1
            for cfg, full, batch in resolved:
                train = cfg.get("train") or {}
                steps = int(train.get("phases", 3)) * int(train.get("max_steps", 40000))
                model = bench.model(min(slots, kinds[batch]), engine)
                line = per_family.setdefault(cfg["family"], Line(name, cfg["family"]))
                line.trainings += 1
                line.model_steps += steps
                line.seconds += model.seconds(step_macs(full, batch), steps)
                line.sizes.add((model.K, model.engine))
        order = {f: i for i, f in enumerate(FAMILIES)}
        lines += sorted(per_family.values(), key=lambda ln: order[ln.family])
    return lines


def _hours(seconds: float) -> str:
    hours = seconds / 3600
    digits = 0 if hours >= 100 else 1 if hours >= 10 else 2 if hours >= 1 else 3
    return f"{hours:,.{digits}f}"


def _threads(n: int | None) -> str:
    return "the benchmark's threads" if not n else f"{n} thread{'s' if n != 1 else ''}"


def format_estimate(lines: list[Line], bench: Benchmark, config_device: str, pack_size: int,
                    slots: int, pack_source: str, engine: str) -> str:
    """The table ``rcpb grid CONFIG --cost`` prints, with the assumptions spelled out."""
    unit = "GPU-hours" if bench.device == "cuda" else "CPU-hours"
    typical = bench.typical_fraction
    head = (f"{'dataset':<16} {'family':<14} {'trainings':>10} {'K used':>12} "
            f"{'model-steps (max)':>18} {unit + ' (max)':>16}")
    if typical:
        head += f" {f'at {typical:g} of max':>14}"
    out = [head]

    def row(dataset, family, trainings, sizes, steps, seconds):
        ks = sorted({k for k, _ in sizes})
        used = (str(ks[0]) if len(ks) == 1 else f"{ks[0]}-{ks[-1]}") if ks else ""
        text = (f"{dataset:<16} {family:<14} {trainings:>10,} {used:>12} {steps:>18,} "
                f"{_hours(seconds):>16}")
        if typical:
            text += f" {_hours(seconds * typical):>14}"
        return text

    datasets = list(dict.fromkeys(ln.dataset for ln in lines))
    total = [0, 0, 0.0, set()]
    for name in datasets:
        mine = [ln for ln in lines if ln.dataset == name]
        for ln in mine:
            out.append(row(name, ln.family, ln.trainings, ln.sizes, ln.model_steps, ln.seconds))
        sub = [sum(ln.trainings for ln in mine), sum(ln.model_steps for ln in mine),
               sum(ln.seconds for ln in mine), set().union(*(ln.sizes for ln in mine))]
        out.append(row(name, "all", *sub[:1], sub[3], sub[1], sub[2]))
        total = [total[0] + sub[0], total[1] + sub[1], total[2] + sub[2], total[3] | sub[3]]
    if len(datasets) > 1:
        out.append(row("all", "all", total[0], total[3], total[1], total[2]))

    engines = {e for _, e in total[3]}
    models = sorted({(k, e) for k, e in total[3]})
    out.append("")
    out.append(f"Figures from: {bench.source} (measured with --device {bench.device}"
               + (f", {_threads(bench.threads)}" if bench.threads else "") + ").")
    out.extend(bench.notes)
    out.append(f"Packs: pack_size {pack_size}, pack_slots {slots} ({pack_source}): K = "
               f"min(pack_slots, members of the pack) models at once, costed at the nearest "
               f"measured K ('K used'). Engine for K > 1: {engine} (the trainer's default "
               f"on {bench.device}, where the figures were measured)"
               + ("" if engine in engines or engines <= {SOLO} else
                  f" (not in the figures: {', '.join(sorted(engines - {SOLO}))} used)")
               + ".")
    if slots > 1 and not any(r["K"] > 1 for r in bench.rows):
        out.append("  (the figures have no pack measurements (K > 1): costed as one model "
                   "at a time)")
    for k, e in models:
        m = bench.model(k, e)
        out.append(f"  K = {k:>3}, engine {e:<8}: s/model-step = {m.a * 1e3:.3f} ms + "
                   f"{m.b * 1e12:.3f} ms per GMAC x step MACs ({m.n_rows} rows), "
                   f"{m.overhead:.2f} s per model outside its steps")
    out.append("model-steps (max) = trainings x phases x max_steps: an UPPER BOUND; early "
               "stopping ends most phases sooner.")
    if typical:
        out.append(f"'at {typical:g} of max': the fraction of the budget measured in "
                   f"{bench.typical_source or 'the benchmark file'}.")
    if bench.device == "cuda":
        out.append("GPU-hours: one GPU training one pack at a time.")
    else:
        out.append(f"CPU-hours: wall hours of one training process with "
                   f"{_threads(bench.threads)} "
                   f"(core-hours = CPU-hours x threads).")
    if config_device != bench.device:
        out.append(f"Note: the config trains on {config_device}, the figures were measured on "
                   f"{bench.device}; measure on the target device "
                   f"(benchmarks/pack_throughput.py --device {config_device} --json FILE) and "
                   f"pass --benchmark FILE.")
    return "\n".join(out)


# ----------------------------------------------------------------------------- quick measure


def measure_here(structures: list[tuple[dict, int]], device: str, threads: int,
                 steps: int = 3, warmup: int = 1) -> Benchmark:
    """Time ``steps`` training steps (forward, backward, Adam) of each (resolved config, batch)
    in this process, one model at a time; rows for K = 1 (engine ``solo``, no overhead)."""
    import time

    import torch

    from rcpb.accel import accelerate
    from rcpb.models import build
    from rcpb.optim import Adam

    if device == "cuda" and not torch.cuda.is_available():
        device = "cpu"
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    start = time.perf_counter()
    try:
        for cfg, batch in structures:
            model = build(cfg)
            if device == "cpu":
                accelerate(model, "cpu")
            model.to(device).train()
            optimizer = Adam(model.parameters(), lr=1e-3)
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(batch, 1, *hw(cfg["input_size"]), generator=gen).to(device)
            y = torch.rand(batch, cfg["n_neurons"], generator=gen).to(device)
            times = []
            for i in range(warmup + steps):
                if device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                loss = ((model(x) - y) ** 2).mean()
                loss.backward()
                optimizer.step()
                if device == "cuda":
                    torch.cuda.synchronize()
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
            rows.append({"K": 1, "engine": SOLO, "macs_per_model_step": step_macs(cfg, batch),
                         "s_per_model_step": statistics.median(times),
                         "overhead_s_per_model": 0.0})
    finally:
        torch.set_num_threads(saved)
    took = time.perf_counter() - start
    bench = Benchmark(
        source=f"a quick measurement on this machine ({len(rows)} of the grid's structures, "
               f"{steps} steps each, {took:.0f} s)", device=device, threads=threads, rows=rows)
    bench.notes.append(
        "No --benchmark file: measured here one model at a time in one process (K = 1; "
        "process start-up, data preparation and evaluation not included). For pack figures "
        "run 'python benchmarks/pack_throughput.py --json FILE' (on the target device) and "
        "pass --benchmark FILE.")
    return bench


def quick_structures(expanded: dict[str, list[dict]], shapes: dict[str, Shape],
                     n: int = 4, max_macs: float = 2e10) -> list[tuple[dict, int]]:
    """Up to ``n`` of the grid's structures (with their minibatch) spanning its range of step
    multiply-adds up to ``max_macs`` per step (so that the measurement takes seconds; larger
    structures are extrapolated by the fit); at least the two smallest."""
    from rcpb.pack.kinds import pack_key

    distinct = {}
    for name, configs in expanded.items():
        for cfg in configs:
            full, batch = _resolved(cfg, shapes[name])
            distinct.setdefault((pack_key(cfg), batch, hw(full["input_size"])), (full, batch))
    ranked = sorted(distinct.values(), key=lambda fb: step_macs(*fb))
    small = [fb for fb in ranked if step_macs(*fb) <= max_macs]
    ranked = small if len(small) >= 2 else ranked[:2]
    if len(ranked) > n:
        picks = sorted({round(i * (len(ranked) - 1) / (n - 1)) for i in range(n)})
        ranked = [ranked[i] for i in picks]
    return ranked
