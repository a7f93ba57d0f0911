"""Training ranges of the model inputs and the rows flagged far outside them."""

from __future__ import annotations

import numpy as np
import pytest

from missile_classifier.columns import (
    ALTITUDE,
    INTENSITY,
    LATITUDE,
    LONGITUDE,
    SENSOR_ID,
    TIMESTAMP,
    TRACK_ID,
)
from missile_classifier.scoring.features import FEATURE_NAMES, N_FEATURES
from missile_classifier.scoring.ranges import MARGIN, InputRanges
from missile_classifier.scoring.windows import Scaler, StreamMemory, batch_inputs, stream_inputs

RANGES = InputRanges(("altitude", "dt"), np.array([0.0, 0.5]), np.array([100e3, 1.0]))


def test_a_value_is_flagged_only_beyond_the_margin() -> None:
    assert MARGIN == 1.0
    # altitude: range 0–100 km, so 100 km of margin each side; dt: 0.5–1 s, 0.5 s of margin.
    values = np.array(
        [
            [-100e3, 0.0],  # both exactly at the margin: not flagged
            [-100.001e3, 1.5],
            [200.001e3, 1.5001],
            [50e3, np.nan],  # no previous row: no Δt to check
        ]
    )
    assert RANGES.outside(values).tolist() == [
        [False, False],
        [True, False],
        [True, True],
        [False, False],
    ]


def test_fit_takes_each_column_s_extremes_ignoring_nan() -> None:
    fitted = InputRanges.fit(("a", "b"), np.array([[1.0, np.nan], [-2.0, 3.0], [0.5, 4.0]]))
    assert fitted.low.tolist() == [-2.0, 3.0] and fitted.high.tolist() == [1.0, 4.0]


def test_ranges_round_trip_through_json_form() -> None:
    data = RANGES.to_dict()
    assert data == {"altitude": [0.0, 100e3], "dt": [0.5, 1.0]}
    back = InputRanges.from_dict(data)
    assert back.names == RANGES.names
    np.testing.assert_array_equal(back.low, RANGES.low)
    np.testing.assert_array_equal(back.high, RANGES.high)


NOT_RANGES = "input ranges must map names to [low, high]"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], NOT_RANGES),
        ({"a": [1.0]}, NOT_RANGES),
        ({"a": [1.0, 2.0, 3.0]}, NOT_RANGES),
        ({"a": [1.0, "x"]}, NOT_RANGES),
        ({"a": None}, NOT_RANGES),
        ({"a": [2.0, 1.0]}, "input ranges: low above high"),
        ({"a": [0, np.inf]}, "input ranges must be finite"),
        ({"a": [np.nan, 1.0]}, "input ranges must be finite"),
    ],
)
def test_malformed_ranges_are_refused(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=r"^input ranges") as raised:
        InputRanges.from_dict(data)  # type: ignore[arg-type]
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("low", "high"),
    [([0.0], [1.0, 2.0]), ([0.0, 1.0], [2.0]), ([0.0, 1.0, 2.0], [3.0, 4.0, 5.0])],
)
def test_ranges_need_one_low_and_one_high_per_name(low: list[float], high: list[float]) -> None:
    with pytest.raises(ValueError, match=r"^input ranges") as raised:
        InputRanges(("a", "b"), np.array(low), np.array(high))
    assert str(raised.value) == "input ranges: low and high must have one value per name"


T0 = 1_700_000_000.0


def _rows(t: list[float], altitude: list[float], track: int = 1) -> dict[str, np.ndarray]:
    n = len(t)
    return {
        TIMESTAMP: T0 + np.array(t),
        TRACK_ID: np.full(n, track, dtype=np.int64),
        SENSOR_ID: np.zeros(n, dtype=np.int64),
        LATITUDE: np.full(n, 45.0),
        LONGITUDE: np.full(n, 7.0),
        ALTITUDE: np.array(altitude),
        INTENSITY: np.full(n, 0.5),
    }


#: Altitudes 0–6 km (flagged beyond 12 km), Δt 0.5–1 s (flagged beyond 1.5 s).
LOW_RANGES = InputRanges(("altitude", "dt"), np.array([0.0, 0.5]), np.array([6e3, 1.0]))
SCALER = Scaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), 3, None, LOW_RANGES)


