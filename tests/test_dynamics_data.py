"""Time-binned responses [stimuli, trials, neurons, time_bins]: format, validation, import and
the simulator's dynamics (docs/data.md, docs/ground_truth.md "Dynamics")."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from rcpb.cli import main
from rcpb.data import simulate as sim
from rcpb.data.format import Dataset, write_dataset
from rcpb.data.importers import import_dataset
from rcpb.data.validate import (format_summary, load_dataset, load_trial_means,
                                summarize_dataset, validate)
from rcpb.errors import RcpbError

N, H, W, T, K, B = 12, 5, 7, 3, 4, 25  # stimuli, rows, columns, trials, neurons, time bins
BUNDLED = Path(__file__).resolve().parents[1] / "data" / "ns2250_stimuli_74px.h5"
TIME = {"bin_ms": 10.0, "stim_on_bin": 0, "stim_off_bin": 10}


@pytest.fixture
def arrays():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(N, H, W), dtype=np.uint8)
    responses = rng.poisson(1.0, size=(N, T, K, B)).astype(np.float64)   # stnb
    responses[1, 2] = np.nan                     # a missing trial (every bin)
    return images, responses


def binned(arrays, **attrs):
    images, responses = arrays
    return Dataset(images=images, responses=responses, attrs={**TIME, **attrs})


def test_dynamics_dataset_round_trips_through_import_and_validate(tmp_path, arrays, capsys):
    images, responses = arrays
    src = tmp_path / "rec.npz"
    np.savez(src, imgs=images, resp=responses)
    out = tmp_path / "rec.h5"
    assert main(["data", "import", str(src), "--out", str(out), "--images", "imgs",
                 "--responses", "resp", "--responses-axes", "stnb", "--bin-ms", "10",
                 "--stim-bins", "0", "10"]) == 0
    assert "time bins: 25 x 10 ms (image on bins 0-9)" in capsys.readouterr().out
    ds = load_dataset(out)
    assert ds.responses.shape == (N, T, K, B) and ds.responses.dtype == np.float32
    np.testing.assert_array_equal(ds.responses, responses.astype(np.float32))
    np.testing.assert_array_equal(ds.images, images)
    assert ds.n_bins == B and ds.n_neurons == K
    assert (ds.attrs["bin_ms"], ds.attrs["stim_on_bin"], ds.attrs["stim_off_bin"]) == (10, 0, 10)
    with h5py.File(out, "r") as f:
        assert f["responses"].shape == (N, T, K, B)
        assert float(f.attrs["bin_ms"]) == 10.0 and int(f.attrs["stim_off_bin"]) == 10

    assert main(["data", "validate", str(out)]) == 0
    text = capsys.readouterr().out
    assert "valid dataset" in text
    assert "time bins: 25 x 10 ms (image on bins 0-9)" in text
    assert "summed over the time bins" in text
    assert "attr bin_ms" not in text             # shown on the time-bins line
    # counted on the responses summed over the bins: stimulus 1 has 2 valid trials
    assert "2-3 valid per stimulus" in text
    assert main(["data", "summary", "--json", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["time_bins"] == {"n": B, "bin_ms": 10.0, "stim_on_bin": 0, "stim_off_bin": 10}
    assert summary["n_repeated"] == N and summary["trials_min"] == 2


def test_other_axis_orders_and_the_defaults(tmp_path, arrays):
    images, responses = arrays
    src = tmp_path / "rec.npz"
    np.savez(src, imgs=images, nbts=responses.transpose(2, 3, 1, 0), stnb=responses,
             snb=responses[:, 0])
    for name, axes in (("nbts", "nbts"), ("stnb", None)):       # 4-D: default stnb
        out = tmp_path / f"{name}.h5"
        import_dataset(src, out, images="imgs", responses=name, responses_axes=axes,
                       bin_ms=10, stim_bins=(0, 10))
        np.testing.assert_array_equal(load_dataset(out).responses,
                                      responses.astype(np.float32))
    out = tmp_path / "snb.h5"                                      # single trial: t added
    import_dataset(src, out, images="imgs", responses="snb", responses_axes="snb",
                   bin_ms=5, stim_bins=(2, 25))
    ds = load_dataset(out)
    assert ds.responses.shape == (N, 1, K, B) and ds.attrs["stim_on_bin"] == 2


def test_import_errors_name_the_options(tmp_path, arrays):
    images, responses = arrays
    src = tmp_path / "rec.npz"
    np.savez(src, imgs=images, resp=responses, flat=responses[..., 0])
    out = tmp_path / "x.h5"

    def run(*extra):
        return main(["data", "import", str(src), "--out", str(out), "--images", "imgs",
                     *extra])

    with pytest.raises(RcpbError, match=r"--bin-ms MS and --stim-bins ON OFF"):
        import_dataset(src, out, images="imgs", responses="resp", responses_axes="stnb")
    with pytest.raises(RcpbError, match=r"--stim-bins ON OFF"):
        import_dataset(src, out, images="imgs", responses="resp", responses_axes="stnb",
                       bin_ms=10)
    with pytest.raises(RcpbError, match=r"--bin-ms and --stim-bins .*no time axis 'b'"):
        import_dataset(src, out, images="imgs", responses="flat", responses_axes="stn",
                       bin_ms=10, stim_bins=(0, 10))
    with pytest.raises(RcpbError, match="stim_off_bin.*stim_on_bin"):
        import_dataset(src, out, images="imgs", responses="resp", responses_axes="stnb",
                       bin_ms=10, stim_bins=(5, 5))
    with pytest.raises(RcpbError, match="'stim_off_bin' is 26, out of range"):
        import_dataset(src, out, images="imgs", responses="resp", responses_axes="stnb",
                       bin_ms=10, stim_bins=(0, 26))
    with pytest.raises(RcpbError, match="'bin_ms' is 0"):
        import_dataset(src, out, images="imgs", responses="resp", responses_axes="stnb",
                       bin_ms=0, stim_bins=(0, 10))
    assert not out.exists()
    # the command line: exit 2 with the message
    assert run("--responses", "resp", "--responses-axes", "stnb") == 2
    assert run("--responses", "flat", "--bin-ms", "10") == 2
    assert not out.exists()
    # NWB sources refuse the array options
    assert main(["data", "import", str(tmp_path / "s.nwb"), "--out", str(out),
                 "--bin-ms", "10"]) == 2


def test_validation_errors_name_the_field(arrays):
    images, responses = arrays
    ok = validate(binned(arrays))
    assert ok.n_bins == B and ok.responses.shape == (N, T, K, B)
    with pytest.raises(RcpbError, match=r"'bin_ms', 'stim_on_bin', 'stim_off_bin' are missing"):
        validate(Dataset(images=images, responses=responses))
    with pytest.raises(RcpbError, match=r"attr\(s\) 'bin_ms' are missing"):
        validate(Dataset(images=images, responses=responses,
                         attrs={"stim_on_bin": 0, "stim_off_bin": 10}))
    for attrs, pattern in (({"bin_ms": -1.0}, "'bin_ms' is -1"),
                           ({"bin_ms": "ten"}, "'bin_ms' is 'ten'"),
                           ({"stim_on_bin": 25}, "'stim_on_bin' is 25, out of range"),
                           ({"stim_on_bin": -1}, "'stim_on_bin' is -1, out of range"),
                           ({"stim_on_bin": 1.5}, "'stim_on_bin' is 1.5"),
                           ({"stim_on_bin": 10}, r"'stim_off_bin' \(10\) <= 'stim_on_bin'"),
                           ({"stim_off_bin": 30}, "'stim_off_bin' is 30, out of range")):
        with pytest.raises(RcpbError, match=pattern):
            validate(binned(arrays, **attrs))
    assert validate(binned(arrays, stim_off_bin=25)).attrs["stim_off_bin"] == 25
    # true_rates must carry the bins too
    rates = np.ones((N, K, B), dtype=np.float32)
    assert validate(Dataset(images=images, responses=responses, true_rates=rates,
                            attrs=TIME)).true_rates.shape == (N, K, B)
    with pytest.raises(RcpbError, match=r"'true_rates' .* 3-D \[stimuli, neurons, time_bins\]"):
        validate(Dataset(images=images, responses=responses, true_rates=rates[..., 0],
                         attrs=TIME))
    with pytest.raises(RcpbError, match="'true_rates' has 24 time bins but 'responses' has 25"):
        validate(Dataset(images=images, responses=responses, true_rates=rates[..., 1:],
                         attrs=TIME))
    # per-bin checks: inf, a neuron/bin without a valid trial, Poisson negatives
    bad = responses.copy()
    bad[3, 0, 1, 7] = np.inf
    with pytest.raises(RcpbError, match=r"'responses' contains inf \(stimuli 3\)"):
        validate(binned((images, bad)))
    bad = responses.copy()
    bad[4, :, 2, 5] = np.nan
    with pytest.raises(RcpbError, match=r"no valid .* stimuli 4 .*neurons 2\).*time bin"):
        validate(binned((images, bad)))
    bad = responses.copy()
    bad[6, 1, 0, 3] = -1
    with pytest.raises(RcpbError, match=r"negative values \(stimuli 6"):
        validate(binned((images, bad)), loss="poisson")
    with pytest.raises(RcpbError, match=r"3-D .* \(or 4-D"):
        validate(Dataset(images=images, responses=responses[..., None], attrs=TIME))


def test_load_dataset_returns_the_4d_array_unchanged(tmp_path, arrays):
    path = tmp_path / "d.h5"
    write_dataset(path, binned(arrays))
    ds = load_dataset(path)
    np.testing.assert_array_equal(ds.responses, arrays[1].astype(np.float32))
    text = format_summary(summarize_dataset(ds), path)
    assert "time bins: 25 x 10 ms (image on bins 0-9)" in text
    # training's block reader takes 3-D files only: a clear error, not a wrong array
    with pytest.raises(RcpbError, match="time-binned"):
        load_trial_means(path)


def test_3d_summary_has_no_time_bins(tmp_path, arrays):
    images, responses = arrays
    ds = validate(Dataset(images=images, responses=responses[..., 0]))
    assert ds.n_bins is None
    summary = summarize_dataset(ds)
    assert "time_bins" not in summary
    assert "time bins" not in format_summary(summary)


# ----------------------------------------------------------------------------- simulator

DYN = {"bins": 16, "on_bins": 6, "latency": 2, "bin_ms": 10}


@pytest.fixture(scope="module")
def images():
    return sim.read_images(BUNDLED)[0][:80]


@pytest.fixture(scope="module")
def simulated(images):
    return {c: sim.simulate(images, c, n_neurons=6, n_trials=4, seed=2, dynamics=DYN)
            for c in sim.CIRCUITS}


@pytest.mark.parametrize("circuit", sim.CIRCUITS)
def test_simulated_dynamics_are_a_valid_binned_dataset(simulated, circuit):
    ds = simulated[circuit]
    assert ds.responses.shape == (80, 4, 6, 16) and ds.true_rates.shape == (80, 6, 16)
    assert ds.attrs["bin_ms"] == 10 and ds.attrs["stim_on_bin"] == 0
    assert ds.attrs["stim_off_bin"] == 6 and ds.attrs["sim_latency_bins"] == 2
    assert ds.attrs["known_answer"] == sim.KNOWN_ANSWERS[circuit]["text"]
    out = validate(ds, loss="poisson")
    assert out.n_bins == 16
    assert np.all(ds.responses == np.round(ds.responses))
    # bins before the latency: the baseline only, the same for every stimulus
    before = ds.true_rates[:, :, :2]
    assert np.all(before == before[:1, :, :1])
    if circuit.endswith("_teacher"):
        assert np.all(before == 0)
    else:
        assert np.all(before > 0)


def test_feedforward_circuit_is_constant_while_the_image_is_on(simulated):
    for circuit in ("feedforward", "feedforward_teacher"):
        tr = simulated[circuit].true_rates
        on = tr[:, :, 2:8]                                     # bins latency .. latency + on - 1
        assert np.all(on == on[:, :, :1])                      # exact
        assert np.all(tr[:, :, 8:] == tr[:1, :, 8:9])          # gray: one rate, every stimulus
    ff = simulated["feedforward"].true_rates
    np.testing.assert_array_equal(ff[:, :, 8:], ff[:, :, :1][:, :, [0] * 8])   # baseline


def test_recurrent_truths_vary_in_time(simulated):
    for circuit in ("recurrent", "recurrent_teacher"):
        tr = simulated[circuit].true_rates.astype(np.float64)
        assert tr[:, :, 2:8].var(axis=2).max() > 0
    # the teacher's state keeps evolving after the image goes off
    teacher = simulated["recurrent_teacher"].true_rates.astype(np.float64)
    assert teacher[:, :, 8:].var(axis=2).max() > 0
    # the circuit: gray has no contrast, the rate drops to the baseline
    circuit = simulated["recurrent"].true_rates
    assert np.all(circuit[:, :, 8:] == circuit[:, :, :1])


def test_iteration_t_of_the_image_is_the_static_truth(images, simulated):
    """Iteration T = 4 with the image on (bin latency + 3) is the static file's rate (up to
    the per-neuron gain, which is solved on the summed rates)."""
    for circuit in sim.CIRCUITS:
        static = sim.simulate(images, circuit, n_neurons=6, n_trials=4, seed=2)
        dyn = simulated[circuit]
        assert dyn.neuron_ids == static.neuron_ids
        assert dyn.attrs.get("recurrence_corr") == static.attrs.get("recurrence_corr")
        a = dyn.true_rates[:, :, 5].astype(np.float64)
        b = static.true_rates.astype(np.float64)
        a, b = a - a.mean(0), b - b.mean(0)
        corr = (a * b).sum(0) / np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))
        assert np.all(corr > 0.99999), (circuit, corr)


def test_gain_is_solved_on_the_summed_rates():
    """Summed over the bins the counts have the static file's noise model: g and b solved on
    R = sum_k rate_k, the baseline spread evenly over the bins."""
    rng = np.random.default_rng(0)
    rates = rng.gamma(2.0, size=(300, 5, 7))
    cc, mu = np.full(5, 0.8), np.full(5, 4.0)
    counts, lam = sim.poisson_trials(rates, cc, mu, 6, np.random.default_rng(1))
    assert counts.shape == (300, 6, 5, 7) and lam.shape == (300, 5, 7)
    _, lam_static = sim.poisson_trials(rates.sum(axis=2), cc, mu, 6, np.random.default_rng(1))
    np.testing.assert_allclose(lam.sum(axis=2), lam_static, rtol=1e-12)


def test_dynamics_options_are_checked(images):
    assert sim.check_dynamics(None) is None
    assert sim.check_dynamics({"bins": 25}) == {"bins": 25, "on_bins": 10, "latency": 2,
                                                "bin_ms": 10.0}
    for bad, pattern in (({"bins": 2, "latency": 2}, "latency < bins"),
                         ({"bins": 5, "on_bins": 6}, "on_bins = 6"),
                         ({"bins": 5, "on_bins": 0}, "on_bins = 0"),
                         ({"bins": 5, "on_bins": 3, "bin_ms": 0}, "bin_ms"),
                         ({"bins": 2.5}, "whole number"),
                         ({"frames": 3}, "unknown key")):
        with pytest.raises(RcpbError, match=pattern):
            sim.simulate(images[:10], "feedforward", n_neurons=2, dynamics=bad)


def test_simulate_cli_time_bins(tmp_path, capsys):
    stimuli = tmp_path / "stimuli.h5"
    with h5py.File(stimuli, "w") as f:
        f.create_dataset("images", data=sim.read_images(BUNDLED)[0][:40])
    out = tmp_path / "dyn.h5"
    assert main(["data", "simulate", "--circuit", "feedforward", "--images", str(stimuli),
                 "--neurons", "3", "--trials", "2", "--out", str(out), "--time-bins", "12",
                 "--on-bins", "4", "--latency", "1", "--bin-ms", "20"]) == 0
    assert "time bins: 12 x 20 ms (image on bins 0-3)" in capsys.readouterr().out
    ds = load_dataset(out, loss="poisson")
    assert ds.responses.shape == (40, 2, 3, 12) and ds.attrs["sim_latency_bins"] == 1
    # --on-bins without --time-bins: an error naming the option
    assert main(["data", "simulate", "--circuit", "feedforward", "--images", str(stimuli),
                 "--out", str(tmp_path / "x.h5"), "--on-bins", "4"]) == 2
    assert "--on-bins" in capsys.readouterr().err


def test_workflow_passes_the_config_dynamics():
    """rules/data.smk turns simulate.dynamics into the simulate command's options."""
    assert sim.dynamics_args(None) == ""
    assert sim.dynamics_args({"bins": 12, "latency": 1}) == (
        "--time-bins 12 --on-bins 10 --latency 1 --bin-ms 10")
    import yaml

    from rcpb.config import validate_config

    config = yaml.safe_load((BUNDLED.parents[1] / "config.yaml").read_text())
    sim_cfg = next(iter(config["datasets"].values()))["simulate"]
    sim_cfg["dynamics"] = {"bins": 12}
    validate_config(config)
    assert sim_cfg["dynamics"] == {"bins": 12, "on_bins": 10, "latency": 2, "bin_ms": 10}
    sim_cfg["dynamics"] = {"bins": 0}
    with pytest.raises(RcpbError, match="dynamics.bins"):
        validate_config(config)
