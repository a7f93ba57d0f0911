"""The one feature function, shared by training, batch scoring and the service.

Features are computed per stream (one track seen by one sensor), in time order, and causally:
row ``i`` uses rows ``0..i`` only. Everything a row needs from earlier rows is carried in a small
:class:`StreamState`, so a stream can be scored in one call over all its rows or resumed point by
point from a stored state, with the same floating-point operations and so the same answers.

:func:`run_features` computes many streams in one vectorised pass (a batch of 10,000 one-point
streams costs about what 10 streams of 1,000 points cost); :func:`stream_features` is the same
function for one stream.

Rates divide by the real time step (Δt from the timestamps), so irregular sampling and gaps
work. Missing intensities are filled with the last observed value of the stream (0 before the
first one) and flagged in ``intensity_missing``; no feature is ever NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from operator import attrgetter
from typing import Final

import numpy as np
import pymap3d

#: The seed's 11 features, then the causal track-context features.
FEATURE_NAMES: Final = (
    "latitude",
    "longitude",
    "altitude",
    "radiometric_intensity",
    "velocity_east",
    "velocity_north",
    "velocity_up",
    "speed",
    "acceleration",
    "distance_from_start",
    "radiometric_rate",
    "dt",
    "altitude_over_max",
    "altitude_below_max",
    "time_since_max",
    "intensity_missing",
)
N_FEATURES: Final = len(FEATURE_NAMES)
#: ``altitude_over_max`` divides by at least this, so a stream starting near the ground (or
#: below it, with noise) gives ratios near 0 instead of blowing up.
MIN_REFERENCE_ALTITUDE_M: Final = 1_000.0


@dataclass
class StreamState:
    """What the features of the next row need from the rows before it: O(1) per stream.

    Plain floats and ints, so it serialises to JSON for a shared track store.
    """

    count: int
    timestamp: float
    x: float
    y: float
    z: float
    #: Altitude of the last row (what the jump rule of the next point compares with).
    altitude: float
    speed: float
    #: Last intensity after filling (0 until the stream's first observed value).
    intensity: float
    x0: float
    y0: float
    z0: float
    max_altitude: float
    time_of_max: float
    #: Points quarantined since the last accepted one (see :mod:`.plausibility`).
    quarantined: int = 0

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, float | int]) -> StreamState:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: ``data`` is not a state of this version (fields missing or unknown).
        """
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.name != "quarantined"}
        if not isinstance(data, dict) or not required <= data.keys() <= names:
            raise ValueError("not a stream state of this version")
        return cls(**data)  # type: ignore[arg-type]


_FIELDS: Final = tuple(f.name for f in fields(StreamState))
_UNKNOWN: Final = (np.nan,) * len(_FIELDS)
#: A state's field values in field order (dataclasses.astuple deep-copies: 10x slower).
_values: Final = attrgetter(*_FIELDS)


