"""Golden values: features, model inputs, windows and probabilities derived by hand.

Every other scoring test compares two paths that share the same code: batch against streamed,
chunked against whole, resumed against uninterrupted. A bug shared by all of them (a wrong sign,
a unit, a Δt multiplied instead of divided, a window of the wrong rows) makes every path equally
wrong, and so passes every parity test. The expected numbers here never come from the code under
test: they are hand arithmetic written out below (rates, running maximum, padding, scaling), and
closed-form WGS84 geometry for the velocities (checked against a pymap3d function the code does
not use). If one of these tests fails, either the code changed what the model sees, or the
derivation in the comment is wrong: decide which before touching a number.

The fixture: three streams of 4–5 rows with irregular Δt.

- A (track 7, sensor 1) moves only vertically, climbs from 400 m to 2,500 m and falls back, and
  misses one intensity. Its running maximum starts below the 1,000 m floor of
  ``altitude_over_max``.
- B (track 7, sensor 2: the same missile seen by a second sensor, interleaved in time with A,
  two timestamps shared) moves only east along the 45° N parallel at constant altitude, and
  misses its first intensity.
- C (track 9, sensor 1) moves north along the 20° E meridian while it climbs and falls.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import onnx
import pymap3d
import pytest
from onnx import TensorProto, helper

from missile_classifier.columns import (
    ALTITUDE,
    INPUT_COLUMNS,
    INTENSITY,
    LATITUDE,
    LONGITUDE,
    SENSOR_ID,
    TIMESTAMP,
    TRACK_ID,
)
from missile_classifier.scoring import bundle
from missile_classifier.scoring.encoding import BinEncoding
from missile_classifier.scoring.features import (
    FEATURE_NAMES,
    TREND_TIME_CONSTANT_S,
    StreamState,
    run_features,
    stream_features,
)
from missile_classifier.scoring.inference import ModelInferenceService
from missile_classifier.scoring.windows import (
    Scaler,
    StreamMemory,
    batch_features,
    batch_windows,
    stream_windows,
)

Array = npt.NDArray[np.float64]
NAN = float("nan")
#: Unix seconds. Near 1.7e9 a float64 step is 2**-22 s, so T0 + k/4 is exact and every Δt below
#: is exactly the difference of the offsets.
T0 = 1_700_000_000.0

# WGS84, written out (not read from pymap3d): semi-major axis, flattening, first eccentricity².
WGS84_A = 6_378_137.0
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)


class Stream(NamedTuple):
    track: int
    sensor: int
    t: tuple[float, ...]  # seconds after T0
    lat: tuple[float, ...]
    lon: tuple[float, ...]
    alt: tuple[float, ...]
    intensity: tuple[float, ...]

    def columns(self) -> dict[str, np.ndarray]:
        n = len(self.t)
        return {
            TIMESTAMP: T0 + np.array(self.t),
            TRACK_ID: np.full(n, self.track, dtype=np.int64),
            SENSOR_ID: np.full(n, self.sensor, dtype=np.int64),
            LATITUDE: np.array(self.lat),
            LONGITUDE: np.array(self.lon),
            ALTITUDE: np.array(self.alt),
            INTENSITY: np.array(self.intensity),
        }


A = Stream(
    track=7,
    sensor=1,
    t=(0.0, 0.5, 2.0, 2.25, 4.25),  # Δt 0.5, 1.5, 0.25, 2.0
    lat=(30.0,) * 5,
    lon=(45.0,) * 5,
    alt=(400.0, 1_000.0, 2_500.0, 2_200.0, 1_200.0),
    intensity=(2.0, 3.0, NAN, 4.0, 3.5),
)
B = Stream(
    track=7,
    sensor=2,
    t=(0.5, 0.75, 2.25, 2.75),  # Δt 0.25, 1.5, 0.5
    lat=(45.0,) * 4,
    lon=(10.0, 10.005, 10.029, 10.041),
    alt=(50_000.0,) * 4,
    intensity=(NAN, 6.0, 6.5, 5.0),
)
C = Stream(
    track=9,
    sensor=1,
    t=(0.25, 1.0, 1.5, 3.0, 3.25),  # Δt 0.75, 0.5, 1.5, 0.25
    lat=(10.0, 10.01, 10.0125, 10.03, 10.035),  # Δφ 0.01°, 0.0025°, 0.0175°, 0.005°
    lon=(20.0,) * 5,
    alt=(80_000.0, 81_000.0, 81_200.0, 80_500.0, 79_000.0),
    intensity=(1.0, 1.5, 2.5, 2.0, 1.25),
)
STREAMS = {"A": A, "B": B, "C": C}
#: Batch input order: rows of A (0–4), B (5–8) and C (9–13) mixed, so each sensor change of
#: track 7 and each track change happens inside the input.
SHUFFLE = (11, 3, 7, 0, 13, 5, 9, 2, 8, 12, 1, 6, 4, 10)
#: (stream, row within the stream) of each concatenated row, A then B then C.
SOURCES = [(name, i) for name, s in STREAMS.items() for i in range(len(s.t))]


def _batch_input() -> dict[str, np.ndarray]:
    parts = [s.columns() for s in STREAMS.values()]
    return {c: np.concatenate([p[c] for p in parts])[list(SHUFFLE)] for c in parts[0]}


# --- independent geometry and trends ------------------------------------------------------
# The code turns each row into ECEF coordinates (pymap3d geodetic2ecef), takes the trend of the
# ECEF position (below) and rotates it into the ENU frame of the current row (pymap3d
# ecef2enuv). Here the coordinates come in closed form from the WGS84 prime-vertical radius of
# curvature N(φ) = a / √(1 − e² sin² φ): a point at latitude φ, longitude λ and height h lies at
# distance r = (N + h) cos φ from the polar axis, at (r cos λ, r sin λ) in the equatorial plane
# and z = (N (1 − e²) + h) sin φ above it; and the ENU axes are written out. Both are exact (no
# small-angle approximation), so they agree with the code to rounding.
#
# A rate is a trend (the module docstring of features.py): with τ = 4 s, row i's rate is
# (L + Δv_i) / (L_t + Δt_i), and then both sums are multiplied by τ / (τ + Δt_i), where L and
# L_t start at 0 on a stream's first row (whose rate is 0).
TAU = 4.0


def _meridian_plane(lat_deg: float, alt: float) -> tuple[float, float]:
    """(r, z): distance from the polar axis and height above the equatorial plane (m)."""
    phi = math.radians(lat_deg)
    n = WGS84_A / math.sqrt(1.0 - WGS84_E2 * math.sin(phi) ** 2)
    return (n + alt) * math.cos(phi), (n * (1.0 - WGS84_E2) + alt) * math.sin(phi)


def _ecef(lat_deg: float, lon_deg: float, alt: float) -> tuple[float, float, float]:
    r, z = _meridian_plane(lat_deg, alt)
    lam = math.radians(lon_deg)
    return r * math.cos(lam), r * math.sin(lam), z


def _enu(v: tuple[float, float, float], lat_deg: float, lon_deg: float) -> tuple[float, ...]:
    """An ECEF vector's (east, north, up) components at a point."""
    phi, lam = math.radians(lat_deg), math.radians(lon_deg)
    east = (-math.sin(lam), math.cos(lam), 0.0)
    north = (-math.sin(phi) * math.cos(lam), -math.sin(phi) * math.sin(lam), math.cos(phi))
    up = (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))
    return tuple(sum(a * b for a, b in zip(axis, v, strict=True)) for axis in (east, north, up))


