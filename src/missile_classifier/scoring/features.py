"""The one feature function, shared by training, batch scoring and the service.

Features are computed per stream (one track seen by one sensor), in time order, and causally:
row ``i`` uses rows ``0..i`` only. Everything a row needs from earlier rows is carried in a small
:class:`StreamState`, so a stream can be scored in one call over all its rows or resumed point by
point from a stored state, with the same floating-point operations and so the same answers.

Rates divide by the real time step (Δt from the timestamps), so irregular sampling and gaps
work. Missing intensities are filled with the last observed value of the stream (0 before the
first one) and flagged in ``intensity_missing``; no feature is ever NaN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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

    Plain floats and an int, so it serialises to JSON for a shared track store.
    """

    count: int
    timestamp: float
    x: float
    y: float
    z: float
    speed: float
    #: Last intensity after filling (0 until the stream's first observed value).
    intensity: float
    x0: float
    y0: float
    z0: float
    max_altitude: float
    time_of_max: float

    def to_dict(self) -> dict[str, float | int | bool]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, float | int | bool]) -> StreamState:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)  # type: ignore[arg-type]


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
    t = np.asarray(timestamp, dtype=np.float64)
    lat = np.asarray(latitude, dtype=np.float64)
    lon = np.asarray(longitude, dtype=np.float64)
    alt = np.asarray(altitude, dtype=np.float64)
    raw_intensity = np.asarray(intensity, dtype=np.float64)
    n = len(t)
    if n == 0:
        if state is None:
            raise ValueError("a stream needs at least one row")
        return np.empty((0, N_FEATURES)), state
    x, y, z = (np.asarray(v, dtype=np.float64) for v in pymap3d.geodetic2ecef(lat, lon, alt))

    # Prepend the carried previous row (if any) so that differences are one vector operation.
    fresh = state is None
    if state is None:
        prev_t, prev_xyz, prev_speed = t[:1], (x[:1], y[:1], z[:1]), np.zeros(1)
        x0, y0, z0 = float(x[0]), float(y[0]), float(z[0])
        start_max, start_t = -np.inf, float(t[0])
        count = 0
    else:
        prev_t = np.array([state.timestamp])
        prev_xyz = (np.array([state.x]), np.array([state.y]), np.array([state.z]))
        prev_speed = np.array([state.speed])
        x0, y0, z0 = state.x0, state.y0, state.z0
        start_max, start_t = state.max_altitude, state.time_of_max
        count = state.count

    dt = np.diff(np.concatenate([prev_t, t]))
    if np.any(dt[int(fresh) :] <= 0):
        raise ValueError("timestamps of a stream must strictly increase")
    safe_dt = np.where(dt > 0, dt, 1.0)  # the first row of a stream has no step: rates are 0
    d_ecef = [np.diff(np.concatenate([p, c])) for p, c in zip(prev_xyz, (x, y, z), strict=True)]
    v_east, v_north, v_up = (
        np.asarray(v, dtype=np.float64) / safe_dt
        for v in pymap3d.ecef2enuv(d_ecef[0], d_ecef[1], d_ecef[2], lat, lon)
    )
    speed = np.sqrt(v_east**2 + v_north**2 + v_up**2)
    speeds = np.concatenate([prev_speed, speed])
    acceleration = np.diff(speeds) / safe_dt
    # Acceleration needs two velocities, i.e. three rows: zero it for the stream's first two.
    acceleration[: max(0, 2 - count)] = 0.0

    missing = np.isnan(raw_intensity)
    filled = _forward_fill(raw_intensity, 0.0 if state is None else state.intensity)
    previous_intensity = filled[0] if state is None else state.intensity
    intensity_rate = np.diff(np.concatenate([[previous_intensity], filled])) / safe_dt

    running_max = np.maximum.accumulate(np.concatenate([[start_max], alt]))[1:]
    is_new_max = alt >= running_max
    time_of_max = _forward_fill(np.where(is_new_max, t, np.nan), start_t)
    reference = np.maximum(running_max, MIN_REFERENCE_ALTITUDE_M)

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
            np.sqrt((x - x0) ** 2 + (y - y0) ** 2 + (z - z0) ** 2),
            intensity_rate,
            dt,
            alt / reference,
            running_max - alt,
            t - time_of_max,
            missing.astype(np.float64),
        ]
    )
    new_state = StreamState(
        count=count + n,
        timestamp=float(t[-1]),
        x=float(x[-1]),
        y=float(y[-1]),
        z=float(z[-1]),
        speed=float(speeds[-1]),
        intensity=float(filled[-1]),
        x0=x0,
        y0=y0,
        z0=z0,
        max_altitude=float(running_max[-1]),
        time_of_max=float(time_of_max[-1]),
    )
    return features, new_state


def _forward_fill(values: np.ndarray, initial: float) -> np.ndarray:
    """Replace NaNs by the last non-NaN value before them (``initial`` before the first)."""
    padded = np.concatenate([[initial], values])
    index = np.where(np.isnan(padded), 0, np.arange(len(padded)))
    np.maximum.accumulate(index, out=index)
    return padded[index][1:]
