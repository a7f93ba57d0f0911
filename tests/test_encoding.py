"""Bin encodings: bins from the labels, exact arithmetic of both kinds, JSON round trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from missile_classifier.scoring.encoding import (
    ENCODING_KINDS,
    PIECEWISE_LINEAR,
    THERMOMETER,
    BinEncoding,
)
from missile_classifier.scoring.windows import Scaler
from missile_classifier.training.binning import fit_bin_encoding

NAMES = ("a", "b", "c")
EDGES = (np.array([0.0, 1.0, 3.0]), np.array([-1.0, 1.0]))
LINEAR = BinEncoding((0, 2), EDGES, PIECEWISE_LINEAR)
STEPS = BinEncoding((0, 1), (np.array([0.0, 1.0, 3.0, 7.0]), np.array([-1.0, 0.0, 1.0])))


@given(st.floats(-10, 10, allow_nan=False))
def test_piecewise_linear_bins_fill_up_in_order_and_add_back_to_the_value(x: float) -> None:
    row = np.array([[x, 0.0, 0.0]])
    encoded = LINEAR.transform(row)[0]
    assert encoded.shape == (3,) and np.all((encoded >= 0) & (encoded <= 1))
    first = encoded[:2]
    # A bin starts filling only once the one before it is full.
    assert not (first[1] > 0 and first[0] < 1)
    # Inside the edges, the bins' widths weighted by their fill give back the value.
    inside = np.clip(x, 0.0, 3.0)
    assert 0.0 + first[0] * 1.0 + first[1] * 2.0 == pytest.approx(inside, abs=1e-5)


@given(st.floats(-10, 10, allow_nan=False))
def test_thermometer_counts_the_inner_edges_at_or_below_the_value(x: float) -> None:
    encoded = STEPS.transform(np.array([[x, x, 0.0]]))[0]
    assert STEPS.width == 3 and encoded.shape == (3,) and encoded.dtype == np.float32
    assert set(encoded.tolist()) <= {0.0, 1.0}
    # Ones first, then zeros: a thermometer, whose reading is how many edges x has passed.
    assert np.all(np.diff(encoded[:2]) <= 0)
    assert encoded[:2].sum() == (x >= 1.0) + (x >= 3.0) and encoded[2] == (x >= 0.0)


def test_thermometer_steps_exactly_at_the_edge() -> None:
    just_below, at = np.nextafter(1.0, 0.0), 1.0
    out = STEPS.transform(np.array([[just_below, -5.0, 0.0], [at, -5.0, 0.0]]))
    np.testing.assert_array_equal(out, [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown encoding kind 'sigmoid'"):
        BinEncoding((0,), (np.array([0.0, 1.0]),), "sigmoid")
    with pytest.raises(ValueError, match="unknown encoding kind"):
        fit_bin_encoding(np.zeros((4, 3)), np.zeros(4), NAMES, ("a",), kind="sigmoid")


@pytest.mark.parametrize("kind", [THERMOMETER, PIECEWISE_LINEAR])
def test_tree_bins_put_an_edge_where_the_label_changes(kind: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 500_000, size=(20_000, 3))
    y = (x[:, 1] < 100_000).astype(int)
    encoding = fit_bin_encoding(x, y, NAMES, ("b", "a"), max_bins=4, kind=kind)
    assert encoding.columns[0] == 1 and encoding.kind == kind
    edges = encoding.edges[0]
    assert np.min(np.abs(edges - 100_000)) < 100  # within the gap between neighbouring samples
    assert len(edges) <= 5 and edges[0] == x[:, 1].min() and edges[-1] == x[:, 1].max()
    # The label does not depend on "a": its tree may split on noise, but within its range.
    per_feature = 2 if kind == THERMOMETER else 1
    assert encoding.width == sum(len(e) - per_feature for e in encoding.edges)
    assert encoding.transform(x).shape == (len(x), encoding.width)


def test_constant_feature_gets_no_bins_and_unknown_names_are_refused() -> None:
    x = np.column_stack([np.zeros(100), np.arange(100.0), np.ones(100)])
    y = (np.arange(100) > 50).astype(int)
    encoding = fit_bin_encoding(x, y, NAMES, ("a", "b"))
    assert encoding.columns == (1,) and encoding.kind == THERMOMETER
    with pytest.raises(ValueError, match="unknown features \\['z'\\]"):
        fit_bin_encoding(x, y, NAMES, ("z",))


def test_json_round_trip_and_bad_edges() -> None:
    data = LINEAR.to_dict(NAMES)
    assert data == {"a": [0.0, 1.0, 3.0], "c": [-1.0, 1.0]}
    again = BinEncoding.from_dict(data, NAMES, PIECEWISE_LINEAR)
    row = np.array([[0.5, 9.0, 0.0]])
    np.testing.assert_array_equal(again.transform(row), LINEAR.transform(row))
    with pytest.raises(ValueError, match="increasing"):
        BinEncoding.from_dict({"a": [1.0, 1.0]}, NAMES)
    with pytest.raises(ValueError, match="unknown feature 'q'"):
        BinEncoding.from_dict({"q": [0.0, 1.0]}, NAMES)


def test_scaler_appends_the_encoding_after_the_standardised_features() -> None:
    scaler = Scaler(np.zeros(3), np.full(3, 2.0), 4, LINEAR)
    rows = np.array([[2.0, 4.0, 0.0], [0.5, 0.0, 1.0]])
    out = scaler.transform(rows)
    assert scaler.n_inputs == 6 and out.shape == (2, 6) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :3], rows / 2.0)
    np.testing.assert_array_equal(out[:, 3:], [[1.0, 0.5, 0.5], [0.5, 0.0, 1.0]])
    thermometer = Scaler(np.zeros(3), np.full(3, 2.0), 4, STEPS).transform(rows)
    np.testing.assert_array_equal(thermometer[:, 3:], [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert Scaler(np.zeros(3), np.ones(3), 4).n_inputs == 3


def test_the_cli_offers_exactly_the_known_kinds() -> None:
    from missile_classifier.cli import EncodingKindChoice

    assert tuple(choice.value for choice in EncodingKindChoice) == ENCODING_KINDS


@pytest.mark.parametrize(
    "values",
    [
        [1.0],  # one edge is no bin
        [0.0, 2.0, 1.0],  # not increasing
        [[0.0, 1.0], [2.0, 3.0]],  # increasing along each row, but not a list of edges
        5.0,  # a bare number
        # NaN compares False with everything, so `diff <= 0` let these through; every value
        # then encoded as 0 (thermometer) or NaN (piecewise-linear).
        [0.0, float("nan")],
        [0.0, None, 2.0],  # JSON null reads as NaN
        [float("-inf"), 0.0, 1.0],  # piecewise-linear: (x + inf) / inf is NaN
        [0.0, 1.0, float("inf")],  # piecewise-linear: the last bin never fills
    ],
)
def test_from_dict_refuses_edges_that_are_not_finite_increasing_values(values: object) -> None:
    with pytest.raises(ValueError, match="edges must be ≥ 2 finite, increasing values") as raised:
        BinEncoding.from_dict({"b": values}, NAMES)  # type: ignore[dict-item]
    assert str(raised.value).startswith("encoding of 'b': ")


def test_from_dict_reads_integers_as_float_edges() -> None:
    # A hand-edited file may say 1 for 1.0.
    encoding = BinEncoding.from_dict({"c": [0, 1, 3]}, NAMES, PIECEWISE_LINEAR)
    assert encoding.columns == (2,) and encoding.edges[0].dtype == np.float64
    assert encoding.to_dict(NAMES) == {"c": [0.0, 1.0, 3.0]}
    assert all(isinstance(v, float) for v in encoding.to_dict(NAMES)["c"])


def test_columns_and_edges_that_differ_in_number_fail_loudly() -> None:
    # Built by hand (from_dict cannot produce it): use must not quietly drop a column's bins.
    lopsided = BinEncoding((0, 2), (np.array([0.0, 1.0, 3.0]),))
    with pytest.raises(ValueError, match=r"zip\(\) argument 2 is shorter than argument 1"):
        lopsided.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"zip\(\) argument 2 is shorter than argument 1"):
        lopsided.to_dict(NAMES)


@pytest.mark.parametrize("kind", [THERMOMETER, PIECEWISE_LINEAR])
def test_an_encoding_of_no_features_adds_no_inputs(kind: str) -> None:
    empty = BinEncoding((), (), kind)
    out = empty.transform(np.ones((5, 3)))
    assert empty.width == 0 and out.shape == (5, 0) and out.dtype == np.float32
    assert empty.to_dict(NAMES) == {}
