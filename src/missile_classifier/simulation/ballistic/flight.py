"""Flight of the ``ballistic`` simulator: per-track parameters and the trajectory.

Draws each track's parameters from its own random stream, flies all tracks of a chunk together
under gravity, thrust and drag with a fixed-step RK4 (a boost with a vertical rise, a pitch-over
kick and a steered gravity turn, then coast and reentry), interpolates the stored states with
cubic Hermite polynomials, finds the impact time and maps trajectory-plane angles onto the
globe. The equations and their sources are in ``docs/ballistic.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np
import numpy.typing as npt

from missile_classifier.simulation.ballistic.atmosphere import density
from missile_classifier.simulation.ballistic.config import (
    EARTH_MU,
    EARTH_RADIUS_M,
    PARAM_STREAM,
    BallisticConfig,
    FloatArray,
    IntArray,
)
from missile_classifier.simulation.rng import track_rng, uniform

# --------------------------------------------------------------------------------------------
# Per-track parameters


@dataclass(frozen=True)
class Params:
    """Per-track parameters of a chunk, one array entry per track."""

    track_id: IntArray
    class_index: IntArray
    launch_lat: FloatArray  # rad
    launch_lon: FloatArray  # rad
    azimuth: FloatArray  # rad, clockwise from north
    burn_time: FloatArray
    delta_v: FloatArray
    mass_ratio: FloatArray
    vertical_rise: FloatArray
    kick_end: FloatArray  # end of the kick = start of the steered gravity turn
    kick_angle: FloatArray  # rad
    flight_path_target: FloatArray  # rad above the local horizontal at burnout
    steer_tau: FloatArray  # s
    steer_limit: FloatArray  # sine of the largest steering angle
    boost_beta: FloatArray
    beta: FloatArray
    plume: FloatArray
    cold: FloatArray
    heat: FloatArray

    @cached_property
    def max_burn_time(self) -> float:
        """Latest burnout in the chunk: after it no track thrusts."""
        return float(self.burn_time.max(initial=0.0))

    @cached_property
    def flow(self) -> FloatArray:
        """Mass flow as a fraction of lift-off mass per second, 1/s."""
        out: FloatArray = (1.0 - 1.0 / self.mass_ratio) / self.burn_time
        return out

    @cached_property
    def exhaust_velocity(self) -> FloatArray:
        """Effective exhaust velocity that makes Tsiolkovsky give ``delta_v``, m/s."""
        out: FloatArray = self.delta_v / np.log(self.mass_ratio)
        return out

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> Params:
        """The parameters of a subset of tracks."""
        return Params(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def _draw_one(track_id: int, seed: int, config: BallisticConfig) -> dict[str, float]:
    """Draw the parameters of one track from its own parameter stream."""
    rng = track_rng(seed, track_id, PARAM_STREAM)
    weights = np.array([c.weight for c in config.classes])
    k = int(rng.choice(len(config.classes), p=weights / weights.sum()))
    c = config.classes[k]
    # Uniform on the sphere between +-max latitude: sin(lat) is uniform.
    s = math.sin(math.radians(config.max_launch_latitude_deg))
    dt = config.time_step_s

    def on_grid(bounds: tuple[float, float]) -> float:
        """Phase changes fall on the step grid: no RK4 step or interpolation straddles one."""
        return max(round(uniform(rng, bounds) / dt), 1) * dt

    rise = on_grid(c.vertical_rise_s)
    return {
        "track_id": track_id,
        "class_index": k,
        "launch_lat": math.asin(rng.uniform(-s, s)),
        "launch_lon": rng.uniform(-math.pi, math.pi),
        "azimuth": rng.uniform(0.0, 2.0 * math.pi),
        "burn_time": on_grid(c.burn_time_s),
        "delta_v": uniform(rng, c.delta_v_mps),
        "mass_ratio": uniform(rng, c.mass_ratio),
        "vertical_rise": rise,
        "kick_end": rise + on_grid(c.kick_duration_s),
        "kick_angle": math.radians(uniform(rng, c.kick_angle_deg)),
        "flight_path_target": math.radians(uniform(rng, c.burnout_flight_path_deg)),
        "steer_tau": config.steering_time_constant_s,
        "steer_limit": math.sin(math.radians(config.max_steering_angle_deg)),
        "boost_beta": uniform(rng, c.boost_ballistic_coefficient),
        "beta": uniform(rng, c.ballistic_coefficient),
        "plume": uniform(rng, c.plume_intensity),
        "cold": uniform(rng, config.cold_intensity),
        "heat": uniform(rng, config.heating_intensity),
    }


def draw_params(track_ids: IntArray, seed: int, config: BallisticConfig) -> Params:
    """Draw every track's parameters; row i belongs to ``track_ids[i]``."""
    rows = [_draw_one(int(t), seed, config) for t in track_ids]
    columns: dict[str, npt.NDArray[np.generic]] = {}
    for f in fields(Params):
        dtype = np.int64 if f.name in ("track_id", "class_index") else np.float64
        columns[f.name] = np.array([row[f.name] for row in rows], dtype=dtype)
    return Params(**columns)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Dynamics: state rows are x, y, vx, vy in the trajectory plane; the launch point is (0, R) and
