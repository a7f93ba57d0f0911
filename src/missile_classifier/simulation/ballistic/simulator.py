"""Physics-based ``ballistic`` track simulator.

Each track is a point mass flown over a non-rotating spherical Earth under point-mass gravity,
thrust and drag: a boost with a vertical rise, a pitch-over kick and a steered gravity turn; a
coast above the atmosphere (where drag is negligible); and a reentry with drag in a
piecewise-exponential atmosphere until ground impact. One to three sensors observe each track with
their own noise, bias, sampling interval and dropouts. The label ``reentry_phase`` is 1 exactly
when the true body is descending below the atmospheric interface.

The equations, constants and their sources are in ``docs/ballistic.md``. All tracks of a chunk
are integrated together (numpy arrays across tracks, a Python loop only over time steps), and
every random draw of a track comes from streams keyed by ``(seed, track_id)``, so a track's data
never depends on which other tracks are simulated with it.

The configuration types, tables and constants live in :mod:`.config`, the trajectory in
:mod:`.flight` and the sensors in :mod:`.sensing`; this module assembles them into observation
and track frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from missile_classifier.columns import COLUMNS, LABEL, SENSOR_ID, TIMESTAMP, TRACK_ID
from missile_classifier.progress import progress_bar
from missile_classifier.simulation.ballistic.config import (
    EARTH_RADIUS_M,
    LAUNCH_EPOCH_S,
    TRACK_SPACING_S,
    BallisticConfig,
    IntArray,
)
from missile_classifier.simulation.ballistic.flight import (
    Params,
    Trajectories,
    destination,
    draw_params,
    hermite,
    integrate,
    wrap_degrees,
)
from missile_classifier.simulation.ballistic.sensing import Plan, observe, plan_track, true_state

#: Noise-free columns appended after ``COLUMNS`` when ``include_truth`` is set.
TRUTH_COLUMNS: Final = (
    "time_since_launch_s",
    "true_latitude",
    "true_longitude",
    "true_altitude",
    "true_speed",
    "true_vertical_speed",
    "true_intensity",
    "true_thrusting",
)
#: Columns of ``BallisticResult.tracks``, in order.
TRACK_COLUMNS: Final = (
    TRACK_ID,
    "missile_class",
    "launch_timestamp",
    "launch_latitude",
    "launch_longitude",
    "azimuth_deg",
    "burn_time_s",
    "delta_v_ideal",
    "mass_ratio",
    "kick_angle_deg",
    "target_flight_path_deg",
    "boost_ballistic_coefficient",
    "ballistic_coefficient",
    "burnout_speed",
    "burnout_altitude_m",
    "burnout_flight_path_deg",
    "apogee_m",
    "apogee_time_s",
    "ground_range_km",
    "flight_time_s",
    "impact_speed",
    "impact_latitude",
    "impact_longitude",
    "sensor_ids",
    "n_observations",
)
_INT_COLUMNS: Final = frozenset((TRACK_ID, SENSOR_ID, LABEL, "true_thrusting", "n_observations"))
_TEXT_COLUMNS: Final = frozenset(("missile_class", "sensor_ids"))


@dataclass(frozen=True)
class BallisticResult:
    """What :func:`simulate_ballistic` returns.

    Attributes:
        observations: One row per sensor observation, columns ``COLUMNS`` (then the
            truth columns ``TRUTH_COLUMNS`` when asked for), sorted by track, sensor, timestamp.
        tracks: One row per track with its drawn parameters and trajectory summary.
    """

    observations: pd.DataFrame
    tracks: pd.DataFrame


# --------------------------------------------------------------------------------------------
# Chunks, summaries and the public entry point.


def _observe_chunk(
    p: Params, traj: Trajectories, seed: int, config: BallisticConfig, include_truth: bool
) -> tuple[dict[str, npt.NDArray[np.generic]], list[Plan]]:
    """Observation columns of every track of a chunk (rows grouped by track, then sensor)."""
    plans = [
        plan_track(int(tid), seed, float(ft), config)
        for tid, ft in zip(p.track_id, traj.impact_time, strict=True)
    ]
    column = np.repeat(np.arange(len(plans)), [plan.t.size for plan in plans])
    plan = Plan(
        t=np.concatenate([pl.t for pl in plans]),
        sensor=np.concatenate([pl.sensor for pl in plans]),
        noise=np.concatenate([pl.noise for pl in plans], axis=1),
        missing=np.concatenate([pl.missing for pl in plans]),
    )
    per_sample = p.take(column)
    truth = true_state(traj, per_sample, column, plan.t, config)
    sensor_ids = np.array([s.sensor_id for s in config.sensors], dtype=np.int64)
    out: dict[str, npt.NDArray[np.generic]] = {
        TIMESTAMP: LAUNCH_EPOCH_S + TRACK_SPACING_S * per_sample.track_id + plan.t,
        TRACK_ID: per_sample.track_id,
        SENSOR_ID: sensor_ids[plan.sensor],
        **observe(truth, plan, config),
        LABEL: (
            (truth["true_vertical_speed"] < 0.0)
            & (truth["true_altitude"] < config.interface_altitude_m)
        ).astype(np.int64),
    }
    if include_truth:
        out.update(truth)
        out["true_thrusting"] = truth["true_thrusting"].astype(np.int64)
    return out, plans


def _summarise(
    p: Params, traj: Trajectories, plans: list[Plan], config: BallisticConfig
) -> dict[str, npt.NDArray[np.generic]]:
    """One row per track: its drawn parameters and what its trajectory did."""
    column = np.arange(len(p.track_id))
    burnout = np.minimum(p.burn_time, traj.impact_time)
    b_step = np.minimum((burnout / traj.dt).astype(np.int64), traj.impact_step - 1)
    b_pos, b_vel = hermite(traj.states, traj.dt, b_step, column, burnout)
    b_r, b_v = np.hypot(*b_pos), np.hypot(*b_vel)
    i_pos, i_vel = hermite(traj.states, traj.dt, traj.impact_step - 1, column, traj.impact_time)
    altitude = np.hypot(traj.states[..., 0], traj.states[..., 1]).T - EARTH_RADIUS_M
    downrange = np.arctan2(i_pos[0], i_pos[1])
    impact_lat, impact_lon = destination(p.launch_lat, p.launch_lon, p.azimuth, downrange)
    sensor_ids = [s.sensor_id for s in config.sensors]
    return {
        TRACK_ID: p.track_id,
        "missile_class": np.array([config.classes[k].name for k in p.class_index], dtype=object),
        "launch_timestamp": LAUNCH_EPOCH_S + TRACK_SPACING_S * p.track_id,
        "launch_latitude": np.degrees(p.launch_lat),
        "launch_longitude": np.degrees(p.launch_lon),
        "azimuth_deg": np.degrees(p.azimuth),
        "burn_time_s": p.burn_time,
        "delta_v_ideal": p.delta_v,
        "mass_ratio": p.mass_ratio,
        "kick_angle_deg": np.degrees(p.kick_angle),
        "target_flight_path_deg": np.degrees(p.flight_path_target),
        "boost_ballistic_coefficient": p.boost_beta,
        "ballistic_coefficient": p.beta,
        "burnout_speed": b_v,
        "burnout_altitude_m": b_r - EARTH_RADIUS_M,
        "burnout_flight_path_deg": np.degrees(np.arcsin((b_pos * b_vel).sum(axis=0) / (b_r * b_v))),
        "apogee_m": altitude.max(axis=0),
        "apogee_time_s": altitude.argmax(axis=0) * traj.dt,
        "ground_range_km": downrange * EARTH_RADIUS_M / 1000.0,
        "flight_time_s": traj.impact_time,
        "impact_speed": np.hypot(*i_vel),
        "impact_latitude": np.degrees(impact_lat),
        "impact_longitude": wrap_degrees(np.degrees(impact_lon)),
        "sensor_ids": np.array(
            [";".join(str(sensor_ids[i]) for i in np.unique(pl.sensor)) for pl in plans],
            dtype=object,
        ),
        "n_observations": np.array([pl.t.size for pl in plans], dtype=np.int64),
    }


def _as_track_ids(track_ids: npt.ArrayLike) -> IntArray:
    """Validate track ids: integers, non-negative (they key random streams), unique."""
    ids = np.asarray(track_ids)
    if ids.size == 0:
        return np.zeros(0, dtype=np.int64)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError("track_ids must be a 1-D sequence of integers")
    if ids.min() < 0 or np.unique(ids).size != ids.size:
        raise ValueError("track_ids must be non-negative and unique")
    out: IntArray = ids.astype(np.int64)
    return out


def _empty_column(name: str) -> npt.NDArray[np.generic]:
    """A zero-length column of the dtype ``name`` has in a non-empty result."""
    if name in _TEXT_COLUMNS:
        return np.zeros(0, dtype=object)
    return np.zeros(0, dtype=np.int64 if name in _INT_COLUMNS else np.float64)


def _frame(parts: list[dict[str, npt.NDArray[np.generic]]], columns: Sequence[str]) -> pd.DataFrame:
    """Concatenate column dicts into a frame with the given columns, sorted by track (stable)."""
    data = {
        c: np.concatenate([_empty_column(c), *(part[c] for part in parts)]).astype(
            _empty_column(c).dtype
        )
        for c in columns
    }
    order = np.argsort(data[TRACK_ID], kind="stable")
    return pd.DataFrame({c: v[order] for c, v in data.items()}, columns=list(columns))


def simulate_ballistic(
    track_ids: npt.NDArray[np.integer] | Sequence[int],
    seed: int,
    config: BallisticConfig = BallisticConfig(),  # noqa: B008 (frozen: safe to share)
    *,
    include_truth: bool = False,
    progress: bool = False,
) -> BallisticResult:
    """Simulate ballistic missile tracks and what 1-3 sensors report about each.

    Each track's draws come from random streams keyed by ``(seed, track_id)``, so the rows of a
    track are the same whichever other tracks are simulated alongside it.

    Args:
        track_ids: Unique non-negative track ids; track k launches at
            ``LAUNCH_EPOCH_S + TRACK_SPACING_S * k``.
        seed: Seed of every random draw.
        config: Physics, class table, sensor network and label settings.
        include_truth: Append the noise-free ``TRUTH_COLUMNS`` after ``COLUMNS``.
        progress: Draw a progress bar on stderr.

    Returns:
        Observations (``COLUMNS`` [+ truth], sorted by track, sensor, timestamp) and one
        summary row per track.
    """
    ids = _as_track_ids(track_ids)
    params = draw_params(ids, seed, config)
    # Chunks of similar velocity gain have similar flight times, so few steps are wasted.
    order = np.argsort(params.delta_v, kind="stable")
    columns = list(COLUMNS) + (list(TRUTH_COLUMNS) if include_truth else [])
    observations: list[dict[str, npt.NDArray[np.generic]]] = []
    tracks: list[dict[str, npt.NDArray[np.generic]]] = []
    with progress_bar(len(ids), "Simulating", enabled=progress) as advance:
        for start in range(0, len(ids), config.chunk_size):
            p = params.take(order[start : start + config.chunk_size])
            traj = integrate(p, config.time_step_s)
            chunk, plans = _observe_chunk(p, traj, seed, config, include_truth)
            observations.append(chunk)
            tracks.append(_summarise(p, traj, plans, config))
            advance(len(p.track_id))
    return BallisticResult(
        observations=_frame(observations, columns),
        tracks=_frame(tracks, TRACK_COLUMNS),
    )