class Trend(NamedTuple):
    rates: list[float]
    lead: float
    lead_t: float


def hand_trend(t: Sequence[float], values: Sequence[float], start: int = 0) -> Trend:
    """The rates of ``values`` from row ``start`` on (0 up to it), and the sums carried after."""
    lead, lead_t, rates = 0.0, 0.0, [0.0] * (start + 1)
    for i in range(start + 1, len(t)):
        dt = t[i] - t[i - 1]
        lead, lead_t = lead + (values[i] - values[i - 1]), lead_t + dt
        rates.append(lead / lead_t)
        lead, lead_t = lead * TAU / (TAU + dt), lead_t * TAU / (TAU + dt)
    return Trend(rates, lead, lead_t)


def _velocities(s: Stream) -> tuple[list[float], list[float], list[float]]:
    """East, north and up velocities: the ECEF trend in the current row's frame."""
    points = [_ecef(*p) for p in zip(s.lat, s.lon, s.alt, strict=True)]
    trend = [hand_trend(s.t, [p[k] for p in points]).rates for k in range(3)]
    enu = [
        _enu((trend[0][i], trend[1][i], trend[2][i]), s.lat[i], s.lon[i]) for i in range(len(s.t))
    ]
    return [v[0] for v in enu], [v[1] for v in enu], [v[2] for v in enu]


