"""Training-fraction labels of file names and of the report."""

import pytest

from analysis.labels import fraction_label, parse_fraction_label, report_fraction_label
from rcpb.errors import RcpbError


@pytest.mark.parametrize("fraction,label", [(1.0, "100"), (0.5, "50"), (0.125, "12.5"),
                                            (0.25, "25"), (1 / 3, "33.3333")])
def test_fraction_label_round_trip(fraction, label):
    assert fraction_label(fraction) == label
    assert parse_fraction_label(label) == pytest.approx(fraction, abs=1e-6)


def test_report_labels_sort_as_text_in_numeric_order():
    fractions = [1.0, 0.5, 0.125, 0.25, 0.05, 0.1]
    labels = [report_fraction_label(fraction_label(f)) for f in fractions]
    assert report_fraction_label("25") == "0.25 (25 %)"
    assert sorted(labels) == [report_fraction_label(fraction_label(f))
                              for f in sorted(fractions)]
    # the plain percent labels would not: "100" sorts before "12.5"
    assert sorted(["12.5", "100"]) == ["100", "12.5"]


def test_bad_fraction_label_names_the_value():
    with pytest.raises(RcpbError, match="'half'"):
        parse_fraction_label("half")
