"""The one feature function, shared by training, batch scoring and the service.

Features are computed per stream (one track seen by one sensor), in time order, and causally:
row ``i`` uses rows ``0..i`` only. Everything a row needs from earlier rows is carried in a small
:class:`StreamState`, so a stream can be scored in one call over all its rows or resumed point by
point from a stored state, with the same floating-point operations and so the same answers.

:func:`run_features` computes many streams in one vectorised pass (a batch of 10,000 one-point
streams costs about what 10 streams of 1,000 points cost); :func:`stream_features` is the same
function for one stream.

Rates are per second and do not depend on the sampling interval. A rate is a *trend*: the
change of a signal over a baseline of about :data:`TREND_TIME_CONSTANT_S` seconds, with older
steps weighted less (:func:`trend_sums`). It is exact for a signal that changes linearly, at
any sampling, regular or not, and its noise comes from a baseline in seconds, not in rows: a
rate over one step of Δt would carry position noise divided by Δt, so the same sensor would
look twice as noisy at twice the rate (the model trained at 0.5 s failed at every other rate).
Missing intensities are filled with the last observed value of the stream (0 before the first
one) and flagged in ``intensity_missing``; no feature is ever NaN.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
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
    "altitude_over_max",
    "altitude_below_max",
    "time_since_max",
    "intensity_missing",
    "maximum_established",
)
N_FEATURES: Final = len(FEATURE_NAMES)
#: ``altitude_over_max`` divides by at least this, so a stream starting near the ground (or
#: below it, with noise) gives ratios near 0 instead of blowing up.
MIN_REFERENCE_ALTITUDE_M: Final = 1_000.0
#: A stream's running maximum is *established* once the stream has seen its altitude this far
#: above a lower earlier point of its own (it saw the climb, so its maximum is the track's):
#: far above any altitude noise (≤ 100 m). A stream first seen at or after apogee never is:
#: its "half of the maximum" is half of where it was first seen, a guess, and answers say so.
MIN_RISE_M: Final = 1_000.0
#: Time constant of the trends (rates), seconds: each step's weight in a trend falls by
#: τ / (τ + Δt) per later step of Δt. Long enough to average the challenge data's ~1 km
#: position noise into ~±250 m/s, short enough that "descending" shows a few seconds after
#: apogee (half the maximum is minutes later).
TREND_TIME_CONSTANT_S: Final = 4.0
#: Trends of :func:`run_features`' first pass, in the order of their carried sums.
_TRENDS: Final = ("t", "x", "y", "z", "intensity")
#: Below this many runs, :func:`trend_sums` runs a plain loop per run (fewer calls than
#: NumPy's per-step overhead); above, one vectorised step per row position. Same arithmetic.
_LOOP_RUNS: Final = 4
#: :func:`_running_max` takes a cumulative maximum per run where runs average at least this
#: many rows (a NumPy call per run, against a sort of all rows).
_ROWS_PER_RUN_FOR_LOOP: Final = 64


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
    #: Decayed sums of past steps (see :func:`trend_sums`): of time, ECEF position and intensity
    #: since the stream's first row, and of time and speed since its second (the first speed).
    lead_t: float
    lead_x: float
    lead_y: float
    lead_z: float
    lead_intensity: float
    lead_speed_t: float
    lead_speed: float
    #: Lowest altitude so far, and 1.0 once the running maximum is established (else 0.0).
    min_altitude: float
    maximum_established: float
    #: Points quarantined since the last accepted one (see :mod:`.plausibility`).
    quarantined: int = 0

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready form."""
        return dict(zip(_FIELDS, _values(self), strict=True))  # asdict deep-copies: 10x slower

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
#: The state field that carries each trend signal's last value.
_CARRIED: Final = {"t": "timestamp", "x": "x", "y": "y", "z": "z", "intensity": "intensity"}
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
    decay = TREND_TIME_CONSTANT_S / (TREND_TIME_CONSTANT_S + dt)

    missing = np.isnan(raw_intensity)
    filled = _forward_fill(raw_intensity, first, run, initial.get("intensity", 0.0))
    signals = {"t": t, "x": x, "y": y, "z": z, "intensity": filled}
    steps = np.column_stack(
        [c - previous(c, initial.get(_CARRIED[name], c[first])) for name, c in signals.items()]
    )
    leads = np.column_stack([initial.get(f"lead_{name}", 0.0) for name in _TRENDS])
    sums, leads_after = trend_sums(steps, decay, bounds, leads)
    span = sums[:, 0]
    rates = _rates(sums[:, 1:], span)  # d(x, y, z, intensity)/dt
    v_east, v_north, v_up = (
        np.asarray(v, dtype=np.float64)
        for v in pymap3d.ecef2enuv(rates[:, 0], rates[:, 1], rates[:, 2], lat, lon)
    )
    speed = np.sqrt(v_east**2 + v_north**2 + v_up**2)
    # Acceleration is the trend of speed, which needs two speeds: it starts at the third row.
    count_before = initial.get("count", 0.0).astype(np.int64)
    position = count_before[run] + np.arange(n) - first[run]
    speed_steps = np.column_stack([dt, speed - previous(speed, initial.get("speed", 0.0))])
    speed_steps[position < 2] = 0.0
    speed_leads = np.column_stack(
        [initial.get(name, 0.0) for name in ("lead_speed_t", "lead_speed")]
    )
    speed_sums, speed_leads_after = trend_sums(speed_steps, decay, bounds, speed_leads)
    acceleration = _rates(speed_sums[:, 1:], speed_sums[:, 0])[:, 0]

    running_max = np.maximum(
        _running_max(alt, run, bounds), initial.get("max_altitude", -np.inf)[run]
    )
    is_new_max = alt >= running_max
    time_of_max = _forward_fill(
        np.where(is_new_max, t, np.nan), first, run, initial.get("time_of_max", t[first])
    )
    reference = np.maximum(running_max, MIN_REFERENCE_ALTITUDE_M)
    running_min = np.minimum(
        -_running_max(-alt, run, bounds), initial.get("min_altitude", np.inf)[run]
    )
    rises = np.cumsum(alt - running_min >= MIN_RISE_M)
    rises_before_run = rises[first] - (alt[first] - running_min[first] >= MIN_RISE_M)
    established = (rises > rises_before_run[run]) | (initial.get("maximum_established", 0.0) > 0)[
        run
    ]
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
            rates[:, 3],
            alt / reference,
            running_max - alt,
            t - time_of_max,
            missing.astype(np.float64),
            established.astype(np.float64),
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
            **{f"lead_{name}": leads_after[:, j] for j, name in enumerate(_TRENDS)},
            "lead_speed_t": speed_leads_after[:, 0],
            "lead_speed": speed_leads_after[:, 1],
            "min_altitude": running_min[last],
            "maximum_established": established[last].astype(np.float64),
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