# downrange is +x, so the downrange angle is atan2(x, y) and the altitude is |r| - R.


def _thrust(
    t: float, phase_t: float, s: FloatArray, r: FloatArray, v: FloatArray, p: Params
) -> FloatArray:
    """Thrust acceleration (rows ax, ay) at time ``t``: vertical rise, kick, then steering.

    ``phase_t`` (the middle of the current step) decides the flight phase; phase changes lie on
    the step grid, so every RK4 stage of a step sees the same phase.

    After the kick the thrust follows the velocity, turned by an angle ``alpha`` (at most
    ``p.steer_limit``) that drives the flight-path angle ``gamma`` towards its burnout target:
    ``v dgamma/dt = a_T sin(alpha) - (g - v^2/r) cos(gamma)`` with the wanted
    ``dgamma/dt = (gamma* - gamma) / tau``. With ``alpha = 0`` this is a plain gravity turn.
    """
    x, y, vx, vy = s
    burning = phase_t < p.burn_time
    mass_fraction = 1.0 - p.flow * np.minimum(t, p.burn_time)
    magnitude = np.where(burning, p.exhaust_velocity * p.flow / mass_fraction, 0.0)
    speed = np.maximum(v, 1e-9)
    sin_gamma = np.clip((x * vx + y * vy) / (r * speed), -1.0, 1.0)
    cos_gamma = np.sqrt(1.0 - sin_gamma * sin_gamma)
    wanted = (speed * (p.flight_path_target - np.arcsin(sin_gamma)) / p.steer_tau) + (
        EARTH_MU / (r * r) - speed * speed / r
    ) * cos_gamma
    sin_a = np.clip(wanted / np.maximum(magnitude, 1e-9), -p.steer_limit, p.steer_limit)
    cos_a = np.sqrt(1.0 - sin_a * sin_a)
    # Velocity frame: along v and its normal rotated towards "up" (counter-clockwise).
    steer_x = (cos_a * vx - sin_a * vy) / speed
    steer_y = (cos_a * vy + sin_a * vx) / speed
    # Pitch frame: cos(tilt) up + sin(tilt) downrange, with up = r/|r|, downrange = (y, -x)/|r|.
    tilt = np.where(phase_t < p.vertical_rise, 0.0, p.kick_angle)
    cos_t, sin_t = np.cos(tilt), np.sin(tilt)
    steering = phase_t >= p.kick_end
    ux = np.where(steering, steer_x, (cos_t * x + sin_t * y) / r)
    uy = np.where(steering, steer_y, (cos_t * y - sin_t * x) / r)
    return np.stack((magnitude * ux, magnitude * uy))


def _drag_beta(t: float, phase_t: float, p: Params) -> FloatArray:
    """Ballistic coefficient at time ``t``: the booster's falls with its mass, then the body's."""
    if phase_t >= p.max_burn_time:
        return p.beta
    mass_fraction = 1.0 - p.flow * np.minimum(t, p.burn_time)
    out: FloatArray = np.where(phase_t < p.burn_time, p.boost_beta * mass_fraction, p.beta)
    return out


def _derivative(t: float, phase_t: float, s: FloatArray, p: Params) -> FloatArray:
    """Time derivative of the state: gravity + thrust + drag (rows vx, vy, ax, ay)."""
    x, y, vx, vy = s
    r2 = x * x + y * y
    r = np.sqrt(r2)
    v = np.sqrt(vx * vx + vy * vy)
    gravity = -EARTH_MU / (r2 * r)
    drag = -density(r - EARTH_RADIUS_M) * v / (2.0 * _drag_beta(t, phase_t, p))
    ax = gravity * x + drag * vx
    ay = gravity * y + drag * vy
    if phase_t < p.max_burn_time:
        thrust = _thrust(t, phase_t, s, r, v, p)
        ax, ay = ax + thrust[0], ay + thrust[1]
    return np.stack((vx, vy, ax, ay))


def _rk4_step(t: float, s: FloatArray, dt: float, p: Params) -> FloatArray:
    """One classical Runge-Kutta step of all tracks in ``s`` (one flight phase per step)."""
    mid = t + 0.5 * dt
    k1 = _derivative(t, mid, s, p)
    k2 = _derivative(mid, mid, s + 0.5 * dt * k1, p)
    k3 = _derivative(mid, mid, s + 0.5 * dt * k2, p)
    k4 = _derivative(t + dt, mid, s + dt * k3, p)
    out: FloatArray = s + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return out


