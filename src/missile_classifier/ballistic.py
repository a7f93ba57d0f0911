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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from missile_classifier import schema
from missile_classifier.atmosphere import SEA_LEVEL_DENSITY, density
from missile_classifier.progress import progress_bar
from missile_classifier.simulate import track_rng

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Mean Earth radius, m (IUGG mean radius R1, rounded to the kilometre).
EARTH_RADIUS_M: Final = 6_371_000.0
#: Earth's gravitational parameter GM, m^3/s^2 (WGS 84 / IERS value).
EARTH_MU: Final = 3.986004418e14
#: Standard gravity, m/s^2 (CGPM 1901), used only for thrust-to-weight checks.
STANDARD_GRAVITY: Final = 9.80665
#: Launch time of track 0 (2024-11-11 07:00:00 UTC); track k launches ``TRACK_SPACING_S * k`` later.
LAUNCH_EPOCH_S: Final = 1_731_308_400.0
#: Spacing of launch times between consecutive track ids, s (longer than any flight).
TRACK_SPACING_S: Final = 3_600.0

_METRES_PER_DEGREE: Final = EARTH_RADIUS_M * math.pi / 180.0
_PARAM_STREAM: Final = 0  # spawn-key suffix of a track's parameter stream
_SENSOR_STREAM: Final = 1  # spawn-key suffix of a track's sensor stream

#: Noise-free columns appended after ``schema.COLUMNS`` when ``include_truth`` is set.
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
    "track_id",
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
_INT_COLUMNS: Final = frozenset(
    (schema.TRACK_ID, schema.SENSOR_ID, schema.LABEL, "true_thrusting", "n_observations")
)
_TEXT_COLUMNS: Final = frozenset(("missile_class", "sensor_ids"))