def point_features(
    timestamp: float,
    latitude: np.ndarray,
    longitude: np.ndarray,
    altitude: float,
    intensity: float,
    state: StreamState | None,
    xyz: tuple[float, float, float],
) -> tuple[list[float], StreamState]:
    """:func:`run_features` for one row of one stream, in plain floats.

    The service scores one point per request, where the array code spends hundreds of NumPy
    calls on one-element arrays (~0.3 ms, four times the model's own time). This is the same
    computation written per row: every step is the same IEEE operation on the same operands
    in the same order (``a * a`` where the arrays square, the trend recursion of
    :func:`trend_sums`, pymap3d on the same one-element arrays for the transcendental parts),
    so it gives the same bits; the tests compare the two on random streams, glitches and
    restarts included, and both against the golden tables.

    Args:
        timestamp: Unix seconds, after ``state.timestamp``.
        latitude: Degrees, a one-element array (what pymap3d is given in the array code).
        longitude: Degrees, a one-element array.
        altitude: Metres.
        intensity: Radiometric intensity; NaN where missing.
        state: State after the stream's earlier rows, or ``None`` at the stream's start.
        xyz: The row's ECEF coordinates (:func:`ecef`).

    Returns:
        The row's features in :data:`FEATURE_NAMES` order, and the state after it.
    """
    x, y, z = xyz
    s = state
    dt = timestamp - s.timestamp if s is not None else 0.0
    if s is not None and dt <= 0:
        raise ValueError("timestamps of a stream must strictly increase")
    decay = TREND_TIME_CONSTANT_S / (TREND_TIME_CONSTANT_S + dt)
    missing = math.isnan(intensity)
    filled = (s.intensity if s is not None else 0.0) if missing else intensity
    if s is None:  # a stream's first row: no step yet, nothing carried
        steps, leads = [0.0] * 5, [0.0] * 5
        speed_leads, speed_before, count = [0.0, 0.0], 0.0, 0
        max_before, min_before, time_of_max, established_before = -np.inf, np.inf, timestamp, False
        origin = (x, y, z)
    else:
        steps = [dt, x - s.x, y - s.y, z - s.z, filled - s.intensity]
        leads = [s.lead_t, s.lead_x, s.lead_y, s.lead_z, s.lead_intensity]
        speed_leads, speed_before, count = [s.lead_speed_t, s.lead_speed], s.speed, s.count
        max_before, min_before = s.max_altitude, s.min_altitude
        time_of_max, established_before = s.time_of_max, s.maximum_established > 0
        origin = (s.x0, s.y0, s.z0)
    sums = [lead + step for lead, step in zip(leads, steps, strict=True)]
    span = sums[0]
    rates = [value / span if span > 0 else 0.0 for value in sums[1:]]
    v_east, v_north, v_up = (
        float(np.asarray(v, dtype=np.float64)[0])
        for v in pymap3d.ecef2enuv(
            np.array([rates[0]]), np.array([rates[1]]), np.array([rates[2]]), latitude, longitude
        )
    )
    speed = math.sqrt(v_east * v_east + v_north * v_north + v_up * v_up)
    # Acceleration is the trend of speed, which needs two speeds: it starts at the third row.
    speed_steps = [dt, speed - speed_before] if count >= 2 else [0.0, 0.0]
    speed_sums = [lead + step for lead, step in zip(speed_leads, speed_steps, strict=True)]
    acceleration = speed_sums[1] / speed_sums[0] if speed_sums[0] > 0 else 0.0

    running_max = altitude if altitude >= max_before else max_before
    if altitude >= running_max:
        time_of_max = timestamp
    running_min = altitude if altitude <= min_before else min_before
    established = altitude - running_min >= MIN_RISE_M or established_before
    dx, dy, dz = x - origin[0], y - origin[1], z - origin[2]
    features = [
        float(latitude[0]),
        float(longitude[0]),
        altitude,
        filled,
        v_east,
        v_north,
        v_up,
        speed,
        acceleration,
        math.sqrt(dx * dx + dy * dy + dz * dz),
        rates[3],
        altitude / max(running_max, MIN_REFERENCE_ALTITUDE_M),
        running_max - altitude,
        timestamp - time_of_max,
        1.0 if missing else 0.0,
        1.0 if established else 0.0,
    ]
    after = StreamState(
        count=count + 1,
        timestamp=timestamp,
        x=x,
        y=y,
        z=z,
        altitude=altitude,
        speed=speed,
        intensity=filled,
        x0=origin[0],
        y0=origin[1],
        z0=origin[2],
        max_altitude=running_max,
        time_of_max=time_of_max,
        lead_t=decay * sums[0],
        lead_x=decay * sums[1],
        lead_y=decay * sums[2],
        lead_z=decay * sums[3],
        lead_intensity=decay * sums[4],
        lead_speed_t=decay * speed_sums[0],
        lead_speed=decay * speed_sums[1],
        min_altitude=running_min,
        maximum_established=1.0 if established else 0.0,
    )
    return features, after