def ecef(
    latitude: np.ndarray, longitude: np.ndarray, altitude: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Earth-centred coordinates (metres, WGS84) of geodetic points."""
    x, y, z = pymap3d.geodetic2ecef(latitude, longitude, altitude)
    return np.asarray(x, np.float64), np.asarray(y, np.float64), np.asarray(z, np.float64)


@dataclass(frozen=True)
class RunStates:
    """The state after the last row of each run, as arrays (one entry per run)."""

    columns: dict[str, np.ndarray]

    def state(self, run: int, quarantined: int = 0) -> StreamState:
        """The state after run ``run``, with ``quarantined`` points after it."""
        values = {name: column[run].item() for name, column in self.columns.items()}
        return StreamState(**values, quarantined=quarantined)


class StateArrays:
    """Fields of many (optional) states as arrays; one pass over the states."""

    def __init__(self, states: Sequence[StreamState | None]) -> None:
        self.fresh = np.array([s is None for s in states], dtype=bool)
        self._any_fresh = bool(self.fresh.any())
        rows = [_values(s) if s is not None else _UNKNOWN for s in states]
        self._columns = np.array(rows, dtype=np.float64).reshape(len(states), len(_FIELDS))

    def get(self, name: str, fresh: np.ndarray | float) -> np.ndarray:
        """One field of every state; ``fresh`` where there is no state."""
        known = self._columns[:, _FIELDS.index(name)]
        return np.where(self.fresh, fresh, known) if self._any_fresh else known


def run_features(
    timestamp: np.ndarray,
    latitude: np.ndarray,
    longitude: np.ndarray,
    altitude: np.ndarray,
    intensity: np.ndarray,
    bounds: np.ndarray,
    states: Sequence[StreamState | None],
    xyz: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, RunStates]:
    """Features of consecutive rows of several streams ("runs"), each resuming its own state.

    Args:
        timestamp: Unix seconds; strictly increasing within a run, and after its state's time.
        latitude: Degrees.
        longitude: Degrees.
        altitude: Metres.
        intensity: Radiometric intensity; NaN where missing.
        bounds: Index of the first row of each run, then the row count (runs are contiguous
            and non-empty).
        states: For each run, the state after the stream's earlier rows, or ``None`` where the
            run starts its stream.
        xyz: The rows' ECEF coordinates if the caller has them already.

    Returns:
        A float64 array of shape ``(n, N_FEATURES)`` in :data:`FEATURE_NAMES` order, and the
        state after each run's last row.

    Raises:
        ValueError: Timestamps of a run do not strictly increase.
    """
    t = np.asarray(timestamp, dtype=np.float64)
    lat = np.asarray(latitude, dtype=np.float64)
    lon = np.asarray(longitude, dtype=np.float64)
    alt = np.asarray(altitude, dtype=np.float64)
    raw_intensity = np.asarray(intensity, dtype=np.float64)
    n = len(t)
    first = np.asarray(bounds[:-1], dtype=np.int64)
    run = np.repeat(np.arange(len(first)), np.diff(bounds))  # the run of every row
    x, y, z = ecef(lat, lon, alt) if xyz is None else xyz
    initial = StateArrays(states)
    fresh = initial.fresh

    def previous(values: np.ndarray, carried: np.ndarray) -> np.ndarray:
        # The row before each row within its run; the carried value before a run's first row.
        before = np.empty(n)
        before[1:] = values[:-1]
        before[first] = carried
        return before

    prev_t = previous(t, initial.get("timestamp", t[first]))
    dt = t - prev_t
    has_step = np.ones(n, dtype=bool)
    has_step[first[fresh]] = False
    if np.any((dt <= 0) & has_step):
        raise ValueError("timestamps of a stream must strictly increase")
    safe_dt = np.where(dt > 0, dt, 1.0)  # the first row of a stream has no step: rates are 0
    d_ecef = [
        c - previous(c, initial.get(name, c[first])) for c, name in ((x, "x"), (y, "y"), (z, "z"))
    ]
    v_east, v_north, v_up = (
        np.asarray(v, dtype=np.float64) / safe_dt
        for v in pymap3d.ecef2enuv(d_ecef[0], d_ecef[1], d_ecef[2], lat, lon)
    )
    speed = np.sqrt(v_east**2 + v_north**2 + v_up**2)
    acceleration = (speed - previous(speed, initial.get("speed", 0.0))) / (safe_dt)
    # Acceleration needs two velocities, i.e. three rows: zero it for the stream's first two.
    count_before = initial.get("count", 0.0).astype(np.int64)
    position = count_before[run] + np.arange(n) - first[run]
    acceleration[position < 2] = 0.0

    missing = np.isnan(raw_intensity)
    filled = _forward_fill(raw_intensity, first, run, initial.get("intensity", 0.0))
    intensity_rate = (filled - previous(filled, initial.get("intensity", filled[first]))) / (
        safe_dt
    )

    running_max = np.maximum(_running_max(alt, run), initial.get("max_altitude", -np.inf)[run])
    is_new_max = alt >= running_max
    time_of_max = _forward_fill(
        np.where(is_new_max, t, np.nan), first, run, initial.get("time_of_max", t[first])
    )
    reference = np.maximum(running_max, MIN_REFERENCE_ALTITUDE_M)
    origin = [initial.get(name, c[first]) for c, name in ((x, "x0"), (y, "y0"), (z, "z0"))]

    features = np.column_stack(
        [
            lat,
            lon,
            alt,
            filled,
            v_east,
            v_north,
            v_up,
            speed,
            acceleration,
            np.sqrt(
                (x - origin[0][run]) ** 2 + (y - origin[1][run]) ** 2 + (z - origin[2][run]) ** 2
            ),
            intensity_rate,
            dt,
            alt / reference,
            running_max - alt,
            t - time_of_max,
            missing.astype(np.float64),
        ]
    )
    last = np.asarray(bounds[1:], dtype=np.int64) - 1
    ends = RunStates(
        {
            "count": count_before + np.diff(bounds),
            "timestamp": t[last],
            "x": x[last],
            "y": y[last],
            "z": z[last],
            "altitude": alt[last],
            "speed": speed[last],
            "intensity": filled[last],
            "x0": origin[0],
            "y0": origin[1],
            "z0": origin[2],
            "max_altitude": running_max[last],
            "time_of_max": time_of_max[last],
        }
    )
    return features, ends


def stream_features(
    timestamp: np.ndarray,
    latitude: np.ndarray,
    longitude: np.ndarray,
    altitude: np.ndarray,
    intensity: np.ndarray,
    *,
    state: StreamState | None = None,
) -> tuple[np.ndarray, StreamState]:
    """Features of consecutive rows of one stream, optionally resuming after earlier rows.

    Args:
        timestamp: Unix seconds, strictly increasing, and after ``state.timestamp``.
        latitude: Degrees.
        longitude: Degrees.
        altitude: Metres.
        intensity: Radiometric intensity; NaN where missing.
        state: State after the stream's earlier rows, or ``None`` at the stream's start.

    Returns:
        A float64 array of shape ``(n, N_FEATURES)`` in :data:`FEATURE_NAMES` order, and the
        state after the last row.
    """
    n = len(timestamp)
    if n == 0:
        if state is None:
            raise ValueError("a stream needs at least one row")
        return np.empty((0, N_FEATURES)), state
    features, ends = run_features(
        timestamp, latitude, longitude, altitude, intensity, np.array([0, n]), [state]
    )
    return features, ends.state(0)


def _forward_fill(
    values: np.ndarray, first: np.ndarray, run: np.ndarray, initial: np.ndarray
) -> np.ndarray:
    """Replace NaNs by the last non-NaN value before them in their run (``initial`` before it).

    Args:
        values: Rows of all runs, run after run.
        first: Index of each run's first row.
        run: The run of every row.
        initial: Each run's value before its first row (or one value for all).
    """
    index = np.where(np.isnan(values), -1, np.arange(len(values)))
    np.maximum.accumulate(index, out=index)
    inside = index >= first[run]
    start = np.broadcast_to(initial, first.shape)[run]
    filled: np.ndarray = np.where(inside, values[np.maximum(index, 0)], start)
    return filled


def _running_max(values: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Maximum of each row and the rows before it in its run, exactly (no offset arithmetic).

    Each value is replaced by its rank, and each run's ranks are lifted above every earlier
    run's, so one cumulative maximum over all rows restarts at every run.
    """
    n = len(values)
    order = np.argsort(values, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    lifted = np.maximum.accumulate(run.astype(np.int64) * n + rank)
    running: np.ndarray = values[order[lifted - run * n]]
    return running
