"""NWB import: a small session written with pynwb, imported, compared with hand-made arrays."""

import json
import sys
from datetime import datetime, timezone

import numpy as np
import pytest

pytest.importorskip("pynwb")

from rcpb.cli import main  # noqa: E402
from rcpb.data.nwb import import_nwb, require_pynwb  # noqa: E402
from rcpb.data.validate import load_dataset  # noqa: E402
from rcpb.errors import RcpbError  # noqa: E402

H, W = 12, 20                     # rectangular template images
RATE = 8.0                        # Hz: sample i at i / 8 s (binary-exact times)
WINDOW = (0.0, 0.375)             # 3 samples after each onset
ROI_IDS, UNIT_IDS = (10, 11, 12), (5, 7)
# image shown at presentation k (onset 1 + 0.5 k s): images 0..5 shown 3, 4, 5, 3, 4, 5 times
SEQUENCE = [2, 0, 5, 1, 4, 2, 3, 5, 1, 0, 2, 4, 5, 1, 3, 2, 5, 4, 0, 1, 2, 5, 3, 4]
ONSETS = 1.0 + 0.5 * np.arange(len(SEQUENCE))
N_SAMPLES = 120


def template_images():
    return np.random.default_rng(3).integers(0, 256, size=(6, H, W), dtype=np.uint8)


def roi_trace():
    """DfOverF data [time, rois]: sample i of ROI r is i * (r + 1)."""
    return np.arange(N_SAMPLES, dtype=np.float32)[:, None] * np.array([1, 2, 3], np.float32)


def spike_trains():
    """Unit 5: image + 1 spikes at onset + 0.01 j; unit 7: spikes at onset + 0.2, + 0.375
    (the window's end: not counted) and + 0.45 (after the window)."""
    u5 = [t + 0.01 * j for t, img in zip(ONSETS, SEQUENCE) for j in range(img + 1)]
    u7 = [t + d for t in ONSETS for d in (0.2, 0.375, 0.45)]
    return [np.array(u5), np.array(u7)]


def expected(per_presentation):
    """Group values [presentations, neurons] by image in time order, NaN-padded to 5 trials."""
    out = np.full((6, 5, per_presentation.shape[1]), np.nan, dtype=np.float32)
    seen = [0] * 6
    for k, img in enumerate(SEQUENCE):
        out[img, seen[img]] = per_presentation[k]
        seen[img] += 1
    return out