def test_model_inputs_flag_the_rows_and_inputs_outside() -> None:
    # Track 1: in range, then 3 s since its previous row (dt beyond 1.5 s), then 12.5 km up.
    # Track 2: one row, in range. Rows given in mixed order: flags come back in input order.
    columns = _rows([0.0, 0.5, 3.5, 4.0], [10e3, 10.2e3, 11e3, 12.5e3])
    other = _rows([0.0], [5e3], track=2)
    mixed = {c: np.concatenate([columns[c][[2, 0]], other[c], columns[c][[3, 1]]]) for c in columns}
    inputs = batch_inputs(mixed, SCALER)
    assert inputs.out_of_range.tolist() == [
        [False, True],
        [False, False],
        [False, False],
        [True, False],
        [False, False],
    ]


def test_a_streamed_row_s_dt_counts_from_its_memory() -> None:
    columns = _rows([0.0, 0.5, 5.0], [10e3, 10.2e3, 11e3])
    memory: StreamMemory | None = None
    flags = []
    for i in range(3):
        inputs, memory = stream_inputs(
            {c: v[i : i + 1] for c, v in columns.items()}, SCALER, memory
        )
        flags.append(inputs.out_of_range[0].tolist())
    assert flags == [[False, False], [False, False], [False, True]]


def test_a_quarantined_row_is_not_flagged() -> None:
    # 5,000 km up breaks the jump rule: it never enters the features, so nothing to flag.
    inputs = batch_inputs(_rows([0.0, 0.5], [10e3, 5e6]), SCALER)
    assert LOW_RANGES.outside(np.array([[5e6, 0.5]]))[0, 0]
    assert inputs.quarantine.tolist()[1] != 0
    assert inputs.out_of_range.tolist() == [[False, False], [False, False]]


def test_without_ranges_nothing_is_flagged() -> None:
    scaler = Scaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), 3)
    inputs = batch_inputs(_rows([0.0, 30.0], [10e3, 900e3]), scaler)
    assert inputs.out_of_range.shape == (2, 0) and inputs.out_of_range.dtype == bool


def test_no_rows_have_no_flags_of_the_right_shape() -> None:
    # A stream continued with no new rows answers nothing, in arrays of the usual kinds.
    _, memory = stream_inputs(_rows([0.0], [10e3]), SCALER, None)
    for scaler, width in ((SCALER, 2), (Scaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), 3), 0)):
        empty, _ = stream_inputs({c: v[:0] for c, v in _rows([1.0], [1.0]).items()}, scaler, memory)
        assert empty.windows.shape == (0, 3, N_FEATURES)
        assert empty.out_of_range.shape == (0, width) and empty.out_of_range.dtype == bool
        assert empty.maximum_established.shape == (0,)
        assert empty.maximum_established.dtype == bool and empty.restarted.dtype == bool


def test_ranges_in_training_order_flag_as_ranges_in_any_order() -> None:
    # Ranges of every feature and dt, in the order training writes them, take a shortcut (no
    # copy of the features); the same ranges in another order must flag the same inputs.
    names = (*FEATURE_NAMES, "dt")
    rng = np.random.default_rng(4)
    columns = _rows([0.0, 0.5, 3.5, 4.0, 4.25], [10e3, 10.2e3, 11e3, 12.5e3, 12.6e3])
    wide = batch_inputs(columns, Scaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), 3))
    assert wide.out_of_range.shape == (5, 0)
    low = rng.uniform(-2e3, 0.0, len(names))
    high = low + rng.uniform(0.0, 3e3, len(names))
    low[0], high[0] = 40.0, 44.0  # latitude: the rows' 45° is in range, their Δt would not be
    low[-1], high[-1] = 0.4, 0.6  # dt: the 3 s gap is flagged, 0.25–0.5 s steps are not
    ordered = InputRanges(names, low, high)
    order = rng.permutation(len(names))
    shuffled = InputRanges(tuple(names[i] for i in order), low[order], high[order])
    flags, shuffled_flags = (
        batch_inputs(
            columns, Scaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), 3, None, r)
        ).out_of_range
        for r in (ordered, shuffled)
    )
    assert flags.any() and not flags.all() and flags.dtype == bool
    assert flags[:, -1].tolist() == [False, False, True, False, False]  # the 3 s gap
    assert not flags[:, 0].any()
    np.testing.assert_array_equal(flags[:, order], shuffled_flags)


def test_every_feature_can_be_checked() -> None:
    names = (*FEATURE_NAMES, "dt")
    ranges = InputRanges(names, np.full(len(names), -1e300), np.full(len(names), 1e300))
    scaler = Scaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), 3, None, ranges)
    assert batch_inputs(_rows([0.0, 1.0], [10e3, 11e3]), scaler).out_of_range.shape == (2, 17)