def _chord(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(b[0] - a[0], b[1] - a[1])


# --- golden features -------------------------------------------------------------------------


def _golden_a() -> dict[str, list[float]]:
    # Vertical only: every ECEF step is Δh along the same local normal, so the ECEF trend is
    # the normal times the trend of h, i.e. (0, 0, trend of h) in ENU.
    v_up = hand_trend(A.t, A.alt).rates
    # Δh / Δt of 600/0.5, 1500/1.5, -300/0.25, -1000/2.0, averaged in seconds: the trend stays
    # positive after the fall starts (τ = 4 s of memory), 1200, 1046, 708, 31 m/s.
    assert [round(v) for v in v_up] == [0, 1_200, 1_046, 708, 31]
    speed = [abs(v) for v in v_up]
    filled = [2.0, 3.0, 3.0, 4.0, 3.5]  # row 2 is missing: carried forward from row 1
    return {
        "latitude": [30.0] * 5,
        "longitude": [45.0] * 5,
        "altitude": [400.0, 1_000.0, 2_500.0, 2_200.0, 1_200.0],
        "radiometric_intensity": filled,
        "velocity_east": [0.0] * 5,
        "velocity_north": [0.0] * 5,
        "velocity_up": v_up,
        "speed": speed,
        # the trend of speed from the second row on (two speeds are needed), 0 on rows 0 and 1
        "acceleration": hand_trend(A.t, speed, start=1).rates,
        "distance_from_start": [0.0, 600.0, 2_100.0, 1_800.0, 800.0],  # |h − 400|
        "radiometric_rate": hand_trend(A.t, filled).rates,
        # running max 400, 1000, 2500, 2500, 2500; divided by at least 1,000 m (row 0)
        "altitude_over_max": [400 / 1_000, 1_000 / 1_000, 1.0, 2_200 / 2_500, 1_200 / 2_500],
        "altitude_below_max": [0.0, 0.0, 0.0, 2_500 - 2_200, 2_500 - 1_200],
        "time_since_max": [0.0, 0.0, 0.0, 2.25 - 2.0, 4.25 - 2.0],  # maximum reached at t=2.0
        "intensity_missing": [0.0, 0.0, 1.0, 0.0, 0.0],
        # 1 km above its lowest point (400 m) first at row 2 (2,500 m); row 1 is 600 m above
        "maximum_established": [0.0, 0.0, 1.0, 1.0, 1.0],
    }


def _golden_b() -> dict[str, list[float]]:
    v_east, v_north, v_up = _velocities(B)
    speed = [
        math.sqrt(e * e + n * n + u * u) for e, n, u in zip(v_east, v_north, v_up, strict=True)
    ]
    r, _ = _meridian_plane(45.0, 50_000.0)
    filled = [0.0, 6.0, 6.5, 5.0]  # 0 before the first observed value
    return {
        "latitude": [45.0] * 4,
        "longitude": list(B.lon),
        "altitude": [50_000.0] * 4,
        "radiometric_intensity": filled,
        "velocity_east": v_east,  # ≈ 1589, 1315, 1483 m/s
        "velocity_north": v_north,
        "velocity_up": v_up,
        "speed": speed,
        "acceleration": hand_trend(B.t, speed, start=1).rates,
        # chord of the parallel circle from the first point: 2 r sin(Δλ / 2)
        "distance_from_start": [2 * r * math.sin(math.radians(lon - 10.0) / 2) for lon in B.lon],
        "radiometric_rate": hand_trend(B.t, filled).rates,
        # constant altitude: every row is at the running maximum (ties count as reaching it)
        "altitude_over_max": [1.0] * 4,
        "altitude_below_max": [0.0] * 4,
        "time_since_max": [0.0] * 4,
        "intensity_missing": [1.0, 0.0, 0.0, 0.0],
        "maximum_established": [0.0] * 4,  # level: never seen climbing
    }


def _golden_c() -> dict[str, list[float]]:
    v_east, v_north, v_up = _velocities(C)
    speed = [math.hypot(n, u) for n, u in zip(v_north, v_up, strict=True)]
    start = _meridian_plane(C.lat[0], C.alt[0])
    return {
        "latitude": list(C.lat),
        "longitude": [20.0] * 5,
        "altitude": list(C.alt),
        "radiometric_intensity": list(C.intensity),
        "velocity_east": v_east,  # 0 to rounding: the motion stays in one meridian plane
        "velocity_north": v_north,
        "velocity_up": v_up,
        "speed": speed,
        "acceleration": hand_trend(C.t, speed, start=1).rates,
        "distance_from_start": [
            _chord(start, _meridian_plane(lat, alt)) for lat, alt in zip(C.lat, C.alt, strict=True)
        ],
        "radiometric_rate": hand_trend(C.t, C.intensity).rates,
        # running max 80000, 81000, 81200, 81200, 81200, reached last at t=1.5
        "altitude_over_max": [1.0, 1.0, 1.0, 80_500 / 81_200, 79_000 / 81_200],
        "altitude_below_max": [0.0, 0.0, 0.0, 81_200 - 80_500, 81_200 - 79_000],
        "time_since_max": [0.0, 0.0, 0.0, 3.0 - 1.5, 3.25 - 1.5],
        "intensity_missing": [0.0] * 5,
        # 81,000 m at row 1 is 1 km above the first point exactly, which counts
        "maximum_established": [0.0, 1.0, 1.0, 1.0, 1.0],
    }


def _golden(name: str) -> Array:
    """The golden feature table of a stream, ``(n, 16)`` in FEATURE_NAMES order."""
    table = {"A": _golden_a, "B": _golden_b, "C": _golden_c}[name]()
    assert list(table) == list(FEATURE_NAMES)
    return np.array([table[f] for f in FEATURE_NAMES], dtype=np.float64).T


#: Rates and ratios are exact float arithmetic in both the code and the test: relative 1e-6
#: (atol only so that exact zeros compare). The geometric features carry the rounding of ECEF
#: coordinates of ~6.4e6 m (~1e-9 m each), divided by Δt ≥ 0.25 s once for velocities and twice
#: for acceleration: ≲ 1e-7 (3e-8 measured), so an absolute 1e-6 still separates the north/up
#: parts of B's east motion (0.05–0.19 m/s) (whose sign shows which point's ENU frame is used).
GEOMETRIC = {
    "velocity_east",
    "velocity_north",
    "velocity_up",
    "speed",
    "acceleration",
    "distance_from_start",
}


def _assert_features(actual: np.ndarray, expected: Array, label: str) -> None:
    assert actual.shape == expected.shape
    for j, feature in enumerate(FEATURE_NAMES):
        np.testing.assert_allclose(
            actual[:, j],
            expected[:, j],
            rtol=1e-6,
            atol=1e-6 if feature in GEOMETRIC else 1e-12,
            err_msg=f"stream {label}, feature {feature}",
        )


def test_hand_geometry_agrees_with_pymap3d_geodetic2enu() -> None:
    # A third witness for the closed forms above, through a pymap3d function the code does not
    # call: the previous point seen from the current one, negated, is the step in the current
    # frame. Same frame, so only rounding of ~6.4e6 m coordinates (~1e-9 m) separates them.
    for s in (B, C):
        for i in range(1, len(s.t)):
            back = pymap3d.geodetic2enu(
                s.lat[i - 1], s.lon[i - 1], s.alt[i - 1], s.lat[i], s.lon[i], s.alt[i]
            )
            now, before = (
                _ecef(s.lat[i], s.lon[i], s.alt[i]),
                _ecef(s.lat[i - 1], s.lon[i - 1], s.alt[i - 1]),
            )
            step = (now[0] - before[0], now[1] - before[1], now[2] - before[2])
            np.testing.assert_allclose(
                -np.array(back), np.array(_enu(step, s.lat[i], s.lon[i])), rtol=1e-9, atol=1e-6
            )


def test_the_trend_time_constant_is_the_one_derived_with() -> None:
    assert TREND_TIME_CONSTANT_S == TAU


@pytest.mark.parametrize("name", list(STREAMS))
def test_stream_features_equal_the_golden_table(name: str) -> None:
    s = STREAMS[name]
    columns = s.columns()
    features, state = stream_features(*(columns[c] for c in INPUT_COLUMNS))
    _assert_features(features, _golden(name), name)
    assert state.count == len(s.t) and state.timestamp == T0 + s.t[-1]


@pytest.mark.parametrize("name", list(STREAMS))
def test_features_resumed_point_by_point_through_json_equal_the_golden_table(name: str) -> None:
    columns = STREAMS[name].columns()
    rows, state = [], None
    for i in range(len(columns[TIMESTAMP])):
        if state is not None:  # as a shared track store keeps it
            state = StreamState.from_dict(json.loads(json.dumps(state.to_dict())))
        row, state = stream_features(*(columns[c][i : i + 1] for c in INPUT_COLUMNS), state=state)
        rows.append(row)
    _assert_features(np.vstack(rows), _golden(name), name)


def test_batch_features_of_the_shuffled_input_equal_the_golden_tables() -> None:
    features = batch_features(_batch_input())
    expected = np.array([_golden(name)[i] for name, i in (SOURCES[k] for k in SHUFFLE)])
    _assert_features(features, expected, "shuffled batch")


# --- golden model inputs and windows --------------------------------------------------------

#: A scaler unlike any fitted one, but with no mean 0 and no scale 1, so a sign or an operand
#: swapped in the standardisation shows.
MEAN = np.array(
    # lat, lon, alt, intensity, v_e, v_n, v_u, speed, acc, dist, rate, over, below, since, miss,
    # established
    [30, 20, 40_000, 3, 50, 100, -100, 900, 10, 500, 0.5, 0.7, 400, 0.5, 0.1, 0.6],
    dtype=float,
)
SCALE = np.array(
    [10, 20, 30_000, 2, 200, 1_000, 800, 600, 400, 1_500, 4, 0.25, 800, 1.25, 0.3, 0.5],
    dtype=float,
)
ALTITUDE_EDGES = np.array([0.0, 1_000.0, 60_000.0, 1e6])  # inner edges 1 km and 60 km
VELOCITY_UP_EDGES = np.array([-1e5, 0.0, 1e5])  # inner edge 0: "not descending"
ENCODING = BinEncoding(
    (FEATURE_NAMES.index("altitude"), FEATURE_NAMES.index("velocity_up")),
    (ALTITUDE_EDGES, VELOCITY_UP_EDGES),
)
L = 3
SCALER = Scaler(MEAN, SCALE, L, ENCODING)
#: Thermometer inputs by hand: altitude ≥ 1 km, altitude ≥ 60 km, velocity_up ≥ 0.
THERMOMETER = {
    # 400 m, then 1,000 m exactly (at the edge: 1); the trend climbs on every row (0, 1200,
    # 1046, 708, 31 m/s: the fall of the last two rows has not outweighed the climb yet)
    "A": [[0, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]],
    # 50 km; east along a parallel: the chord rises slightly in the end point's frame
    "B": [[1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]],
    # ~80 km; climbs to row 2, then falls: the trend is 1333, 921, 91, then -644 m/s
    "C": [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 0]],
}
#: Rows of its stream in the window of row i (L = 3: left-padded with row 0) and its
#: context_points, the number of real rows in it.
WINDOW_ROWS = ((0, 0, 0), (0, 0, 1), (0, 1, 2), (1, 2, 3), (2, 3, 4))
CONTEXT = (1, 2, 3, 3, 3)


