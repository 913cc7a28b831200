"""Speed of one training step (forward, backward, Adam step) of the models of SPEC 3.

Prints, for feed-forward (3 and 5 blocks) and recurrent (1 and 2 layers, T = 7, 2-avg) models
at 8 and 32 channels: the median step time over ``--repeats`` steps (after ``--warmup``) and
its CPU time (all threads; with --threads 1 a load-independent measure of the work), the
analytic FLOPs of one step and the achieved GFLOP/s, next to the machine's measured fp32 matmul
rate (torch.mm of 2048 x 2048 matrices, same thread count).

FLOPs are counted analytically for convolutions and the readout FC only: forward = 2 x MACs,
one training step = 3 x forward (forward, input gradient, weight gradient), except CPB1's conv:
2 x forward (its input gradient is not needed and not computed, see
rcpb.accel.input_bn). BN, activations, pooling and the optimizer are not counted
(they are memory-bound). These are the FLOPs of the direct convolution: from 16 channels the
3x3 convs run by Winograd's F(2x2, 3x3) (rcpb/accel/conv3x3.py), which does 2.25 times
fewer multiply-adds, so GFLOP/s can exceed the matmul rate.

The models are accelerated as training accelerates them (rcpb.accel.accelerate); with
--reference they run as built (stock PyTorch modules).

Usage: python benchmarks/train_step.py [--threads 2] [--batch 256] [--repeats 7] [--reference]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from rcpb.models import build
from rcpb.accel import accelerate, kernels
from rcpb.optim import Adam
from rcpb.models.readout import pooled_size

BASE = dict(act="relu", first_block_order="bn_act", model_seed=0)


def first_conv_macs(config: dict) -> int:
    """Multiply-accumulates of CPB1's Conv(9), 1 -> c, for one image."""
    side = config["input_size"] - 8
    return side * side * config["channels"] * 81


def forward_macs(config: dict) -> int:
    """Multiply-accumulates of one forward pass for one image (convs + readout FC)."""
    s, c, n = config["input_size"], config["channels"], config["n_neurons"]
    side = s - 8
    pix = side * side
    macs = first_conv_macs(config)                        # CPB1, Conv(9), 1 -> c
    conv3 = pix * c * c * 9
    if config["arch"] == "ff":
        macs += (config["blocks"] - 1) * conv3
        reads = 1
    else:
        T, layers = config["iterations"], config["recurrent_layers"]
        # layer 2: Wff once (its input is the same every iteration), Wlat at t = 2..T;
        # layer 3: Wff at every t, Wlat at t = 2..T
        macs += conv3 * (1 + (T - 1)) + (layers - 1) * conv3 * (T + (T - 1))
        reads = 1 if config["readout"] == "no-avg" else T
    macs += reads * pooled_size(side) ** 2 * c * n      # factorized FC on pooled maps
    return macs


def matmul_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def training_step(config: dict, batch: int, reference: bool = False):
    """A function running one training step (forward, backward, Adam step) of the model of
    ``config`` on a fixed random batch of ``batch`` images (accelerated unless ``reference``)."""
    model = build(config)
    if not reference:
        accelerate(model, "cpu")
    model.train()
    optimizer = Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, config["input_size"], config["input_size"], generator=gen)
    y = torch.rand(batch, config["n_neurons"], generator=gen)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = ((model(x) - y) ** 2).mean()    # = mean over n_out of the per-output MSE
        loss.backward()
        optimizer.step()

    return step


def step_time(config: dict, batch: int, warmup: int, repeats: int,
              reference: bool = False) -> tuple[float, float]:
    """Median wall time and median process CPU time of one training step, in seconds."""
    step = training_step(config, batch, reference)
    times, cpu = [], []
    for i in range(warmup + repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpu)


def configs(input_size: int, n_neurons: int) -> list[tuple[str, dict]]:
    out = []
    for c in (8, 32):
        common = dict(BASE, channels=c, input_size=input_size, n_neurons=n_neurons)
        out += [
            (f"FF 3 blocks, {c} ch", dict(common, arch="ff", blocks=3)),
            (f"FF 5 blocks, {c} ch", dict(common, arch="ff", blocks=5)),
            (f"rec 1 layer T7 2-avg, {c} ch",
             dict(common, arch="recurrent", recurrent_layers=1, iterations=7, readout="2-avg")),
            (f"rec 2 layers T7 2-avg, {c} ch",
             dict(common, arch="recurrent", recurrent_layers=2, iterations=7, readout="2-avg")),
        ]
    return out


def parse_arguments(doc: str) -> argparse.Namespace:
    """The command line of the benchmarks (this one and conv_passes.py); ``doc`` is the
    script's docstring, whose first line describes it."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--input-size", type=int, default=37)
    parser.add_argument("--neurons", type=int, default=34)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", default=None, help="run only models whose name contains this")
    parser.add_argument("--reference", action="store_true",
                        help="stock PyTorch models (no rcpb.accel.accelerate)")
    return parser.parse_args()


def selected_configs(args: argparse.Namespace) -> list[tuple[str, dict]]:
    """The models of :func:`configs` whose name contains ``--only``."""
    return [(name, config) for name, config in configs(args.input_size, args.neurons)
            if not args.only or args.only in name]


def start(doc: str) -> tuple[argparse.Namespace, float]:
    """Parse the command line, set the thread count and print the setting and the machine's
    matmul rate (returned, in GFLOP/s)."""
    args = parse_arguments(doc)
    torch.set_num_threads(args.threads)
    peak = matmul_gflops(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, "
          f"{args.input_size} px, {args.neurons} neurons")
    print(f"fp32 matmul (2048^3, torch.mm): {peak:.1f} GFLOP/s")
    return args, peak


def main() -> None:
    args, peak = start(__doc__)
    print("models: reference (stock PyTorch)" if args.reference else
          "models: accelerated; BN, pooling, 3x3 convs (>= 16 channels): "
          + ("C kernels (rcpb/accel/kernels.c)" if kernels.available() else
             "PyTorch ops (no C compiler or OpenMP, or RCPB_NATIVE=0)"))
    header = (f"{'model':<28} {'step ms':>9} {'CPU ms':>8} {'GFLOP/step':>11} {'GFLOP/s':>8} "
              f"{'% of mm':>8}")
    print(header)
    print("-" * len(header))
    for name, config in selected_configs(args):
        t, cpu = step_time(config, args.batch, args.warmup, args.repeats, args.reference)
        step_macs = 3 * forward_macs(config) - first_conv_macs(config)   # no CPB1 input grad
        gflop = 2 * step_macs * args.batch / 1e9
        print(f"{name:<28} {t * 1e3:9.1f} {cpu * 1e3:8.1f} {gflop:11.2f} {gflop / t:8.1f} "
              f"{100 * gflop / t / peak:7.0f}%", flush=True)
    print(f"load average after the run: {os.getloadavg()[0]:.2f} (other processes slow the "
          "wall-clock figures; CPU ms is this process's CPU time per step)")


if __name__ == "__main__":
    main()
