"""Configuration of the ``ballistic`` simulator: physical constants, classes and sensors.

``MissileClass`` and ``DEFAULT_CLASSES`` say what a track's parameters are drawn from,
``SensorConfig`` and ``DEFAULT_SENSORS`` describe the sensor network, and ``BallisticConfig``
bundles them with the physics and label settings. The constants and their sources are in
``docs/ballistic.md``. The array types every ballistic module annotates with live here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

#: Arrays of the simulator: one entry per track or per sample.
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

# Spawn-key suffixes of a track's random streams (kept together so they stay distinct).
PARAM_STREAM: Final = 0  # spawn-key suffix of a track's parameter stream
SENSOR_STREAM: Final = 1  # spawn-key suffix of a track's sensor stream


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