def _golden_inputs(name: str) -> Array:
    """Golden model input rows of a stream: (golden − MEAN) / SCALE, then the thermometer."""
    return np.hstack([(_golden(name) - MEAN) / SCALE, np.array(THERMOMETER[name]).T])


@pytest.mark.parametrize("name", list(STREAMS))
def test_scaler_standardises_and_encodes_by_hand(name: str) -> None:
    inputs = SCALER.transform(_golden(name))
    assert inputs.dtype == np.float32 and inputs.shape == (len(STREAMS[name].t), 16 + 3)
    np.testing.assert_allclose(inputs, _golden_inputs(name), rtol=1e-6, atol=1e-6)


def test_scaler_spot_values() -> None:
    a = SCALER.transform(_golden("A"))
    assert a[4, 2] == pytest.approx((1_200 - 40_000) / 30_000)  # altitude
    acceleration = _golden_a()["acceleration"][3]
    assert a[3, 8] == pytest.approx((acceleration - 10) / 400)  # acceleration of row 3
    assert a[2, 3] == pytest.approx((3 - 3) / 2, abs=1e-7)  # the carried intensity
    assert a[2, 14] == pytest.approx((1 - 0.1) / 0.3)  # intensity_missing
    assert a[0, 11] == pytest.approx((0.4 - 0.7) / 0.25)  # altitude_over_max at the floor
    assert a[4, 13] == pytest.approx((2.25 - 0.5) / 1.25)  # time_since_max
    assert a[1, 15] == pytest.approx((0 - 0.6) / 0.5)  # maximum_established, not yet
    assert list(a[:, 16]) == [0, 1, 1, 1, 1] and list(a[:, 18]) == [1, 1, 1, 1, 1]