@dataclass(frozen=True)
class MissileClass:
    """A missile class: the ranges each track parameter is drawn from (uniformly).

    Attributes:
        name: Class name written to ``tracks.missile_class``.
        weight: Relative frequency among simulated tracks.
        burn_time_s: Total burn time of the single-stage equivalent.
        delta_v_mps: Ideal (Tsiolkovsky) velocity gain of the boost.
        mass_ratio: Initial over burnout mass of the single-stage equivalent.
        vertical_rise_s: Time flown straight up before the pitch-over kick.
        kick_duration_s: Time the thrust stays tilted by the kick angle before the gravity turn.
        kick_angle_deg: Tilt of the thrust from the local vertical during the kick.
        burnout_flight_path_deg: Flight-path angle above the horizontal that the steering aims
            for at burnout; with the velocity gain it sets range and apogee.
        boost_ballistic_coefficient: ``m0 / (C_D A)`` at lift-off, kg/m^2; it falls with the mass.
        ballistic_coefficient: ``m / (C_D A)`` of the body that coasts and reenters, kg/m^2.
        plume_intensity: Radiometric intensity of the plume (0-1 scale).
        range_km: Ground ranges the parameter ranges were tuned to produce (checked by tests).
        apogee_km: Apogees the parameter ranges were tuned to produce (checked by tests).
    """

    name: str
    weight: float
    burn_time_s: tuple[float, float]
    delta_v_mps: tuple[float, float]
    mass_ratio: tuple[float, float]
    vertical_rise_s: tuple[float, float]
    kick_duration_s: tuple[float, float]
    kick_angle_deg: tuple[float, float]
    burnout_flight_path_deg: tuple[float, float]
    boost_ballistic_coefficient: tuple[float, float]
    ballistic_coefficient: tuple[float, float]
    plume_intensity: tuple[float, float]
    range_km: tuple[float, float]
    apogee_km: tuple[float, float]

    def __post_init__(self) -> None:
        """Reject empty ranges and boosts too weak to lift off."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and not 0 <= value[0] <= value[1]:
                raise ValueError(f"{self.name}.{f.name}: need 0 <= low <= high, got {value}")
        if self.weight < 0 or self.mass_ratio[0] <= 1:
            raise ValueError(f"{self.name}: weight must be >= 0 and mass ratio > 1")
        if self.min_lift_off_acceleration() < 1.2 * STANDARD_GRAVITY:
            raise ValueError(f"{self.name}: lift-off thrust-to-weight below 1.2 for some draws")

    def min_lift_off_acceleration(self) -> float:
        """Smallest lift-off thrust acceleration over the parameter box, m/s^2.

        ``a0 = dv (1 - 1/MR) / (t_b ln MR)`` falls with MR and t_b and rises with dv.
        """
        dv, mr, tb = self.delta_v_mps[0], self.mass_ratio[1], self.burn_time_s[1]
        return dv * (1.0 - 1.0 / mr) / (tb * math.log(mr))


@dataclass(frozen=True)
class SensorConfig:
    """One sensor of the network: how it samples and how wrong it is.

    Attributes:
        sensor_id: Value written to the ``sensor_id`` column.
        name: Human-readable description.
        interval_s: Nominal sampling interval (regular grid with a random phase).
        horizontal_sigma_m: Standard deviation of the north and of the east position error.
        altitude_sigma_m: Standard deviation of the altitude error.
        north_bias_m: Constant north position error.
        east_bias_m: Constant east position error.
        altitude_bias_m: Constant altitude error.
        intensity_gain: Multiplies the true radiometric intensity.
        intensity_sigma: Standard deviation of the additive intensity noise.
        dropout_probability: Chance that any single sample is lost.
        gap_probability: Chance per sample that an outage starts there.
        gap_mean_s: Mean (exponential) duration of such an outage.
        intensity_missing_probability: Chance that a kept sample has no intensity (NaN).
    """

    sensor_id: int
    name: str
    interval_s: float
    horizontal_sigma_m: float
    altitude_sigma_m: float
    north_bias_m: float
    east_bias_m: float
    altitude_bias_m: float
    intensity_gain: float
    intensity_sigma: float
    dropout_probability: float
    gap_probability: float
    gap_mean_s: float
    intensity_missing_probability: float

    def __post_init__(self) -> None:
        """Reject settings that cannot describe a sensor."""
        probabilities = (
            self.dropout_probability,
            self.gap_probability,
            self.intensity_missing_probability,
        )
        if self.interval_s <= 0 or not all(0 <= p < 1 for p in probabilities):
            raise ValueError(f"sensor {self.sensor_id}: need interval > 0, probabilities in [0, 1)")
        if min(self.horizontal_sigma_m, self.altitude_sigma_m, self.intensity_sigma) < 0:
            raise ValueError(f"sensor {self.sensor_id}: standard deviations must be >= 0")


#: Default class table; the range classes are those of the US DoD / Arms Control Association.
DEFAULT_CLASSES: Final = (
    MissileClass(
        name="SRBM",
        weight=0.4,
        burn_time_s=(40.0, 70.0),
        delta_v_mps=(2_000.0, 3_400.0),
        mass_ratio=(2.5, 3.5),
        vertical_rise_s=(5.0, 8.0),
        kick_duration_s=(8.0, 12.0),
        kick_angle_deg=(3.0, 6.0),
        burnout_flight_path_deg=(35.0, 48.0),
        boost_ballistic_coefficient=(20_000.0, 40_000.0),
        ballistic_coefficient=(1_000.0, 8_000.0),
        plume_intensity=(0.70, 0.85),
        range_km=(100.0, 1_000.0),
        apogee_km=(35.0, 350.0),
    ),
    MissileClass(
        name="MRBM",
        weight=0.25,
        burn_time_s=(60.0, 100.0),
        delta_v_mps=(3_900.0, 5_500.0),
        mass_ratio=(3.0, 4.5),
        vertical_rise_s=(6.0, 9.0),
        kick_duration_s=(8.0, 12.0),
        kick_angle_deg=(3.0, 5.0),
        burnout_flight_path_deg=(30.0, 42.0),
        boost_ballistic_coefficient=(25_000.0, 50_000.0),
        ballistic_coefficient=(2_000.0, 10_000.0),
        plume_intensity=(0.75, 0.90),
        range_km=(1_000.0, 3_000.0),
        apogee_km=(150.0, 850.0),
    ),
    MissileClass(
        name="IRBM",
        weight=0.15,
        burn_time_s=(100.0, 150.0),
        delta_v_mps=(5_900.0, 6_800.0),
        mass_ratio=(4.0, 5.0),
        vertical_rise_s=(7.0, 10.0),
        kick_duration_s=(8.0, 12.0),
        kick_angle_deg=(2.0, 4.0),
        burnout_flight_path_deg=(25.0, 36.0),
        boost_ballistic_coefficient=(30_000.0, 55_000.0),
        ballistic_coefficient=(3_000.0, 12_000.0),
        plume_intensity=(0.80, 0.95),
        range_km=(3_000.0, 5_500.0),
        apogee_km=(400.0, 1_250.0),
    ),
    MissileClass(
        name="ICBM",
        weight=0.2,
        burn_time_s=(150.0, 200.0),
        delta_v_mps=(7_500.0, 8_300.0),
        mass_ratio=(4.5, 6.0),
        vertical_rise_s=(8.0, 12.0),
        kick_duration_s=(8.0, 12.0),
        kick_angle_deg=(2.0, 3.0),
        burnout_flight_path_deg=(16.0, 21.0),
        boost_ballistic_coefficient=(35_000.0, 60_000.0),
        ballistic_coefficient=(5_000.0, 15_000.0),
        plume_intensity=(0.85, 1.00),
        range_km=(5_500.0, 13_000.0),
        apogee_km=(450.0, 1_600.0),
    ),
)

#: Default sensor network (ids 1-5); noise figures are illustrative, not of any real system.
DEFAULT_SENSORS: Final = (
    SensorConfig(
        sensor_id=1,
        name="space-based infrared",
        interval_s=1.0,
        horizontal_sigma_m=400.0,
        altitude_sigma_m=600.0,
        north_bias_m=-80.0,
        east_bias_m=60.0,
        altitude_bias_m=150.0,
        intensity_gain=1.0,
        intensity_sigma=0.02,
        dropout_probability=0.02,
        gap_probability=0.002,
        gap_mean_s=8.0,
        intensity_missing_probability=0.01,
    ),
    SensorConfig(
        sensor_id=2,
        name="early-warning radar",
        interval_s=2.0,
        horizontal_sigma_m=250.0,
        altitude_sigma_m=120.0,
        north_bias_m=40.0,
        east_bias_m=-30.0,
        altitude_bias_m=-60.0,
        intensity_gain=0.9,
        intensity_sigma=0.03,
        dropout_probability=0.05,
        gap_probability=0.005,
        gap_mean_s=12.0,
        intensity_missing_probability=0.03,
    ),
    SensorConfig(
        sensor_id=3,
        name="tracking radar",
        interval_s=0.5,
        horizontal_sigma_m=30.0,
        altitude_sigma_m=20.0,
        north_bias_m=5.0,
        east_bias_m=-5.0,
        altitude_bias_m=10.0,
        intensity_gain=1.0,
        intensity_sigma=0.01,
        dropout_probability=0.01,
        gap_probability=0.0,
        gap_mean_s=0.0,
        intensity_missing_probability=0.005,
    ),
    SensorConfig(
        sensor_id=4,
        name="X-band discrimination radar",
        interval_s=0.25,
        horizontal_sigma_m=10.0,
        altitude_sigma_m=8.0,
        north_bias_m=-2.0,
        east_bias_m=3.0,
        altitude_bias_m=-5.0,
        intensity_gain=0.95,
        intensity_sigma=0.015,
        dropout_probability=0.03,
        gap_probability=0.001,
        gap_mean_s=4.0,
        intensity_missing_probability=0.02,
    ),
    SensorConfig(
        sensor_id=5,
        name="airborne infrared",
        interval_s=1.5,
        horizontal_sigma_m=150.0,
        altitude_sigma_m=200.0,
        north_bias_m=20.0,
        east_bias_m=20.0,
        altitude_bias_m=40.0,
        intensity_gain=0.8,
        intensity_sigma=0.04,
        dropout_probability=0.08,
        gap_probability=0.004,
        gap_mean_s=6.0,
        intensity_missing_probability=0.05,
    ),
)


@dataclass(frozen=True)
class BallisticConfig:
    """Settings of the ballistic simulator; the defaults are the documented model.

    Attributes:
        interface_altitude_m: Atmospheric interface of the label rule (descending and below it).
        time_step_s: Fixed RK4 step; trajectories are stored at this spacing.
        classes: Missile classes drawn per track in proportion to their weights.
        sensors: Sensor network; each track is seen by ``min_sensors``-``max_sensors`` of them.
        min_sensors: Fewest distinct sensors per track.
        max_sensors: Most distinct sensors per track.
        max_launch_latitude_deg: Launch sites are drawn uniformly on the sphere up to this |lat|.
        detection_delay_s: The first sensor's first look comes this long after launch (range).
        secondary_coverage: Fraction of the flight a further sensor covers (range).
        cold_intensity: Intensity of the unheated, unpowered body (range, 0-1 scale).
        heating_intensity: Saturation level of the aero-heating intensity (range).
        heating_reference: ``rho v^3`` (W/m^2) at which heating reaches 63 % of saturation.
        steering_time_constant_s: Time constant of the flight-path-angle steering.
        max_steering_angle_deg: Largest angle between thrust and velocity while steering.
        plume_tail_s: Time constant of the plume's decay after burnout.
        chunk_size: Tracks integrated together; bounds memory (states of a chunk are kept).
    """

    interface_altitude_m: float = 100_000.0
    time_step_s: float = 0.5
    classes: tuple[MissileClass, ...] = DEFAULT_CLASSES
    sensors: tuple[SensorConfig, ...] = DEFAULT_SENSORS
    min_sensors: int = 1
    max_sensors: int = 3
    max_launch_latitude_deg: float = 70.0
    detection_delay_s: tuple[float, float] = (0.5, 5.0)
    secondary_coverage: tuple[float, float] = (0.3, 1.0)
    cold_intensity: tuple[float, float] = (0.02, 0.06)
    heating_intensity: tuple[float, float] = (0.55, 0.90)
    heating_reference: float = 2.0e7
    steering_time_constant_s: float = 8.0
    max_steering_angle_deg: float = 20.0
    plume_tail_s: float = 3.0
    chunk_size: int = 256

    def __post_init__(self) -> None:
        """Reject configurations the simulator cannot honour."""
        ids = [s.sensor_id for s in self.sensors]
        if len(set(ids)) != len(ids):
            raise ValueError("sensor ids must be unique")
        if not 1 <= self.min_sensors <= self.max_sensors <= len(self.sensors):
            raise ValueError("need 1 <= min_sensors <= max_sensors <= number of sensors")
        if not self.classes or sum(c.weight for c in self.classes) <= 0:
            raise ValueError("need at least one missile class with positive weight")
        if self.time_step_s <= 0 or self.chunk_size < 1 or self.interface_altitude_m <= 0:
            raise ValueError("time_step_s, chunk_size and interface_altitude_m must be positive")


@dataclass(frozen=True)
class BallisticResult:
    """What :func:`simulate_ballistic` returns.

    Attributes:
        observations: One row per sensor observation, columns ``schema.COLUMNS`` (then the
            truth columns ``TRUTH_COLUMNS`` when asked for), sorted by track, sensor, timestamp.
        tracks: One row per track with its drawn parameters and trajectory summary.
    """

    observations: pd.DataFrame
    tracks: pd.DataFrame


# --------------------------------------------------------------------------------------------
# Per-track parameters


@dataclass(frozen=True)
class _Params:
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

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> _Params:
        """The parameters of a subset of tracks."""
        return _Params(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _draw_one(track_id: int, seed: int, config: BallisticConfig) -> dict[str, float]:
    """Draw the parameters of one track from its own parameter stream."""
    rng = track_rng(seed, track_id, _PARAM_STREAM)
    weights = np.array([c.weight for c in config.classes])
    k = int(rng.choice(len(config.classes), p=weights / weights.sum()))
    c = config.classes[k]
    # Uniform on the sphere between +-max latitude: sin(lat) is uniform.
    s = math.sin(math.radians(config.max_launch_latitude_deg))
    dt = config.time_step_s

    def on_grid(bounds: tuple[float, float]) -> float:
        """Phase changes fall on the step grid: no RK4 step or interpolation straddles one."""
        return max(round(_uniform(rng, bounds) / dt), 1) * dt

    rise = on_grid(c.vertical_rise_s)
    return {
        "track_id": track_id,
        "class_index": k,
        "launch_lat": math.asin(rng.uniform(-s, s)),
        "launch_lon": rng.uniform(-math.pi, math.pi),
        "azimuth": rng.uniform(0.0, 2.0 * math.pi),
        "burn_time": on_grid(c.burn_time_s),
        "delta_v": _uniform(rng, c.delta_v_mps),
        "mass_ratio": _uniform(rng, c.mass_ratio),
        "vertical_rise": rise,
        "kick_end": rise + on_grid(c.kick_duration_s),
        "kick_angle": math.radians(_uniform(rng, c.kick_angle_deg)),
        "flight_path_target": math.radians(_uniform(rng, c.burnout_flight_path_deg)),
        "steer_tau": config.steering_time_constant_s,
        "steer_limit": math.sin(math.radians(config.max_steering_angle_deg)),
        "boost_beta": _uniform(rng, c.boost_ballistic_coefficient),
        "beta": _uniform(rng, c.ballistic_coefficient),
        "plume": _uniform(rng, c.plume_intensity),
        "cold": _uniform(rng, config.cold_intensity),
        "heat": _uniform(rng, config.heating_intensity),
    }


def _draw_params(track_ids: IntArray, seed: int, config: BallisticConfig) -> _Params:
    """Draw every track's parameters; row i belongs to ``track_ids[i]``."""
    rows = [_draw_one(int(t), seed, config) for t in track_ids]
    columns: dict[str, npt.NDArray[np.generic]] = {}
    for f in fields(_Params):
        dtype = np.int64 if f.name in ("track_id", "class_index") else np.float64
        columns[f.name] = np.array([row[f.name] for row in rows], dtype=dtype)
    return _Params(**columns)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Dynamics: state rows are x, y, vx, vy in the trajectory plane; the launch point is (0, R) and
