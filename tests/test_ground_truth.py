"""The built-in ground truths are learnable and the teachers are rcpb models
(docs/ground_truth.md): at the example's settings (NS 2250, 34 neurons, 8 trials, the paper's
split sizes) the truth scores >= 0.95 cc_norm2 on every split, rates have moderate tails, and a
teacher stored in its dataset file rebuilds with rcpb.models.build and reproduces the truth."""

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import kurtosis

from rcpb.baselines import score_predictors
from rcpb.data import simulate as sim
from rcpb.data.format import read_raw
from rcpb.data.preprocess import preprocess_images
from rcpb.data.teachers import TEACHERS, load_teacher
from rcpb.models import build, count_conv_parameters, count_parameters

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "ns2250_stimuli_74px.h5"
PREPROCESS = {"crop": 36, "downsample": 2, "split_sizes": [1400, 350, 500]}
TRUTH_MIN = 0.95          # cc_norm2 of the truth on every split
KURTOSIS_MAX = 10.0       # median over neurons of the rates' excess kurtosis


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    out = tmp_path_factory.mktemp("truths")
    paths = {}
    for circuit in sim.CIRCUITS:
        paths[circuit] = out / f"{circuit}.h5"
        sim.simulate_file(BUNDLED, paths[circuit], circuit, n_neurons=34, n_trials=8, seed=0,
                          teacher_input=(PREPROCESS["crop"], PREPROCESS["downsample"]))
    return paths


@pytest.mark.parametrize("circuit", sim.CIRCUITS)
def test_truth_scores_near_one_on_every_split(files, circuit):
    rows = score_predictors(files[circuit], circuit, PREPROCESS, [0, 1],
                            splits=("train", "val", "test"))
    truth = [r for r in rows if r["predictor"] == "truth"]
    assert len(truth) == 2
    for r in truth:
        for split in ("train", "val", "test"):
            assert r[f"{split}_cc_norm2"] >= TRUTH_MIN, (circuit, r)


@pytest.mark.parametrize("circuit", sim.CIRCUITS)
def test_rates_have_moderate_tails(files, circuit):
    rates = read_raw(files[circuit]).true_rates
    assert np.median(kurtosis(rates, axis=0)) <= KURTOSIS_MAX


def test_circuits_store_the_drive_only_predictor(files):
    for circuit in ("recurrent", "feedforward"):
        ds = read_raw(files[circuit])
        assert set(ds.baselines) == {"drive"}
        assert ds.baselines["drive"].shape == ds.true_rates.shape
    assert read_raw(files["recurrent_teacher"]).baselines == {}


@pytest.mark.parametrize("circuit", sorted(TEACHERS))
def test_teacher_is_an_rcpb_model_that_makes_the_truth(files, circuit):
    teacher = load_teacher(files[circuit])
    config = teacher.teacher_config
    assert type(teacher) is type(build(config))
    for key, value in TEACHERS[circuit].items():
        assert config[key] == value
    ds = read_raw(files[circuit])
    x = torch.as_tensor(preprocess_images(ds.images, PREPROCESS["crop"], PREPROCESS["downsample"]))
    with torch.no_grad():
        rates = teacher(x)[-1].double().numpy()
    # true_rates = g * the teacher's output, per neuron (no baseline): the output of the
    # teacher with its readout scaled by g > 0, itself an rcpb model
    g = ds.true_rates.max(axis=0) / rates.max(axis=0)
    assert np.all(g > 0)
    np.testing.assert_allclose(ds.true_rates, g * rates, rtol=1e-4, atol=1e-6 * g.max())
    assert np.all(ds.true_rates[rates == 0] == 0)


def test_teachers_have_matched_parameter_counts_and_real_recurrence(files):
    rec, ff = (load_teacher(files[c]) for c in ("recurrent_teacher", "feedforward_teacher"))
    # the same convolutions; BN after CPB1: T per-iteration BNs of 2 C parameters vs 2
    assert count_conv_parameters(rec) == count_conv_parameters(ff)
    assert count_parameters(rec) - count_parameters(ff) == 2 * 8 * (4 - 2)
    # the recurrent teacher's last state is not its first: recurrence shapes the truth
    ds = read_raw(files["recurrent_teacher"])
    x = torch.as_tensor(preprocess_images(ds.images, PREPROCESS["crop"], PREPROCESS["downsample"]))
    with torch.no_grad():
        z = [rec.readout.linear([h])[-1].numpy() for h in rec.iteration_outputs(x)]
    first_vs_last = np.mean([np.corrcoef(z[0][:, n], z[-1][:, n])[0, 1]
                             for n in range(ds.n_neurons)])
    assert first_vs_last < 0.9