def test_batch_windows_of_the_shuffled_input_equal_the_golden_windows() -> None:
    windows, context = batch_windows(_batch_input(), SCALER)
    assert windows.shape == (len(SHUFFLE), L, 19) and windows.dtype == np.float32
    for k, source in enumerate(SHUFFLE):
        name, i = SOURCES[source]
        expected = _golden_inputs(name)[list(WINDOW_ROWS[i])]
        np.testing.assert_allclose(
            windows[k], expected, rtol=1e-6, atol=1e-6, err_msg=f"input row {k}: {name}[{i}]"
        )
        assert context[k] == CONTEXT[i], f"input row {k}: {name}[{i}]"


@pytest.mark.parametrize("name", list(STREAMS))
def test_stream_windows_point_by_point_equal_the_golden_windows(name: str) -> None:
    columns = STREAMS[name].columns()
    memory: StreamMemory | None = None
    for i in range(len(columns[TIMESTAMP])):
        if memory is not None:
            memory = StreamMemory.from_dict(json.loads(json.dumps(memory.to_dict())))
        window, context, memory = stream_windows(
            {c: v[i : i + 1] for c, v in columns.items()}, SCALER, memory
        )
        expected = _golden_inputs(name)[list(WINDOW_ROWS[i])]
        np.testing.assert_allclose(window[0], expected, rtol=1e-6, atol=1e-6, err_msg=f"row {i}")
        assert list(context) == [CONTEXT[i]]


# --- golden probabilities through a bundle --------------------------------------------------