def write_session(path):
    """A session: Images templates, an IndexSeries and an intervals table of the same
    presentations (the table with two blanks, frame -1), DfOverF and Fluorescence series,
    and a units table."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.base import ImageReferences, Images
    from pynwb.epoch import TimeIntervals
    from pynwb.image import GrayscaleImage, IndexSeries
    from pynwb.ophys import DfOverF, Fluorescence, ImageSegmentation, OpticalChannel

    nwb = NWBFile(session_description="test", identifier="rcpb-test",
                  session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    imgs = [GrayscaleImage(name=f"img{i}", data=a) for i, a in enumerate(template_images())]
    templates = Images(name="scenes", images=imgs,
                       order_of_images=ImageReferences(name="order_of_images", data=imgs))
    nwb.add_stimulus_template(templates)
    nwb.add_stimulus(IndexSeries(name="presentations", data=np.array(SEQUENCE, np.uint32),
                                 indexed_images=templates, unit="N/A", timestamps=ONSETS))
    table = TimeIntervals(name="scene_table")
    table.add_column("frame", "template index, -1 blank")
    rows = [(t, img) for t, img in zip(ONSETS, SEQUENCE)] + [(0.25, -1), (20.0, -1)]
    for t, img in sorted(rows):
        table.add_row(start_time=t, stop_time=t + 0.25, frame=img)
    nwb.add_time_intervals(table)

    device = nwb.create_device("scope")
    plane = nwb.create_imaging_plane(
        name="plane0", description="V1", device=device, excitation_lambda=920.0,
        indicator="GCaMP6f", location="V1", imaging_rate=RATE,
        optical_channel=OpticalChannel(name="green", description="g", emission_lambda=510.0))
    ophys = nwb.create_processing_module("ophys", "calcium imaging")
    segmentation = ImageSegmentation()
    ophys.add(segmentation)
    rois = segmentation.create_plane_segmentation(name="cells", description="ROIs",
                                                  imaging_plane=plane)
    for roi in ROI_IDS:
        rois.add_roi(image_mask=np.ones((4, 4)), id=roi)
    region = rois.create_roi_table_region(region=[0, 1, 2], description="all ROIs")
    for container, data in ((DfOverF(), roi_trace()), (Fluorescence(), roi_trace() + 100)):
        ophys.add(container)
        container.create_roi_response_series(name="dff", data=data, rois=region, unit="1",
                                             rate=RATE, starting_time=0.0)
    for unit, spikes in zip(UNIT_IDS, spike_trains()):
        nwb.add_unit(spike_times=spikes, id=unit)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    path = tmp_path_factory.mktemp("nwb") / "session.nwb"
    write_session(path)
    return path


ROI = dict(presentations="stimulus/presentations", responses_from="roi",
           roi_series="DfOverF/dff", window=WINDOW)


def test_roi_round_trip(session, tmp_path):
    out = tmp_path / "roi.h5"
    import_nwb(session, out, name="s1", **ROI)
    ds = load_dataset(out)
    np.testing.assert_array_equal(ds.images, template_images())
    assert ds.images.dtype == np.uint8 and ds.images.shape == (6, H, W)
    # onset k is sample 8 + 4 k; the window holds samples 8 + 4k .. 10 + 4k, mean 9 + 4k
    per_presentation = (9 + 4 * np.arange(len(SEQUENCE)))[:, None] * np.array([1, 2, 3])
    np.testing.assert_array_equal(ds.responses, expected(per_presentation))
    assert ds.neuron_ids == ["10", "11", "12"] and ds.attrs["name"] == "s1"
    assert json.loads(ds.attrs["stimulus_ids"]) == [f"img{i}" for i in range(6)]
    assert "ophys/DfOverF/dff" in ds.attrs["source"]


def test_units_spike_counts_from_an_interval_table(session, tmp_path):
    out = tmp_path / "units.h5"
    import_nwb(session, out, presentations="scene_table", responses_from="units", window=WINDOW)
    ds = load_dataset(out)
    np.testing.assert_array_equal(ds.images, template_images())
    counts = np.stack([np.array(SEQUENCE) + 1, np.ones(len(SEQUENCE))], axis=1)
    np.testing.assert_array_equal(ds.responses, expected(counts))   # blanks skipped
    assert ds.neuron_ids == ["5", "7"]
    assert "2 blank skipped" in ds.attrs["source"]


def test_cli_import_nwb(session, tmp_path, capsys):
    out = tmp_path / "cli.h5"
    args = ["data", "import", str(session), "--out", str(out), "--presentations",
            "presentations", "--roi-series", "ophys/DfOverF/dff", "--window", "0", "0.375"]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    assert load_dataset(out).responses.shape == (6, 5, 3)
    assert main(args + ["--images", "stim"]) == 2   # an .npz/.mat option
    assert "--images" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (dict(responses_from=None, roi_series=None), "--responses-from roi or --responses-from units"),
    (dict(roi_series=None), "several RoiResponseSeries: ophys/DfOverF/dff, ophys/Fluorescence/dff"),
    (dict(roi_series="dff"), "matches several"),
    (dict(presentations=None), "stimulus/presentations"),
    (dict(window=(0.0, 100.0)), "outside the recording"),
    (dict(window=(0.2, 0.1)), "START < STOP"),
])
def test_errors_name_the_candidates(session, tmp_path, change, message):
    out = tmp_path / "bad.h5"
    with pytest.raises(RcpbError, match=message.replace("(", r"\(").replace("?", r"\?")) as err:
        import_nwb(session, out, **{**ROI, **change})
    assert not out.exists()
    assert "session.nwb" in str(err.value) or "--window" in str(err.value)


def test_ambiguous_presentations_list_both(session, tmp_path):
    with pytest.raises(RcpbError) as err:
        import_nwb(session, tmp_path / "x.h5", **{**ROI, "presentations": None})
    assert "intervals/scene_table" in str(err.value) and "--presentations" in str(err.value)


def test_missing_pynwb_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(RcpbError, match=r"pip install -e '\.\[nwb\]'"):
        require_pynwb()
