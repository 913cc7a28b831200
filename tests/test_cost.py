"""The cost estimate of ``rcpb grid CONFIG --cost`` (rcpb.cost): multiply-add counts, the fit,
the totals of the example grid and the errors of a bad benchmark file."""

import json
import math
import sys
from pathlib import Path

import pytest

from rcpb import cost, grid
from rcpb.cli import main
from rcpb.config import load_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import train_step  # noqa: E402


# ----------------------------------------------------------------------------- multiply-adds


def test_forward_macs_of_a_small_ff_model_worked_by_hand():
    # FF, 3 blocks, 2 channels, 12 px, 3 neurons. CPB1's Conv(9) without padding: 4 x 4 output
    # pixels, each 2 channels x 81 taps = 16 * 2 * 81 = 2592. Two Conv(3) 2 -> 2 with padding 1
    # on 4 x 4 maps: 16 px * 2 out * 2 in * 9 = 576 each, 1152. AvgPool(3, stride 3, ceil) of
    # 4 px -> 2 px; the factorized FC: 2 * 2 positions * 2 channels * 3 neurons = 24.
    cfg = dict(arch="ff", blocks=3, channels=2, input_size=12, n_neurons=3)
    assert cost.forward_macs(cfg) == 2592 + 1152 + 24 == 3768
    assert cost.step_macs(cfg, batch=5) == 3 * 5 * 3768


def test_forward_macs_of_a_rectangular_input_worked_by_hand():
    # FF, 3 blocks, 2 channels, 12 x 17 px, 3 neurons: CPB1 maps 4 x 9 = 36 px, 36 * 2 * 81 =
    # 5832; two Conv(3): 36 * 2 * 2 * 9 = 1296 each, 2592; pooled grid 2 x 3 (ceil((4-3)/3)+1,
    # ceil((9-3)/3)+1): 6 positions * 2 channels * 3 neurons = 36.
    cfg = dict(arch="ff", blocks=3, channels=2, input_size=[12, 17], n_neurons=3)
    assert cost.forward_macs(cfg) == 5832 + 2592 + 36


def test_forward_macs_of_small_recurrent_and_multipath_models_worked_by_hand():
    common = dict(channels=2, input_size=12, n_neurons=3)
    # recurrent, 2 layers, T = 3, 2-avg: layer 2 has Wff once + Wlat at t = 2, 3 (3 convs),
    # layer 3 has Wff at t = 1..3 + Wlat at t = 2, 3 (5 convs): 8 x 576; the FC reads h_1..h_3
    rec = dict(common, arch="recurrent", recurrent_layers=2, iterations=3, readout="2-avg")
    assert cost.forward_macs(rec) == 2592 + 8 * 576 + 3 * 24
    assert cost.forward_macs(dict(rec, readout="no-avg")) == 2592 + 8 * 576 + 24
    # multi-path, 1 layer, T = 3, lengths {1, 3} kept: chains (end, length) (1,1), (2,1),
    # (3,1), (3,3); ff2(x1) once for all, the length-3 chain adds lat2 twice: 3 convs; every
    # iteration keeps a chain, so 2-avg reads 3 maps
    mp = dict(common, arch="multipath", recurrent_layers=1, iterations=3, readout="2-avg",
              allowed_lengths=[1, 3])
    assert cost.forward_macs(mp) == 2592 + 3 * 576 + 3 * 24
    # lengths {3} only: iterations 1 and 2 have no chain and are dropped: 1 read
    assert cost.forward_macs(dict(mp, allowed_lengths=[3])) == 2592 + 3 * 576 + 24


@pytest.mark.parametrize("cfg", [
    dict(arch="ff", blocks=5),
    dict(arch="recurrent", recurrent_layers=1, iterations=4, readout="late-avg"),
    dict(arch="recurrent", recurrent_layers=2, iterations=3, readout="no-avg"),
    dict(arch="multipath", recurrent_layers=2, iterations=3, readout="2-avg"),
    dict(arch="multipath", recurrent_layers=1, iterations=4, readout="early-avg",
         allowed_lengths=[2, 3]),
])
def test_conv3_count_equals_the_convolutions_a_forward_pass_runs(cfg):
    torch = pytest.importorskip("torch")
    from rcpb.models import build

    cfg = dict(cfg, channels=4, input_size=14, n_neurons=3, act="relu",
               first_block_order="bn_act", model_seed=0)
    model = build(cfg)
    calls = []
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and module.kernel_size == (3, 3):
            module.register_forward_hook(lambda *_: calls.append(1))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(2, 1, 14, 14))
    assert len(calls) == cost.conv3_count(cfg)
    if cfg["arch"] != "multipath":   # the benchmarks' count (checked against a recorded step)
        assert cost.forward_macs(cfg) == train_step.forward_macs(cfg)


# ----------------------------------------------------------------------------- fit