def trend_sums(
    steps: np.ndarray, decay: np.ndarray, bounds: np.ndarray, leads: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Decayed sums of each row's steps and the steps before it in its run.

    Row ``i`` of a run gets ``S_i = L + step_i``, where ``L`` is carried from the row before:
    ``L = decay_i * S_i`` after row ``i`` (``leads`` before a run's first row). A rate is the
    ratio of two such sums, a signal's over time's: an average of the signal's recent steps per
    second, weighted towards the latest, which is exact when the signal changes linearly.

    The recursion runs row by row (one plain loop per run for a few runs, else one vectorised
    step per row position across runs); the arithmetic per row is the same either way, so a
    stream continued from its carried sums gets the same bits as the stream in one call.

    Args:
        steps: ``(n, m)``: each row's change of ``m`` signals since the row before.
        decay: ``(n,)``: how much of the sum carries past each row (0 < decay ≤ 1).
        bounds: Index of the first row of each run, then the row count.
        leads: ``(runs, m)``: the carried sums before each run.

    Returns:
        The sums ``S`` ``(n, m)``, and the carried sums after each run's last row ``(runs, m)``.
    """
    sums = np.empty_like(steps)
    after = np.array(leads, dtype=np.float64, copy=True)
    first, lengths = np.asarray(bounds[:-1]), np.diff(bounds)
    if len(lengths) < _LOOP_RUNS:
        for r, (begin, end) in enumerate(itertools.pairwise(bounds.tolist())):
            carried = after[r].tolist()
            out = []
            for row, d in zip(steps[begin:end].tolist(), decay[begin:end].tolist(), strict=True):
                total = [c + s for c, s in zip(carried, row, strict=True)]
                out.append(total)
                carried = [d * v for v in total]
            sums[begin:end] = out
            after[r] = carried
        return sums, after
    order = np.argsort(-lengths, kind="stable")  # longest first: the live runs are a prefix
    longest_first, carried = lengths[order], after[order]
    alive = np.searchsorted(-longest_first, -np.arange(longest_first[0]), side="left")
    # The rows laid out position by position (every run's k-th row, longest run first): each
    # step then adds and scales one contiguous slice, where gathering and scattering the rows
    # at every step cost several NumPy calls per step (thousands of steps per call).
    slot = np.empty_like(order)
    slot[order] = np.arange(len(order))
    run = np.repeat(np.arange(len(lengths)), lengths)
    offset = np.concatenate([[0], np.cumsum(alive)])
    laid = offset[np.arange(len(steps)) - first[run]] + slot[run]
    rows_laid = np.empty_like(laid)
    rows_laid[laid] = np.arange(len(laid))
    laid_steps, laid_decay = steps[rows_laid], decay[rows_laid, None]
    laid_sums = np.empty_like(steps)
    bounds_laid = offset.tolist()
    for k, live in enumerate(alive.tolist()):
        begin, end = bounds_laid[k], bounds_laid[k + 1]
        at_k = laid_sums[begin:end]
        np.add(carried[:live], laid_steps[begin:end], out=at_k)
        np.multiply(laid_decay[begin:end], at_k, out=carried[:live])
    sums[:] = laid_sums[laid]
    after[order] = carried
    return sums, after


def _rates(sums: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Each column of ``sums`` per second of ``span``; 0 where no time has passed yet."""
    rates: np.ndarray = np.divide(
        sums, span[:, None], out=np.zeros_like(sums), where=span[:, None] > 0
    )
    return rates


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


def _running_max(values: np.ndarray, run: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Maximum of each row and the rows before it in its run, exactly (no offset arithmetic).

    With runs of many rows each, one cumulative maximum per run. With many short runs (the
    service's batches of one-point streams), one over all rows, of ranks: each value is
    replaced by its rank, and each run's ranks are lifted above every earlier run's, so the
    maximum restarts at every run (a sort of all rows: for a chunk of 200,000 rows in 200
    runs, several times what the runs' own maxima cost).
    """
    n = len(values)
    if (len(bounds) - 1) * _ROWS_PER_RUN_FOR_LOOP <= n:
        running = np.empty_like(values)
        for begin, end in itertools.pairwise(bounds.tolist()):
            np.maximum.accumulate(values[begin:end], out=running[begin:end])
        return running
    order = np.argsort(values, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    lifted = np.maximum.accumulate(run.astype(np.int64) * n + rank)
    by_rank: np.ndarray = values[order[lifted - run * n]]
    return by_rank
