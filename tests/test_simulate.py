"""Ground-truth simulator (SPEC 2.4): valid files, determinism, ceilings, context effects."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from rcpb import metrics
from rcpb.data import simulate as sim
from rcpb.errors import RcpbError

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "ns2250_stimuli_74px.h5"


@pytest.fixture(scope="module")
def ns_images():
    images, attrs = sim.read_images(BUNDLED)
    return images, attrs


@pytest.fixture
def small_stimuli(tmp_path, ns_images):
    """An image file with the first 200 NS images and the bundled attrs."""
    images, attrs = ns_images
    path = tmp_path / "stimuli.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images[:200])
        f.attrs.update(attrs)
    return path


@pytest.mark.parametrize("circuit", sim.CIRCUITS)
def test_simulate_file_writes_a_valid_dataset(tmp_path, small_stimuli, ns_images, circuit):
    from rcpb.data.validate import load_dataset

    out = tmp_path / f"sim_{circuit}.h5"
    sim.simulate_file(small_stimuli, out, circuit, n_neurons=12, n_trials=5, seed=1)
    ds = load_dataset(out, loss="poisson")
    assert ds.images.shape == (200, 74, 74) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images, ns_images[0][:200])
    assert ds.responses.shape == (200, 5, 12)
    assert np.all(ds.responses >= 0) and np.all(ds.responses == np.round(ds.responses))
    assert ds.true_rates.shape == (200, 12) and np.all(ds.true_rates >= 0)
    assert np.all(ds.true_rates.max(axis=0) > 0)
    assert len(ds.neuron_ids) == 12 and len(set(ds.neuron_ids)) == 12
    assert ds.attrs["license"] == ns_images[1]["license"]
    assert "Tang" in ds.attrs["license"]
    assert ds.attrs["units"] == "spike counts"
    assert ds.attrs["name"] == f"sim_{circuit}" and circuit in ds.attrs["source"]
    assert ds.attrs["known_answer"] == sim.KNOWN_ANSWERS[circuit]["text"]
    if not circuit.endswith("_teacher"):
        assert ds.attrs["sim_iterations"] == 4 and ds.attrs["sim_wavelengths"] == "6,9,13.5"
    # the counts scatter around true_rates: the trial mean tracks them
    mean = ds.responses.mean(axis=1)
    assert np.all(np.abs(mean.mean(0) - ds.true_rates.mean(0)) < 0.2 * ds.true_rates.mean(0) + 0.3)


def test_same_seed_same_arrays(ns_images):
    images = ns_images[0][:150]
    a = sim.simulate(images, "recurrent", n_neurons=8, seed=5)
    b = sim.simulate(images, "recurrent", n_neurons=8, seed=5)
    c = sim.simulate(images, "recurrent", n_neurons=8, seed=6)
    np.testing.assert_array_equal(a.responses, b.responses)
    np.testing.assert_array_equal(a.true_rates, b.true_rates)
    assert a.neuron_ids == b.neuron_ids and a.attrs == b.attrs
    assert not np.array_equal(a.responses, c.responses)
    # both circuits share the neurons of a seed
    f = sim.simulate(images, "feedforward", n_neurons=8, seed=5)
    assert f.neuron_ids == a.neuron_ids


def test_ceiling_spread(ns_images):
    images = ns_images[0][:800]
    rec = sim.simulate(images, "recurrent", n_neurons=34, n_trials=8, seed=0)
    ceiling = metrics.cc_max(rec.responses)
    assert np.isfinite(ceiling).all()
    assert ceiling.min() < 0.65 and ceiling.max() > 0.85


def _bars(*bars):
    """A 74 px mean-gray image with white bars given as (row0, row1, col0, col1)."""
    im = np.full((74, 74), 128, dtype=np.uint8)
    for r0, r1, c0, c1 in bars:
        im[r0:r1, c0:c1] = 255
    return im


def test_context_beyond_the_receptive_field():
    """A horizontal bar on the RF of a horizontal complex cell (wavelength 6 px, envelope
    sigma 3 px), alone, with collinear flanks (gaps of 4 px) and with parallel flanks 9 px
    above and below: both circuits' rates change with the flanks (iso-orientation surround
    suppression, which collinear facilitation partly offsets), while the first stage alone
    hardly sees them."""
    params = sim.CircuitParams()
    geometry = sim._Geometry(params, 74, 1.0)
    neuron = sim.Neurons(row=np.array([36]), col=np.array([36]), orientation=np.array([0]),
                         wavelength=np.array([0]), simple=np.array([False]),
                         phase=np.zeros(1), target_cc=np.array([0.8]),
                         mean_count=np.array([3.0]))
    centre = (35, 38, 30, 43)
    images = np.stack([_bars(centre),
                       _bars(centre, (35, 38, 14, 27), (35, 38, 46, 59)),
                       _bars(centre, (26, 29, 30, 43), (44, 47, 30, 43))])
    for circuit in ("recurrent", "feedforward"):
        rate, drive = sim.circuit_rates(images, circuit, neuron, geometry)
        assert abs(drive[1, 0] / drive[0, 0] - 1) < 0.05
        assert abs(drive[2, 0] / drive[0, 0] - 1) < 0.05
        assert rate[2, 0] / rate[0, 0] < 0.85       # parallel flanks suppress (0.81, 0.71)
        # collinear flanks suppress less: facilitation (0.90 vs 0.81; 0.82 vs 0.71)
        assert rate[1, 0] / rate[0, 0] > rate[2, 0] / rate[0, 0] + 0.05


def test_gain_is_bounded():
    """Whatever the context, the gain stays in [1 / (1 + beta), 1 + alpha]."""
    p = sim.CircuitParams()
    g = sim._Geometry(p, 37, 2.0)
    fac = np.array([0.0, 1.0, 1e6, 0.0, 1e6])
    sup = np.array([0.0, 1.0, 0.0, 1e6, 1e6])
    gain = g._gain(fac, sup)
    np.testing.assert_allclose(gain, [1.0, 1.0, 1 + p.alpha, 1 / (1 + p.beta), 1.0], rtol=1e-5)


def test_feedforward_control_reaches_as_far_as_the_iterations():
    """One pass, every kernel length scaled by sqrt(T) = 2 for T = 4."""
    p = sim.CircuitParams()
    q = sim.one_pass(p)
    assert q.iterations == 1
    for name in ("fac_length", "fac_width", "fac_hole", "surround_sigma", "surround_hole"):
        assert getattr(q, name) == pytest.approx(2 * getattr(p, name))
    assert (q.alpha, q.beta, q.kappa) == (p.alpha, p.beta, p.kappa)


def test_recurrence_follows_the_documented_equations():
    """One iteration computed directly from the 2D kernels of the module docstring."""
    params = sim.CircuitParams(iterations=1)
    g = sim._Geometry(params, 74, 1.0)
    rng = np.random.default_rng(1)
    e = rng.random((2, 8, 37, 37)).astype(np.float32)
    rows, cols = np.array([18, 16, 19]), np.array([18, 20, 15])     # sheet positions
    orient = np.array([0, 3, 6])
    gain = g.recurrence(e, orient, rows, cols)
    step = 2.0                                                         # px per sheet sample
    yy, xx = np.meshgrid(np.arange(37) * step, np.arange(37) * step, indexing="ij")
    p = params
    for n in range(3):
        y, x = yy - rows[n] * step, xx - cols[n] * step
        th = np.pi * orient[n] / 8
        along, across = x * np.cos(th) + y * np.sin(th), -x * np.sin(th) + y * np.cos(th)
        k = (np.exp(-along ** 2 / (2 * p.fac_length ** 2) - across ** 2 / (2 * p.fac_width ** 2))
             * (1 - np.exp(-along ** 2 / (2 * p.fac_hole ** 2))))
        reach = int(np.ceil(3 * p.fac_length / step))                  # 3 sigma, in samples
        k[np.maximum(np.abs(y), np.abs(x)) > reach * step] = 0
        # the kernel sums to 1 over its full (3 sigma) support, also where the border cuts it
        off = np.arange(-reach, reach + 1) * step
        oy, ox = np.meshgrid(off, off, indexing="ij")
        oa, oc = ox * np.cos(th) + oy * np.sin(th), -ox * np.sin(th) + oy * np.cos(th)
        total = (np.exp(-oa ** 2 / (2 * p.fac_length ** 2) - oc ** 2 / (2 * p.fac_width ** 2))
                 * (1 - np.exp(-oa ** 2 / (2 * p.fac_hole ** 2)))).sum()
        fac = (e[:, orient[n]] * k).sum(axis=(1, 2)) / total
        d2 = x ** 2 + y ** 2
        ring = np.exp(-d2 / (2 * p.surround_sigma ** 2)) * (
            1 - np.exp(-d2 / (2 * p.surround_hole ** 2)))
        big = np.arange(-200, 201) * step
        by, bx = np.meshgrid(big, big, indexing="ij")
        bd2 = bx ** 2 + by ** 2
        ring_total = (np.exp(-bd2 / (2 * p.surround_sigma ** 2))
                      * (1 - np.exp(-bd2 / (2 * p.surround_hole ** 2)))).sum()
        w = (1 + p.kappa * np.cos(2 * (th - np.pi * np.arange(8) / 8))) / 8
        sup = (np.einsum("o,boij->bij", w, e) * ring).sum(axis=(1, 2)) / ring_total
        expected = (1 + p.alpha * fac / (1 + fac)) / (1 + p.beta * sup / (1 + sup))
        np.testing.assert_allclose(gain[:, n], expected, rtol=1e-4)


def test_input_size_downsamples_and_stores_at_that_size(tmp_path, small_stimuli, ns_images):
    images = ns_images[0][:3]
    half, factor = sim.resize_images(images, 37)
    assert factor == 2 and half.shape == (3, 37, 37) and half.dtype == np.float32
    assert half[1, 4, 5] == pytest.approx(images[1, 8:10, 10:12].astype(float).mean())
    cropped, factor = sim.resize_images(images, 36)                  # crop 72, then 2x
    assert factor == 2
    assert cropped[0, 0, 0] == pytest.approx(images[0, 1:3, 1:3].astype(float).mean())
    same, factor = sim.resize_images(images, None)
    assert factor == 1 and same is images
    with pytest.raises(RcpbError):
        sim.resize_images(images, 80)

    out = tmp_path / "sim37.h5"
    ds = sim.simulate_file(small_stimuli, out, "recurrent", n_neurons=6, n_trials=4,
                           input_size=37)
    assert ds.images.shape == (200, 37, 37) and ds.responses.shape == (200, 4, 6)
    assert ds.attrs["input_size"] == 37 and ds.attrs["sim_scale"] == 2.0
    with h5py.File(out) as f:
        assert f["images"].shape == (200, 37, 37)
    assert np.isfinite(ds.true_rates).all() and (ds.true_rates > 0).all()


def test_user_errors(tmp_path, ns_images):
    with pytest.raises(RcpbError, match="circuit"):
        sim.simulate(ns_images[0][:10], "lateral")
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("pictures", data=np.zeros((3, 8, 8)))
    with pytest.raises(RcpbError, match="images"):
        sim.simulate_file(bad, tmp_path / "o.h5", "recurrent")
    with pytest.raises(RcpbError, match="no such file"):
        sim.simulate_file(tmp_path / "missing.h5", tmp_path / "o.h5", "recurrent")
    with pytest.raises(RcpbError, match="constant"):
        sim.simulate(np.full((5, 20, 20), 7, dtype=np.uint8), "feedforward")