# downrange is +x, so the downrange angle is atan2(x, y) and the altitude is |r| - R.


def _thrust(
    t: float, phase_t: float, s: FloatArray, r: FloatArray, v: FloatArray, p: _Params
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


def _drag_beta(t: float, phase_t: float, p: _Params) -> FloatArray:
    """Ballistic coefficient at time ``t``: the booster's falls with its mass, then the body's."""
    if phase_t >= p.max_burn_time:
        return p.beta
    mass_fraction = 1.0 - p.flow * np.minimum(t, p.burn_time)
    out: FloatArray = np.where(phase_t < p.burn_time, p.boost_beta * mass_fraction, p.beta)
    return out


def _derivative(t: float, phase_t: float, s: FloatArray, p: _Params) -> FloatArray:
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


def _rk4_step(t: float, s: FloatArray, dt: float, p: _Params) -> FloatArray:
    """One classical Runge-Kutta step of all tracks in ``s`` (one flight phase per step)."""
    mid = t + 0.5 * dt
    k1 = _derivative(t, mid, s, p)
    k2 = _derivative(mid, mid, s + 0.5 * dt * k1, p)
    k3 = _derivative(mid, mid, s + 0.5 * dt * k2, p)
    k4 = _derivative(t + dt, mid, s + dt * k3, p)
    out: FloatArray = s + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return out


@dataclass(frozen=True)
class _Trajectories:
    """Dense states of a chunk and when each track hit the ground.

    ``states[j, k]`` is track j's (x, y, vx, vy) at ``k * dt``; after impact it stays frozen
    at its first under-ground state. ``impact_step[j]`` is that first under-ground step.
    """

    states: FloatArray
    dt: float
    impact_step: IntArray
    impact_time: FloatArray


def _integrate(p: _Params, dt: float, max_time_s: float = 7_200.0) -> _Trajectories:
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
    return _Trajectories(states, dt, impact_step, _impact_time(states, dt, impact_step))


# --------------------------------------------------------------------------------------------
# Dense output: cubic Hermite interpolation of the stored states (positions and velocities).


def _hermite(
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
        pos, vel = _hermite(states, dt, step, column, t)
        r = np.hypot(pos[0], pos[1])
        t = np.clip(
            t - (r - EARTH_RADIUS_M) * r / (pos * vel).sum(axis=0), step * dt, (step + 1) * dt
        )
    out: FloatArray = t
    return out


# --------------------------------------------------------------------------------------------
# Truth at arbitrary times: geometry, ground track and radiometric intensity.

#: Plume brightness rises over this time after ignition, s.
_IGNITION_S: Final = 1.0
#: Fraction of plume brightness lost at sea level (denser air, smaller plume, extinction).
_PLUME_SEA_LEVEL_DIMMING: Final = 0.3


def _destination(
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


def _wrap_degrees(lon: FloatArray) -> FloatArray:
    """Wrap longitudes in degrees to [-180, 180) (guarding the rounding case of exactly 180)."""
    out = np.mod(lon + 180.0, 360.0) - 180.0
    result: FloatArray = np.where(out >= 180.0, out - 360.0, out)
    return result


def _intensity(
    t: FloatArray, altitude: FloatArray, speed: FloatArray, p: _Params, config: BallisticConfig
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


def _truth(
    traj: _Trajectories, p: _Params, column: IntArray, t: FloatArray, config: BallisticConfig
) -> dict[str, FloatArray]:
    """Interpolated true state at times ``t`` of chunk tracks ``column`` (``p`` per sample)."""
    step = np.minimum((t / traj.dt).astype(np.int64), traj.impact_step[column] - 1)
    pos, vel = _hermite(traj.states, traj.dt, step, column, t)
    r = np.hypot(pos[0], pos[1])
    altitude = np.maximum(r - EARTH_RADIUS_M, 0.0)
    speed = np.hypot(vel[0], vel[1])
    lat, lon = _destination(p.launch_lat, p.launch_lon, p.azimuth, np.arctan2(pos[0], pos[1]))
    return {
        "time_since_launch_s": t,
        "true_latitude": np.degrees(lat),
        "true_longitude": _wrap_degrees(np.degrees(lon)),
        "true_altitude": altitude,
        "true_speed": speed,
        "true_vertical_speed": (pos * vel).sum(axis=0) / r,
        "true_intensity": _intensity(t, altitude, speed, p, config),
        "true_thrusting": (t < p.burn_time).astype(np.float64),  # float: one dict type
    }


# --------------------------------------------------------------------------------------------
# Sensors: when each looks, and its unit noise (drawn from the track's sensor stream).


@dataclass(frozen=True)
class _Plan:
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
        return min(_uniform(rng, config.detection_delay_s), 0.5 * flight_time), flight_time
    length = _uniform(rng, config.secondary_coverage) * flight_time
    start = float(rng.uniform(0.0, flight_time - length))
    return start, start + length


def _in_gaps(t: FloatArray, starts: FloatArray, durations: FloatArray) -> npt.NDArray[np.bool_]:
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
    out: FloatArray = t[keep & ~_in_gaps(t, gap_starts, durations)]
    return out


def _plan_track(track_id: int, seed: int, flight_time: float, config: BallisticConfig) -> _Plan:
    """Choose 1-3 distinct sensors for a track, their sample times and noise."""
    rng = track_rng(seed, track_id, _SENSOR_STREAM)
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
    return _Plan(
        t=t,
        sensor=sensor,
        noise=rng.standard_normal((4, t.size)),
        missing=rng.random(t.size) < missing_p,
    )


def _sensor_table(config: BallisticConfig) -> dict[str, FloatArray]:
    """Sensor settings as arrays indexed by position in ``config.sensors``."""
    names = [f.name for f in fields(SensorConfig) if f.name not in ("name",)]
    return {n: np.array([getattr(s, n) for s in config.sensors], dtype=np.float64) for n in names}


def _observe(
    truth: dict[str, FloatArray], plan: _Plan, config: BallisticConfig
) -> dict[str, FloatArray]:
    """Apply each sample's sensor bias and noise to the truth."""
    s = {k: v[plan.sensor] for k, v in _sensor_table(config).items()}
    north = s["north_bias_m"] + s["horizontal_sigma_m"] * plan.noise[0]
    east = s["east_bias_m"] + s["horizontal_sigma_m"] * plan.noise[1]
    lat = truth["true_latitude"]
    cos_lat = np.maximum(np.cos(np.radians(lat)), 1e-6)
    intensity = s["intensity_gain"] * truth["true_intensity"] + s["intensity_sigma"] * plan.noise[3]
    return {
        schema.LATITUDE: np.clip(lat + north / _METRES_PER_DEGREE, -90.0, 90.0),
        schema.LONGITUDE: _wrap_degrees(
            truth["true_longitude"] + east / (_METRES_PER_DEGREE * cos_lat)
        ),
        schema.ALTITUDE: truth["true_altitude"]
        + s["altitude_bias_m"]
        + s["altitude_sigma_m"] * plan.noise[2],
        schema.INTENSITY: np.where(plan.missing, np.nan, intensity),
    }


# --------------------------------------------------------------------------------------------
# Chunks, summaries and the public entry point.


def _observe_chunk(
    p: _Params, traj: _Trajectories, seed: int, config: BallisticConfig, include_truth: bool
) -> tuple[dict[str, npt.NDArray[np.generic]], list[_Plan]]:
    """Observation columns of every track of a chunk (rows grouped by track, then sensor)."""
    plans = [
        _plan_track(int(tid), seed, float(ft), config)
        for tid, ft in zip(p.track_id, traj.impact_time, strict=True)
    ]
    column = np.repeat(np.arange(len(plans)), [plan.t.size for plan in plans])
    plan = _Plan(
        t=np.concatenate([pl.t for pl in plans]),
        sensor=np.concatenate([pl.sensor for pl in plans]),
        noise=np.concatenate([pl.noise for pl in plans], axis=1),
        missing=np.concatenate([pl.missing for pl in plans]),
    )
    per_sample = p.take(column)
    truth = _truth(traj, per_sample, column, plan.t, config)
    sensor_ids = np.array([s.sensor_id for s in config.sensors], dtype=np.int64)
    out: dict[str, npt.NDArray[np.generic]] = {
        schema.TIMESTAMP: LAUNCH_EPOCH_S + TRACK_SPACING_S * per_sample.track_id + plan.t,
        schema.TRACK_ID: per_sample.track_id,
        schema.SENSOR_ID: sensor_ids[plan.sensor],
        **_observe(truth, plan, config),
        schema.LABEL: (
            (truth["true_vertical_speed"] < 0.0)
            & (truth["true_altitude"] < config.interface_altitude_m)
        ).astype(np.int64),
    }
    if include_truth:
        out.update(truth)
        out["true_thrusting"] = truth["true_thrusting"].astype(np.int64)
    return out, plans


def _summarise(
    p: _Params, traj: _Trajectories, plans: list[_Plan], config: BallisticConfig
) -> dict[str, npt.NDArray[np.generic]]:
    """One row per track: its drawn parameters and what its trajectory did."""
    column = np.arange(len(p.track_id))
    burnout = np.minimum(p.burn_time, traj.impact_time)
    b_step = np.minimum((burnout / traj.dt).astype(np.int64), traj.impact_step - 1)
    b_pos, b_vel = _hermite(traj.states, traj.dt, b_step, column, burnout)
    b_r, b_v = np.hypot(*b_pos), np.hypot(*b_vel)
    i_pos, i_vel = _hermite(traj.states, traj.dt, traj.impact_step - 1, column, traj.impact_time)
    altitude = np.hypot(traj.states[..., 0], traj.states[..., 1]).T - EARTH_RADIUS_M
    downrange = np.arctan2(i_pos[0], i_pos[1])
    impact_lat, impact_lon = _destination(p.launch_lat, p.launch_lon, p.azimuth, downrange)
    sensor_ids = [s.sensor_id for s in config.sensors]
    return {
        "track_id": p.track_id,
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
        "impact_longitude": _wrap_degrees(np.degrees(impact_lon)),
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
    order = np.argsort(data[schema.TRACK_ID], kind="stable")
    return pd.DataFrame({c: v[order] for c, v in data.items()}, columns=list(columns))


def simulate_ballistic(
    track_ids: npt.NDArray[np.integer] | Sequence[int],
    seed: int,
    config: BallisticConfig = BallisticConfig(),
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
        include_truth: Append the noise-free ``TRUTH_COLUMNS`` after ``schema.COLUMNS``.
        progress: Draw a progress bar on stderr.

    Returns:
        Observations (``schema.COLUMNS`` [+ truth], sorted by track, sensor, timestamp) and one
        summary row per track.
    """
    ids = _as_track_ids(track_ids)
    params = _draw_params(ids, seed, config)
    # Chunks of similar velocity gain have similar flight times, so few steps are wasted.
    order = np.argsort(params.delta_v, kind="stable")
    columns = list(schema.COLUMNS) + (list(TRUTH_COLUMNS) if include_truth else [])
    observations: list[dict[str, npt.NDArray[np.generic]]] = []
    tracks: list[dict[str, npt.NDArray[np.generic]]] = []
    with progress_bar(len(ids), "Simulating", enabled=progress) as advance:
        for start in range(0, len(ids), config.chunk_size):
            p = params.take(order[start : start + config.chunk_size])
            traj = _integrate(p, config.time_step_s)
            chunk, plans = _observe_chunk(p, traj, seed, config, include_truth)
            observations.append(chunk)
            tracks.append(_summarise(p, traj, plans, config))
            advance(len(p.track_id))
    return BallisticResult(
        observations=_frame(observations, columns),
        tracks=_frame(tracks, TRACK_COLUMNS),
    )