def test_fit_recovers_a_and_b_from_synthetic_rows():
    a, b = 0.004, 2.5e-11
    xs = [1e8, 3e8, 7e8, 2e9, 5e9]
    fa, fb = cost.fit_line(xs, [a + b * x for x in xs])
    assert fa == pytest.approx(a, rel=1e-9) and fb == pytest.approx(b, rel=1e-9)
    # 1 % noise moves them little
    noise = [1.01, 0.99, 1.0, 0.99, 1.01]
    fa, fb = cost.fit_line(xs, [(a + b * x) * e for x, e in zip(xs, noise)])
    assert fa == pytest.approx(a, rel=0.05) and fb == pytest.approx(b, rel=0.05)


def test_fit_never_gives_a_negative_time():
    # the free fit of these points has a < 0: a = 0, b through the origin (weights 1 / y^2)
    a, b = cost.fit_line([1.0, 2.0, 3.0], [1.0, 3.0, 5.0])
    assert a == 0.0 and b == pytest.approx((1 + 2 / 3 + 3 / 5) / (1 + 4 / 9 + 9 / 25))
    # falling times: b = 0, a = their (weighted) mean
    assert cost.fit_line([1.0, 2.0], [3.0, 1.0]) == pytest.approx((1.2, 0.0))


def bench_rows(a, b, overhead, sizes_engines, macs=(1e8, 4e8, 9e8)):
    return [{"K": k, "engine": e, "macs_per_model_step": m, "s_per_model_step": a + b * m,
             "overhead_s_per_model": overhead, "structure": f"s{m:g}"}
            for k, e in sizes_engines for m in macs]


def test_pack_size_and_engine_selection():
    rows = (bench_rows(0.01, 1e-9, 3.0, [(1, "solo")])
            + bench_rows(0.002, 5e-10, 0.5, [(4, "loop"), (16, "loop")])
            + bench_rows(0.001, 2e-10, 0.2, [(16, "stacked")]))
    bench = cost.Benchmark("f.json", "cpu", 2, rows)
    m = bench.model(1, "loop")
    assert (m.K, m.engine) == (1, "solo")
    assert (m.a, m.b, m.overhead) == pytest.approx((0.01, 1e-9, 3.0))
    assert (bench.model(3, "loop").K, bench.model(3, "loop").engine) == (4, "loop")
    assert bench.model(8, "loop").K == 4          # equally far from 4 and 16: the smaller
    assert bench.model(64, "loop").K == 16
    assert (bench.model(2, "loop").K, bench.model(2, "loop").engine) == (4, "loop")  # a pack
    m = bench.model(64, "stacked")
    assert (m.K, m.engine) == (16, "stacked")
    assert (m.a, m.b) == pytest.approx((0.001, 2e-10))
    # an engine the file did not measure: another measured one; no packs at all: solo
    assert cost.Benchmark("f.json", "cpu", 2, rows[:6]).model(16, "stacked").engine == "loop"
    assert cost.Benchmark("f.json", "cpu", 2, rows[:3]).model(16, "stacked").engine == "solo"


# ----------------------------------------------------------------------------- example grid


A, B, OVERHEAD = 0.5, 2e-9, 7.0   # s per model-step, s per multiply-add, s per model


def hand_forward_macs(cfg: dict) -> int:
    """The example's models (18 px -> 10 x 10 maps after CPB1, 8 channels, 34 neurons)."""
    cpb1 = 10 * 10 * 8 * 81                     # 64,800
    conv3 = 10 * 10 * 8 * 8 * 9                 # 57,600
    read = 4 * 4 * 8 * 34                       # pooled 10 px -> 4 px: 4,352
    if cfg["arch"] == "ff":
        return cpb1 + (cfg["blocks"] - 1) * conv3 + read
    T, L = cfg["iterations"], cfg["recurrent_layers"]
    reads = 1 if cfg["readout"] == "no-avg" else T
    if cfg["arch"] == "recurrent":
        return cpb1 + (T + (L - 1) * (2 * T - 1)) * conv3 + reads * read
    assert L == 1    # the example's multi-path models: one layer, chain (t, d) for d <= t
    kept = cfg.get("allowed_lengths") or list(range(1, T + 1))
    chains = [(t, d) for t in range(1, T + 1) for d in range(1, t + 1) if d in kept]
    if cfg["readout"] != "no-avg":
        reads = len({t for t, _ in chains})
    return cpb1 + (1 + sum(d - 1 for _, d in chains)) * conv3 + reads * read


@pytest.fixture
def synthetic_benchmark(tmp_path):
    path = tmp_path / "bench.json"
    rows = bench_rows(A, B, OVERHEAD, [(1, "solo"), (4, "loop"), (16, "loop"), (64, "loop"),
                                       (4, "stacked"), (16, "stacked"), (64, "stacked")])
    path.write_text(json.dumps({"format": cost.BENCHMARK_FORMAT, "device": "cpu",
                                "threads": 2, "rows": rows}))
    return path