@dataclass(frozen=True)
class Trajectories:
    """Dense states of a chunk and when each track hit the ground.

    ``states[j, k]`` is track j's (x, y, vx, vy) at ``k * dt``; after impact it stays frozen
    at its first under-ground state. ``impact_step[j]`` is that first under-ground step.
    """

    states: FloatArray
    dt: float
    impact_step: IntArray
    impact_time: FloatArray


def integrate(p: Params, dt: float, max_time_s: float = 7_200.0) -> Trajectories:
    """Fly every track of a chunk from lift-off to impact with a fixed-step RK4.

    Tracks that have landed are dropped from the working arrays, so a chunk costs about as much
    as its longest flight, not (longest flight x tracks).
    """
    n = len(p.track_id)
    state = np.zeros((4, n))
    state[1] = EARTH_RADIUS_M
    frames = [state.T.copy()]  # (tracks, 4): a sample's state is one contiguous row
    impact_step = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    work, current = p, state
    step = 0
    while active.size:
        current = _rk4_step(step * dt, current, dt, work)
        step += 1
        frame = frames[-1].copy()
        frame[active] = current.T
        frames.append(frame)
        landed = np.hypot(current[0], current[1]) < EARTH_RADIUS_M
        if landed.any():
            impact_step[active[landed]] = step
            active, current, work = active[~landed], current[:, ~landed], work.take(~landed)
        if step * dt > max_time_s:
            raise RuntimeError(f"tracks {p.track_id[active]} still flying after {max_time_s} s")
    states = np.stack(frames, axis=1)  # a track's steps contiguous: fast sampling later
    return Trajectories(states, dt, impact_step, _impact_time(states, dt, impact_step))


# --------------------------------------------------------------------------------------------
# Dense output: cubic Hermite interpolation of the stored states (positions and velocities).


def hermite(
    states: FloatArray, dt: float, step: IntArray, column: IntArray, t: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Position and velocity (each shape (2, m)) at times ``t`` inside steps ``step``.

    Args:
        states: Dense states, shape (tracks, steps, 4).
        dt: Spacing of the dense states.
        step: Index k of the interval [k dt, (k+1) dt] holding each time.
        column: Track column of each time in ``states``.
        t: Times since launch.
    """
    a, b = states[column, step].T.copy(), states[column, step + 1].T.copy()
    pa, va, pb, vb = a[:2], a[2:], b[:2], b[2:]
    u = t / dt - step
    # Cubic in u through both ends with the right slopes, written in Horner form.
    delta = pb - pa
    c2 = 3.0 * delta - dt * (2.0 * va + vb)
    c3 = dt * (va + vb) - 2.0 * delta
    pos = pa + u * (dt * va + u * (c2 + u * c3))
    vel = va + u * (2.0 * c2 + 3.0 * u * c3) / dt
    return pos, vel


def _impact_time(states: FloatArray, dt: float, impact_step: IntArray) -> FloatArray:
    """Time at which each track's interpolated radius equals R (Newton on the Hermite cubic)."""
    column = np.arange(len(impact_step))
    step = impact_step - 1
    r0 = np.hypot(states[column, step, 0], states[column, step, 1])
    r1 = np.hypot(states[column, step + 1, 0], states[column, step + 1, 1])
    t = (step + (r0 - EARTH_RADIUS_M) / (r0 - r1)) * dt
    for _ in range(4):
        pos, vel = hermite(states, dt, step, column, t)
        r = np.hypot(pos[0], pos[1])
        t = np.clip(
            t - (r - EARTH_RADIUS_M) * r / (pos * vel).sum(axis=0), step * dt, (step + 1) * dt
        )
    out: FloatArray = t
    return out


# --------------------------------------------------------------------------------------------
# Ground track: from the trajectory plane to latitude and longitude.


def destination(
    lat: FloatArray, lon: FloatArray, azimuth: FloatArray, angle: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Great-circle destination (rad) ``angle`` radians from (lat, lon) along ``azimuth``.

    Longitudes are wrapped to [-pi, pi).
    """
    sin_lat = np.sin(lat) * np.cos(angle) + np.cos(lat) * np.sin(angle) * np.cos(azimuth)
    lat2 = np.arcsin(np.clip(sin_lat, -1.0, 1.0))
    lon2 = lon + np.arctan2(
        np.sin(azimuth) * np.sin(angle) * np.cos(lat), np.cos(angle) - np.sin(lat) * sin_lat
    )
    return lat2, np.mod(lon2 + np.pi, 2.0 * np.pi) - np.pi


def wrap_degrees(lon: FloatArray) -> FloatArray:
    """Wrap longitudes in degrees to [-180, 180) (guarding the rounding case of exactly 180)."""
    out = np.mod(lon + 180.0, 360.0) - 180.0
    result: FloatArray = np.where(out >= 180.0, out - 360.0, out)
    return result
