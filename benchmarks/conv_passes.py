"""How much of a training step the convolutions take, and how fast they run.

Records every convolution pass of one training step of each model of ``train_step.py`` (the
forward convolutions, and in the backward pass the input and weight gradients; PyTorch's or
rcpb's kernels, see rcpb/accel/conv3x3.py), then times each
distinct pass on its own (same shapes, strides and options; median over ``--repeats`` runs) and
prints, per model:

- each kind of pass: how often the step runs it, its median time and its GFLOP/s;
- the sum over the step: the time the step's convolutions take when nothing else runs, a floor
  for the step time that only faster convolutions can lower;
- the same FLOPs at the machine's fp32 matmul rate (``torch.mm``, 2048^3), for comparison;
- the measured step time (as ``train_step.py`` measures it).

FLOPs: 2 x multiply-accumulates of the direct convolution (also for rcpb's Winograd kernels,
which do 2.25 times fewer); a forward pass, an input gradient and a weight gradient each count
the same.

Usage: python benchmarks/conv_passes.py [--threads 2] [--only "32 ch"] (the options of
train_step.py)
"""

from __future__ import annotations

import collections
import statistics
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from rcpb.accel import conv3x3  # noqa: F401  (registers the torch.ops.rcpb.conv3x3_* ops)
from train_step import selected_configs, start, step_time, training_step

_CONV = torch.ops.aten.convolution.default
_CONV_BACKWARD = torch.ops.aten.convolution_backward.default
_RCPB_3X3 = {torch.ops.rcpb.conv3x3_forward.default: "forward",
             torch.ops.rcpb.conv3x3_input_grad.default: "input grad",
             torch.ops.rcpb.conv3x3_weight_grad.default: "weight grad"}
_RECORDED = (_CONV, _CONV_BACKWARD, *_RCPB_3X3)


def _spec(value):
    """A hashable description of an argument: tensors by shape, strides and dtype."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), tuple(value.stride()), value.dtype)
    if isinstance(value, (list, tuple)):
        return tuple(_spec(v) for v in value)
    return value


def _materialise(spec, generator: torch.Generator):
    """Arguments for a replay: random tensors with the recorded shapes and strides."""
    if isinstance(spec, tuple) and spec and spec[0] == "tensor":
        _, shape, stride, dtype = spec
        return torch.empty_strided(shape, stride, dtype=dtype).normal_(generator=generator)
    if isinstance(spec, tuple):
        return [_materialise(s, generator) for s in spec]
    return spec


class _RecordConvolutions(TorchDispatchMode):
    """Counts the convolution calls that reach the kernels, by (op, argument description)."""

    def __init__(self):
        super().__init__()
        self.calls: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in _RECORDED:
            self.calls[(func, _spec(tuple(args)))] += 1
        return func(*args, **(kwargs or {}))


def split_passes(func, spec: tuple) -> list[tuple[str, tuple]]:
    """One (pass name, argument description) per pass of a call: a backward call that computes
    both gradients is split into one call per gradient, so that each is timed on its own."""
    if func is _CONV:
        return [("forward", spec)]
    if func in _RCPB_3X3:
        return [(_RCPB_3X3[func], spec)]
    mask = spec[-1]   # convolution_backward's output_mask: (input, weight, bias)
    return [(name, spec[:-1] + (tuple(i == which for i in range(3)),))
            for which, name in enumerate(("input grad", "weight grad")) if mask[which]]


def describe(func, args: tuple) -> tuple[tuple, int, int]:
    """(input shape, kernel size, FLOPs) of one pass of a recorded call.

    FLOPs = 2 x output pixels x output channels x (C_in / groups) x k x k; the weight shape
    [C_out, C_in / groups, k, k] already holds C_in / groups."""
    if func in _RCPB_3X3:   # 3x3, padding 1; (input, weight [C_out, C_in, 3, 3]) for the
        # forward pass, (output gradient, weight) for the input gradient, (input, output
        # gradient) for the weight gradient
        batch, _, height, width = args[0][1]
        channels = args[0][1][1] * args[1][1][0 if _RCPB_3X3[func] == "forward" else 1]
        return args[0][1], 3, 2 * batch * height * width * channels * 9
    inp, weight = (args[0], args[1]) if func is _CONV else (args[1], args[2])
    out_channels, in_per_group, kh, kw = weight[1]
    batch = inp[1][0]
    # output size from the input size, padding, stride and dilation of the call
    stride, padding, dilation = (args[3:6] if func is _CONV else args[4:7])
    sizes = [(inp[1][2 + i] + 2 * padding[i] - dilation[i] * (k - 1) - 1) // stride[i] + 1
             for i, k in enumerate((kh, kw))]
    flops = 2 * batch * sizes[0] * sizes[1] * out_channels * in_per_group * kh * kw
    return inp[1], kh, flops


def record(config: dict, batch: int) -> collections.Counter:
    """The convolution calls of one training step (after one warm-up step)."""
    step = training_step(config, batch)
    step()
    with _RecordConvolutions() as recorder:
        step()
    return recorder.calls


def time_call(func, spec: tuple, repeats: int) -> float:
    """Median wall time of one call (seconds), on random inputs of the recorded shapes."""
    args = _materialise(spec, torch.Generator().manual_seed(0))
    func(*args)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    args, peak = start(__doc__)
    for model_name, config in selected_configs(args):
        print(f"\n{model_name}")
        print(f"  {'pass':<12} {'input':<20} {'kernel':<8} {'count':>5} {'ms each':>8} "
              f"{'GFLOP/s':>8} {'ms/step':>8}")
        total_s = total_flops = 0.0
        for (func, spec), count in record(config, args.batch).items():
            for name, pass_spec in split_passes(func, spec):
                seconds = time_call(func, pass_spec, args.repeats)
                shape, kernel, flops = describe(func, pass_spec)
                print(f"  {name:<12} {'x'.join(map(str, shape)):<20} "
                      f"{f'{kernel}x{kernel}':<8} {count:>5} {seconds * 1e3:8.1f} "
                      f"{flops / seconds / 1e9:8.1f} {count * seconds * 1e3:8.0f}")
                total_s += count * seconds
                total_flops += count * flops
        step, _ = step_time(config, args.batch, args.warmup, args.repeats)
        print(f"  convolutions alone: {total_s * 1e3:.0f} ms per step "
              f"({total_flops / total_s / 1e9:.1f} GFLOP/s); the same "
              f"{total_flops / 1e9:.1f} GFLOP at the matmul rate: "
              f"{total_flops / peak / 1e6:.0f} ms")
        print(f"  measured step: {step * 1e3:.0f} ms; convolutions alone are "
              f"{100 * total_s / step:.0f} % of it", flush=True)


if __name__ == "__main__":
    main()
