"""The benchmarks' FLOP counts: the analytic count of train_step.py against the convolutions
that conv_passes.py records from a real training step."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import conv_passes  # noqa: E402
import train_step  # noqa: E402
from rcpb.models.readout import pooled_size  # noqa: E402

BATCH = 2


def small_config(arch: str, channels: int = 4, **fields) -> dict:
    return dict(train_step.BASE, arch=arch, channels=channels, input_size=20, n_neurons=3,
                **fields)


def recorded_passes(config: dict) -> dict:
    """{(pass name, kernel size): (calls per step, FLOPs per step)} from a recorded step."""
    out = {}
    for (func, spec), count in conv_passes.record(config, BATCH).items():
        for name, pass_spec in conv_passes.split_passes(func, spec):
            _, kernel, flops = conv_passes.describe(func, pass_spec)
            calls, total = out.get((name, kernel), (0, 0))
            out[(name, kernel)] = (calls + count, total + count * flops)
    return out


@pytest.mark.parametrize("channels", [4, 16])   # 16: weight gradients from rcpb's kernel
@pytest.mark.parametrize("layers,iterations", [(1, 1), (1, 4), (2, 3)])
def test_recurrent_step_runs_the_convolutions_the_model_defines(layers, iterations, channels):
    config = small_config("recurrent", channels, recurrent_layers=layers, iterations=iterations,
                          readout="2-avg")
    # layer 2: Wff once, Wlat at t = 2..T; layer 3: Wff at every t, Wlat at t = 2..T
    conv3 = 1 + (iterations - 1) + (layers - 1) * (2 * iterations - 1)
    calls = {key: calls for key, (calls, _) in recorded_passes(config).items()}
    assert calls == {("forward", 9): 1, ("forward", 3): conv3,
                     ("input grad", 3): conv3, ("weight grad", 3): conv3,
                     ("weight grad", 9): 1}   # CPB1: no input gradient (see input_conv)


@pytest.mark.parametrize("config", [
    small_config("ff", blocks=3),
    small_config("ff", 16, blocks=3),
    small_config("recurrent", recurrent_layers=2, iterations=3, readout="2-avg"),
    small_config("recurrent", recurrent_layers=1, iterations=3, readout="no-avg"),
])
def test_recorded_conv_flops_match_the_analytic_count(config):
    recorded = sum(flops for _, flops in recorded_passes(config).values())
    side = config["input_size"] - 8
    reads = 1 if config.get("readout", "no-avg") == "no-avg" else config["iterations"]
    readout_macs = reads * pooled_size(side) ** 2 * config["channels"] * config["n_neurons"]
    analytic = 2 * BATCH * (3 * train_step.forward_macs(config)
                            - train_step.first_conv_macs(config))
    assert recorded == analytic - 2 * BATCH * 3 * readout_macs


def test_pack_throughput_runs_quickly_and_writes_a_benchmark_file(tmp_path):
    """Smoke test of benchmarks/pack_throughput.py --quick (tiny models, 2 steps, K = 1 and 2,
    both engines): it runs, prints the table and writes a file rcpb.cost reads. No timing is
    checked."""
    import json
    import subprocess

    from rcpb import cost

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "pack_throughput.py"),
                           "--quick", "--mix", "example", "--threads", "1", "--json", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for column in ("K=1 solo", "K=2 stacked", "K=2 loop"):
        assert column in proc.stdout
    assert "mix (all above)" in proc.stdout and "load average before" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    assert {(r["structure"], r["K"], r["engine"]) for r in rows} == {
        (s, k, e) for s in ("ff3", "rec-L1-T2-2avg")
        for k, e in ((1, "solo"), (2, "stacked"), (2, "loop"))}
    assert all(r["failed"] == 0 and r["s_per_model_step"] > 0 for r in rows)
    bench = cost.load_benchmark(out)
    assert bench.model(2, "stacked").engine == "stacked"