#: The model: sigmoid(W_LAST · window[L−1] + W_FIRST · window[0] + BIAS). It reads the window's
#: newest row and its oldest (the padding of the first rows), so a window of wrong rows shows.
W_LAST = np.concatenate(
    [
        [0.3, -0.2, 0.5, 0.1, 0.2, 0.1, 0.4, -0.3, 0.2, 0.1, 0.15, 0.6, -0.3, -0.2, 0.5, 0.25],
        [0.3, 0.2, -0.5],  # the thermometer inputs
    ]
)
W_FIRST = np.concatenate(
    [
        [-0.1, 0.1, 0.3, -0.2, 0.1, -0.1, 0.2, 0.1, 0.1, -0.2, 0.1, -0.2, 0.2, 0.1, -0.3, -0.15],
        [-0.2, 0.1, 0.2],
    ]
)
BIAS = -0.5
#: Not 0.5: a golden probability (A[1] ≈ 0.456) lies between 0.42 and 0.5, so scoring that
#: ignored the bundle's threshold would decide it differently.
THRESHOLD = 0.42


def _onnx_model() -> onnx.ModelProto:
    f = len(W_LAST)
    nodes = [
        helper.make_node("Gather", ["windows", "last"], ["newest"], axis=1),
        helper.make_node("Gather", ["windows", "zero"], ["oldest"], axis=1),
        helper.make_node("MatMul", ["newest", "w_last"], ["a"]),
        helper.make_node("MatMul", ["oldest", "w_first"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["ab"]),
        helper.make_node("Add", ["ab", "bias"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["probability"]),
    ]
    initializers = [
        helper.make_tensor("last", TensorProto.INT64, [], [L - 1]),
        helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        helper.make_tensor("w_last", TensorProto.FLOAT, [f], W_LAST.tolist()),
        helper.make_tensor("w_first", TensorProto.FLOAT, [f], W_FIRST.tolist()),
        helper.make_tensor("bias", TensorProto.FLOAT, [], [BIAS]),
    ]
    graph = helper.make_graph(
        nodes,
        "golden",
        [helper.make_tensor_value_info("windows", TensorProto.FLOAT, ["batch", L, f])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> ModelInferenceService:
    directory = tmp_path_factory.mktemp("golden") / "20260101-000000"
    directory.mkdir()
    onnx.save(_onnx_model(), str(directory / bundle.MODEL_FILE))
    bundle.write_preprocessing(
        directory, bundle.Preprocessing(tuple(FEATURE_NAMES), SCALER, THRESHOLD)
    )
    bundle.write_metadata(directory, {"metrics": {}})
    return ModelInferenceService(directory, threads=1)


def _probability(windows: Array) -> Array:
    """The model by hand, in float64, on golden windows."""
    logit = windows[:, -1] @ W_LAST + windows[:, 0] @ W_FIRST + BIAS
    return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float64)


def _golden_probability(name: str) -> Array:
    inputs = _golden_inputs(name)
    return _probability(np.stack([inputs[list(rows)] for rows in WINDOW_ROWS[: len(inputs)]]))


#: ONNX Runtime computes in float32: inputs rounded to ~6e-8 relative, a 19+19-term dot product
#: of terms ≲ 3, so the logit is within ~1e-5 and the probability (slope ≤ 1/4) within ~3e-6.
PROBABILITY_ATOL = 1e-5


def test_the_threshold_splits_the_golden_probabilities() -> None:
    # Guards the fixture: both classes occur, and no probability is near the threshold.
    p = np.concatenate([_golden_probability(name) for name in STREAMS])
    assert (p >= THRESHOLD).any() and (p < THRESHOLD).any()
    assert np.abs(p - THRESHOLD).min() > 1e-3
    assert ((p >= THRESHOLD) & (p < 0.5)).any()


def test_bundle_probabilities_of_the_shuffled_input_equal_the_hand_model(
    service: ModelInferenceService,
) -> None:
    scores = service.predict_batch(_batch_input())
    golden = {name: _golden_probability(name) for name in STREAMS}
    expected = np.array([golden[name][i] for name, i in (SOURCES[k] for k in SHUFFLE)])
    np.testing.assert_allclose(scores.probability, expected, rtol=0, atol=PROBABILITY_ATOL)
    np.testing.assert_array_equal(scores.reentry_phase, (expected >= THRESHOLD).astype(int))
    expected_context = [CONTEXT[SOURCES[k][1]] for k in SHUFFLE]
    np.testing.assert_array_equal(scores.context_points, expected_context)


@pytest.mark.parametrize("name", ["A", "C"])
def test_bundle_point_by_point_equals_the_hand_model(
    service: ModelInferenceService, name: str
) -> None:
    columns = STREAMS[name].columns()
    memory: StreamMemory | None = None
    probabilities, decisions, contexts = [], [], []
    for i in range(len(columns[TIMESTAMP])):
        if memory is not None:
            memory = StreamMemory.from_dict(json.loads(json.dumps(memory.to_dict())))
        scores, memory = service.predict_stream(
            {c: v[i : i + 1] for c, v in columns.items()}, memory
        )
        probabilities.append(float(scores.probability[0]))
        decisions.append(int(scores.reentry_phase[0]))
        contexts.append(int(scores.context_points[0]))
    expected = _golden_probability(name)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=PROBABILITY_ATOL)
    assert decisions == [int(p >= THRESHOLD) for p in expected]
    assert contexts == list(CONTEXT)


# --- golden features of several runs in one run_features call ---------------------------------
# Four vertical-only streams at 30° N, 45° E (as A: each ECEF step is Δh along the local normal,
# so velocity_up is the trend of h, speed = |velocity_up|, distance_from_start = |h − h₀|), laid
# out as runs of one call: Q fresh, then P resuming after its first two rows, then R fresh, then
# S resuming after its first row. Each run's rows must be its own stream's rows, whatever came in
# the run before it: R climbs no higher than 1,500 m right after Q reached 9,000 m, and its
# intensities (both missing) must be filled with 0, not with Q's or P's last value.

MULTI_LAT, MULTI_LON = 30.0, 45.0


class Vertical(NamedTuple):
    t: tuple[float, ...]  # seconds after T0
    alt: tuple[float, ...]
    intensity: tuple[float, ...]
    #: Rows before the run (given to run_features as a hand-built state).
    resumed_after: int


MULTI = {
    "Q": Vertical((10.0, 10.5, 11.0), (8_000.0, 9_000.0, 8_500.0), (NAN, 0.5, NAN), 0),
    "P": Vertical(
        (0.0, 1.0, 2.0, 4.0), (3_000.0, 5_000.0, 4_000.0, 4_500.0), (1.0, NAN, NAN, 2.0), 2
    ),
    "R": Vertical((0.0, 2.0), (1_500.0, 500.0), (NAN, NAN), 0),
    "S": Vertical((0.0, 1.0, 3.0), (2_000.0, 2_600.0, 2_000.0), (0.3, 0.6, NAN), 1),
}

#: The intensities after filling (0 before a stream's first observed value, then carried).
MULTI_FILLED = {
    "Q": [0.0, 0.5, 0.5],
    "P": [1.0, 1.0, 1.0, 2.0],
    "R": [0.0, 0.0],  # its own fill, not Q's or P's last value
    "S": [0.3, 0.6, 0.6],
}
#: Golden features of every row of each whole stream, by hand, apart from the trends
#: (latitude, longitude and altitude are the inputs, east and north velocities 0, and
#: velocity_up, speed, acceleration and radiometric_rate trends: see _multi_golden).
MULTI_GOLDEN: dict[str, dict[str, list[float]]] = {
    "Q": {
        "distance_from_start": [0.0, 1_000.0, 500.0],
        "altitude_over_max": [1.0, 1.0, 8_500 / 9_000],  # max 8000, 9000, 9000
        "altitude_below_max": [0.0, 0.0, 500.0],
        "time_since_max": [0.0, 0.0, 0.5],
        "intensity_missing": [1.0, 0.0, 1.0],
        "maximum_established": [0.0, 1.0, 1.0],  # 9,000 m is 1 km above 8,000 m: it counts
    },
    "P": {
        "distance_from_start": [0.0, 2_000.0, 1_000.0, 1_500.0],
        "altitude_over_max": [1.0, 1.0, 4_000 / 5_000, 4_500 / 5_000],  # max 3000, then 5000
        "altitude_below_max": [0.0, 0.0, 1_000.0, 500.0],
        "time_since_max": [0.0, 0.0, 2.0 - 1.0, 4.0 - 1.0],
        "intensity_missing": [0.0, 1.0, 1.0, 0.0],
        "maximum_established": [0.0, 1.0, 1.0, 1.0],  # 2 km above 3,000 m at row 1
    },
    "R": {
        "distance_from_start": [0.0, 1_000.0],
        "altitude_over_max": [1.0, 500 / 1_500],  # its own maximum, not Q's 9,000 m
        "altitude_below_max": [0.0, 1_000.0],
        "time_since_max": [0.0, 2.0],
        "intensity_missing": [1.0, 1.0],
        "maximum_established": [0.0, 0.0],  # only falls (Q's climb is not R's)
    },
    "S": {
        "distance_from_start": [0.0, 600.0, 0.0],
        "altitude_over_max": [1.0, 1.0, 2_000 / 2_600],
        "altitude_below_max": [0.0, 0.0, 600.0],
        "time_since_max": [0.0, 0.0, 2.0],
        "intensity_missing": [0.0, 0.0, 1.0],
        "maximum_established": [0.0, 0.0, 0.0],  # climbs 600 m only
    },
}


def _multi_trends(name: str, k: int | None = None) -> dict[str, Trend]:
    """The trends of a vertical stream's first ``k`` rows (all by default): velocity_up is the
    trend of h, speed its size, acceleration the trend of speed from the second row on (row 1
    of S is its stream's second row although it is its run's first: its acceleration is 0)."""
    s = MULTI[name]
    k = len(s.t) if k is None else k
    t, alt, filled = s.t[:k], s.alt[:k], MULTI_FILLED[name][:k]
    up = hand_trend(t, alt)
    speed = [abs(v) for v in up.rates]
    return {
        "velocity_up": up,
        "acceleration": hand_trend(t, speed, start=1),
        "radiometric_rate": hand_trend(t, filled),
    }


def _multi_golden(name: str) -> Array:
    s, table, trends = MULTI[name], MULTI_GOLDEN[name], _multi_trends(name)
    n = len(s.t)
    full = {
        "latitude": [MULTI_LAT] * n,
        "longitude": [MULTI_LON] * n,
        "altitude": list(s.alt),
        "radiometric_intensity": MULTI_FILLED[name],
        "velocity_east": [0.0] * n,
        "velocity_north": [0.0] * n,
        "speed": [abs(v) for v in trends["velocity_up"].rates],
        **{feature: trend.rates for feature, trend in trends.items()},
        **table,
    }
    return np.array([full[f] for f in FEATURE_NAMES], dtype=np.float64).T


def _hand_state(name: str, k: int) -> StreamState:
    """The state after a stream's first ``k`` rows, from the golden table and pymap3d's
    coordinates (not from the feature code)."""
    s, trends = MULTI[name], _multi_trends(name, k)
    x, y, z = pymap3d.geodetic2ecef(MULTI_LAT, MULTI_LON, s.alt[k - 1])
    x0, y0, z0 = pymap3d.geodetic2ecef(MULTI_LAT, MULTI_LON, s.alt[0])
    highest = max(s.alt[:k])
    reached = max(i for i in range(k) if s.alt[i] == highest)  # a tie counts as reaching it
    # Vertical motion: the carried ECEF sum is the carried sum of h along the local normal.
    phi, lam = math.radians(MULTI_LAT), math.radians(MULTI_LON)
    normal = (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))
    up = trends["velocity_up"]
    return StreamState(
        count=k,
        timestamp=T0 + s.t[k - 1],
        x=float(x),
        y=float(y),
        z=float(z),
        altitude=s.alt[k - 1],
        speed=abs(up.rates[k - 1]),
        intensity=MULTI_FILLED[name][k - 1],
        x0=float(x0),
        y0=float(y0),
        z0=float(z0),
        max_altitude=highest,
        time_of_max=T0 + s.t[reached],
        lead_t=up.lead_t,
        lead_x=normal[0] * up.lead,
        lead_y=normal[1] * up.lead,
        lead_z=normal[2] * up.lead,
        lead_intensity=trends["radiometric_rate"].lead,
        lead_speed_t=trends["acceleration"].lead_t,
        lead_speed=trends["acceleration"].lead,
        min_altitude=min(s.alt[:k]),
        maximum_established=MULTI_GOLDEN[name]["maximum_established"][k - 1],
    )


def test_runs_of_one_call_each_equal_their_golden_stream_resumed_or_fresh() -> None:
    names = list(MULTI)
    rows = [
        (name, i) for name in names for i in range(MULTI[name].resumed_after, len(MULTI[name].t))
    ]
    t = np.array([T0 + MULTI[name].t[i] for name, i in rows])
    alt = np.array([MULTI[name].alt[i] for name, i in rows])
    intensity = np.array([MULTI[name].intensity[i] for name, i in rows])
    lengths = [len(MULTI[name].t) - MULTI[name].resumed_after for name in names]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    assert bounds.tolist() == [0, 3, 5, 7, 9]
    states = [
        _hand_state(name, MULTI[name].resumed_after) if MULTI[name].resumed_after else None
        for name in names
    ]
    n = len(rows)
    features, ends = run_features(
        t, np.full(n, MULTI_LAT), np.full(n, MULTI_LON), alt, intensity, bounds, states
    )
    for r, name in enumerate(names):
        k = MULTI[name].resumed_after
        _assert_features(features[bounds[r] : bounds[r + 1]], _multi_golden(name)[k:], name)
        # The state after the run is the hand state after the whole stream.
        end, expected = ends.state(r), _hand_state(name, len(MULTI[name].t))
        assert isinstance(end.count, int) and end.count == expected.count, name
        for field in (
            "timestamp",
            "altitude",
            "intensity",
            "max_altitude",
            "time_of_max",
            "min_altitude",
            "maximum_established",
        ):
            assert getattr(end, field) == getattr(expected, field), f"{name}: {field}"
        for field in ("x", "y", "z", "x0", "y0", "z0", "speed", "lead_x", "lead_y", "lead_z"):
            assert getattr(end, field) == pytest.approx(getattr(expected, field), abs=1e-6)
        for field in ("lead_t", "lead_intensity", "lead_speed_t", "lead_speed"):
            assert getattr(end, field) == pytest.approx(getattr(expected, field), rel=1e-9)
        assert end.quarantined == 0