def test_example_grid_cost_equals_a_hand_computation(synthetic_benchmark, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)   # the example's data paths are relative to the repository
    config = load_config(ROOT / "config.yaml")
    expanded = grid.expand(config)
    steps = config["training"]["phases"] * config["training"]["max_steps"]   # the cap: 3 x 3000
    batch = config["training"]["batch_size"]                                  # 64 < 700
    expected: dict = {}
    for name, configs in expanded.items():
        for cfg in configs:
            m = 3 * batch * hand_forward_macs(cfg)
            key = (name, cfg["family"])
            n, s = expected.get(key, (0, 0.0))
            expected[key] = (n + 1, s + OVERHEAD + steps * (A + B * m))
    total = sum(s for _, s in expected.values())

    assert main(["grid", "config.yaml", "--cost", "--benchmark", str(synthetic_benchmark)]) == 0
    out = capsys.readouterr().out
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[0] in expanded or parts[:2] == ["all", "all"]:
            table[(parts[0], parts[1])] = (int(parts[2].replace(",", "")),
                                           int(parts[4].replace(",", "")),
                                           float(parts[5].replace(",", "")))

    def printed(hours):   # as printed: 3 decimals below 1 h, 2 below 10 h, ...
        digits = 0 if hours >= 100 else 1 if hours >= 10 else 2 if hours >= 1 else 3
        return pytest.approx(hours, abs=0.5 * 10 ** -digits + 1e-12)

    for (name, family), (n, seconds) in expected.items():
        trainings, model_steps, hours = table[(name, family)]
        assert (trainings, model_steps) == (n, n * steps)
        assert hours == printed(seconds / 3600)
    trainings, model_steps, hours = table[("all", "all")]
    assert trainings == sum(n for n, _ in expected.values()) == 70
    assert hours == printed(total / 3600)
    assert "UPPER BOUND" in out and str(synthetic_benchmark) in out

    # the same totals unrounded, from the module
    shapes = {name: cost.dataset_shape(name, config["datasets"][name]) for name in expanded}
    bench = cost.load_benchmark(synthetic_benchmark)
    lines = cost.estimate(expanded, shapes, bench, pack_size=8, slots=4, engine="stacked")
    assert sum(ln.seconds for ln in lines) == pytest.approx(total, rel=1e-9)


def test_typical_fraction_only_when_the_benchmark_records_it(synthetic_benchmark, capsys,
                                                            monkeypatch):
    monkeypatch.chdir(ROOT)
    main(["grid", "config.yaml", "--cost", "--benchmark", str(synthetic_benchmark)])
    assert "of max" not in capsys.readouterr().out
    data = json.loads(synthetic_benchmark.read_text())
    data.update(typical_step_fraction=0.25, typical_step_fraction_source="a measured study")
    synthetic_benchmark.write_text(json.dumps(data))
    main(["grid", "config.yaml", "--cost", "--benchmark", str(synthetic_benchmark)])
    out = capsys.readouterr().out
    assert "at 0.25 of max" in out and "a measured study" in out


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("content,problem", [
    (None, "cannot be read"),
    ("{not json", "is not valid JSON"),
    (json.dumps({"rows": []}), "is not a pack_throughput benchmark"),
    (json.dumps({"format": cost.BENCHMARK_FORMAT, "device": "tpu", "rows": []}), '"device"'),
    (json.dumps({"format": cost.BENCHMARK_FORMAT, "device": "cpu", "rows": []}),
     "has no measured rows"),
    (json.dumps({"format": cost.BENCHMARK_FORMAT, "device": "cpu",
                 "rows": [{"K": 1, "engine": "solo", "macs_per_model_step": 1e8}]}),
     "rows[0].s_per_model_step is None"),
    (json.dumps({"format": cost.BENCHMARK_FORMAT, "device": "cpu",
                 "rows": [{"K": 0, "engine": "solo", "macs_per_model_step": 1e8,
                           "s_per_model_step": 0.1}]}), "rows[0].K is 0"),
])
def test_a_bad_benchmark_file_gives_one_clear_error(tmp_path, capsys, monkeypatch, content,
                                                    problem):
    monkeypatch.chdir(ROOT)
    path = tmp_path / "bench.json"
    if content is not None:
        path.write_text(content)
    assert main(["grid", "config.yaml", "--cost", "--benchmark", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"rcpb: error: benchmark file {path}: ") and problem in err


def test_missing_data_needs_the_input_size(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["grid", "configs/paper_ns2250.yaml", "--cost", "--benchmark",
                 str(tmp_path / "x.json")]) == 2
    assert "--input-size N --neurons N" in capsys.readouterr().err
    assert main(["grid", "config.yaml", "--benchmark", "x.json"]) == 2
    assert "go with --cost" in capsys.readouterr().err


def test_paper_grid_cost_with_a_benchmark(synthetic_benchmark, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["grid", "configs/paper_ns2250.yaml", "--cost", "--benchmark",
                 str(synthetic_benchmark), "--input-size", "37", "--neurons", "34"]) == 0
    out = capsys.readouterr().out
    assert "GPU-hours" not in out and "CPU-hours" in out
    assert "the config trains on cuda, the figures were measured on cpu" in out
    total = [line for line in out.splitlines() if line.startswith("ns2250") and " all " in line]
    assert total and " 21,024 " in total[0]
    assert math.isfinite(float(total[0].split()[-1].replace(",", "")))
