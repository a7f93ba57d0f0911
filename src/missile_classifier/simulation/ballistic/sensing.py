"""Sensing in the ``ballistic`` simulator: what is true at a sample time and what is reported.

The true state and radiometric intensity of a track at arbitrary times (interpolated from its
trajectory), when each sensor looks (observation windows, sampling grids, dropouts and outages)
and the bias and noise each sensor adds to what it sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

from missile_classifier.columns import ALTITUDE, INTENSITY, LATITUDE, LONGITUDE
from missile_classifier.simulation.ballistic.atmosphere import SEA_LEVEL_DENSITY, density
from missile_classifier.simulation.ballistic.config import (
    EARTH_RADIUS_M,
    SENSOR_STREAM,
    BallisticConfig,
    FloatArray,
    IntArray,
    SensorConfig,
)
from missile_classifier.simulation.ballistic.flight import (
    Params,
    Trajectories,
    destination,
    hermite,
    wrap_degrees,
)
from missile_classifier.simulation.rng import track_rng, uniform

_METRES_PER_DEGREE: Final = EARTH_RADIUS_M * math.pi / 180.0


# --------------------------------------------------------------------------------------------
# Truth at arbitrary times: geometry, ground track and radiometric intensity.

#: Plume brightness rises over this time after ignition, s.
_IGNITION_S: Final = 1.0
#: Fraction of plume brightness lost at sea level (denser air, smaller plume, extinction).
_PLUME_SEA_LEVEL_DIMMING: Final = 0.3


def _intensity(
    t: FloatArray, altitude: FloatArray, speed: FloatArray, p: Params, config: BallisticConfig
) -> FloatArray:
    """True radiometric intensity (0-1): plume, cold body and aero-heating, combined saturating.

    The three sources are combined as ``1 - (1 - plume)(1 - heat)(1 - cold)``: it adds small
    contributions and never exceeds 1 when they overlap (hot plume in dense air).
    """
    rho = density(altitude)
    after_burnout = np.maximum(t - p.burn_time, 0.0)
    shape = np.minimum(t / _IGNITION_S, 1.0) * np.exp(-after_burnout / config.plume_tail_s)
    plume = p.plume * shape * (1.0 - _PLUME_SEA_LEVEL_DIMMING * rho / SEA_LEVEL_DENSITY)
    heat = p.heat * -np.expm1(-rho * speed**3 / config.heating_reference)
    out: FloatArray = 1.0 - (1.0 - plume) * (1.0 - heat) * (1.0 - p.cold)
    return out


def true_state(
    traj: Trajectories, p: Params, column: IntArray, t: FloatArray, config: BallisticConfig
) -> dict[str, FloatArray]:
    """Interpolated true state at times ``t`` of chunk tracks ``column`` (``p`` per sample)."""
    step = np.minimum((t / traj.dt).astype(np.int64), traj.impact_step[column] - 1)
    pos, vel = hermite(traj.states, traj.dt, step, column, t)
    r = np.hypot(pos[0], pos[1])
    altitude = np.maximum(r - EARTH_RADIUS_M, 0.0)
    speed = np.hypot(vel[0], vel[1])
    lat, lon = destination(p.launch_lat, p.launch_lon, p.azimuth, np.arctan2(pos[0], pos[1]))
    return {
        "time_since_launch_s": t,
        "true_latitude": np.degrees(lat),
        "true_longitude": wrap_degrees(np.degrees(lon)),
        "true_altitude": altitude,
        "true_speed": speed,
        "true_vertical_speed": (pos * vel).sum(axis=0) / r,
        "true_intensity": _intensity(t, altitude, speed, p, config),
        "true_thrusting": (t < p.burn_time).astype(np.float64),  # float: one dict type
    }


# --------------------------------------------------------------------------------------------
# Sensors: when each looks, and its unit noise (drawn from the track's sensor stream).


@dataclass(frozen=True)
class Plan:
    """Samples of one track: time since launch, sensor index, unit noise (4 rows), missing flag."""

    t: FloatArray
    sensor: IntArray
    noise: FloatArray
    missing: npt.NDArray[np.bool_]


def _window(
    rng: np.random.Generator, rank: int, flight_time: float, config: BallisticConfig
) -> tuple[float, float]:
    """Observation window: the first sensor sees (almost) all the flight, others a part."""
    if rank == 0:
        return min(uniform(rng, config.detection_delay_s), 0.5 * flight_time), flight_time
    length = uniform(rng, config.secondary_coverage) * flight_time
    start = float(rng.uniform(0.0, flight_time - length))
    return start, start + length


def in_gaps(t: FloatArray, starts: FloatArray, durations: FloatArray) -> npt.NDArray[np.bool_]:
    """Which (sorted) times fall inside any outage [start, start + duration)."""
    if starts.size == 0:
        return np.zeros(t.shape, dtype=bool)
    ends = np.maximum.accumulate(starts + durations)
    last = np.searchsorted(starts, t, side="right") - 1
    return (last >= 0) & (t < ends[np.maximum(last, 0)])


def _sample_times(
    rng: np.random.Generator, sensor: SensorConfig, start: float, end: float
) -> FloatArray:
    """Regular grid with a random phase, thinned by single dropouts and multi-sample outages."""
    phase = float(rng.uniform(0.0, sensor.interval_s))
    n = max(math.floor((end - start - phase) / sensor.interval_s) + 1, 0)
    t: FloatArray = start + phase + sensor.interval_s * np.arange(n, dtype=np.float64)
    keep = rng.random(n) >= sensor.dropout_probability
    gap_starts: FloatArray = t[rng.random(n) < sensor.gap_probability]
    durations: FloatArray = rng.exponential(sensor.gap_mean_s, gap_starts.size)
    out: FloatArray = t[keep & ~in_gaps(t, gap_starts, durations)]
    return out


def plan_track(track_id: int, seed: int, flight_time: float, config: BallisticConfig) -> Plan:
    """Choose 1-3 distinct sensors for a track, their sample times and noise."""
    rng = track_rng(seed, track_id, SENSOR_STREAM)
    count = int(rng.integers(config.min_sensors, config.max_sensors + 1))
    chosen = rng.choice(len(config.sensors), size=count, replace=False)
    streams: list[tuple[int, FloatArray]] = []
    for rank, index in enumerate(chosen):
        start, end = _window(rng, rank, flight_time, config)
        t = _sample_times(rng, config.sensors[index], start, end)
        if t.size >= 2:  # a stream needs two points to have a time step
            streams.append((int(index), t))
    streams.sort(key=lambda s: config.sensors[s[0]].sensor_id)
    t = np.concatenate([np.zeros(0), *(t for _, t in streams)])
    sensor = np.concatenate(
        [np.zeros(0, dtype=np.int64), *(np.full(t.size, i, dtype=np.int64) for i, t in streams)]
    )
    missing_p = np.array([s.intensity_missing_probability for s in config.sensors])[sensor]
    return Plan(
        t=t,
        sensor=sensor,
        noise=rng.standard_normal((4, t.size)),
        missing=rng.random(t.size) < missing_p,
    )


def _sensor_table(config: BallisticConfig) -> dict[str, FloatArray]:
    """Sensor settings as arrays indexed by position in ``config.sensors``."""
    names = [f.name for f in fields(SensorConfig) if f.name not in ("name",)]
    return {n: np.array([getattr(s, n) for s in config.sensors], dtype=np.float64) for n in names}


def observe(
    truth: dict[str, FloatArray], plan: Plan, config: BallisticConfig
) -> dict[str, FloatArray]:
    """Apply each sample's sensor bias and noise to the truth."""
    s = {k: v[plan.sensor] for k, v in _sensor_table(config).items()}
    north = s["north_bias_m"] + s["horizontal_sigma_m"] * plan.noise[0]
    east = s["east_bias_m"] + s["horizontal_sigma_m"] * plan.noise[1]
    lat = truth["true_latitude"]
    cos_lat = np.maximum(np.cos(np.radians(lat)), 1e-6)
    intensity = s["intensity_gain"] * truth["true_intensity"] + s["intensity_sigma"] * plan.noise[3]
    return {
        LATITUDE: np.clip(lat + north / _METRES_PER_DEGREE, -90.0, 90.0),
        LONGITUDE: wrap_degrees(truth["true_longitude"] + east / (_METRES_PER_DEGREE * cos_lat)),
        ALTITUDE: truth["true_altitude"]
        + s["altitude_bias_m"]
        + s["altitude_sigma_m"] * plan.noise[2],
        INTENSITY: np.where(plan.missing, np.nan, intensity),
    }
