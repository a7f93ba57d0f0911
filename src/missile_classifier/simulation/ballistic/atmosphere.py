"""Piecewise-exponential atmospheric density for the ballistic simulator.

The simulator evaluates density four times per integration step for every track, so the model
has to be a cheap vectorised table look-up rather than a full standard-atmosphere computation.
Each layer ``i`` has a base altitude ``h_i``, base density ``rho_i`` and scale height ``H_i``;
inside the layer ``rho(h) = rho_i * exp(-(h - h_i) / H_i)``.

Sources (figures only):

* 0-25 km: U.S. Standard Atmosphere 1976 (NOAA/NASA/USAF, 1976) densities at 5-km steps of
  geometric altitude, joined by exponentials (scale height from consecutive values; the last
  one ends on the table's 25-km density so the profile is continuous). The single 0-25 km layer
  of the table below is up to 25 % off in the troposphere, where terminal drag and the boost
  happen, so we replace it.
* 25-1,000 km and above: Vallado, *Fundamentals of Astrodynamics and Applications*, 4th ed.
  (2013), Table 8-4 "Exponential atmospheric model" (CIRA-72 based), base altitude, nominal
  density and scale height per layer; the last layer is extended upwards.

Below sea level the sea-level density is used (the integrator may step a few metres under
ground before an impact is detected).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

#: Sea-level density, kg/m^3 (U.S. Standard Atmosphere 1976).
SEA_LEVEL_DENSITY: Final = 1.225

# U.S. Standard Atmosphere 1976, geometric altitude (km) -> density (kg/m^3).
_USSA76_KM: Final = np.array([0.0, 5.0, 10.0, 15.0, 20.0, 25.0])
_USSA76_RHO: Final = np.array([1.2250, 7.3643e-1, 4.1351e-1, 1.9476e-1, 8.8910e-2, 4.0084e-2])

# Vallado (2013) Table 8-4 from 25 km up, one row per layer.
_VALLADO_TABLE: Final = np.array(
    [
        # base altitude (km), nominal density (kg/m^3), scale height (km)
        (25.0, 3.899e-2, 6.349),
        (30.0, 1.774e-2, 6.682),
        (40.0, 3.972e-3, 7.554),
        (50.0, 1.057e-3, 8.382),
        (60.0, 3.206e-4, 7.714),
        (70.0, 8.770e-5, 6.549),
        (80.0, 1.905e-5, 5.799),
        (90.0, 3.396e-6, 5.382),
        (100.0, 5.297e-7, 5.877),
        (110.0, 9.661e-8, 7.263),
        (120.0, 2.438e-8, 9.473),
        (130.0, 8.484e-9, 12.636),
        (140.0, 3.845e-9, 16.149),
        (150.0, 2.070e-9, 22.523),
        (180.0, 5.464e-10, 29.740),
        (200.0, 2.789e-10, 37.105),
        (250.0, 7.248e-11, 45.546),
        (300.0, 2.418e-11, 53.628),
        (350.0, 9.518e-12, 53.298),
        (400.0, 3.725e-12, 58.515),
        (450.0, 1.585e-12, 60.828),
        (500.0, 6.967e-13, 63.822),
        (600.0, 1.454e-13, 71.835),
        (700.0, 3.614e-14, 88.667),
        (800.0, 1.170e-14, 124.64),
        (900.0, 5.245e-15, 181.05),
        (1000.0, 3.019e-15, 268.00),
    ]
)
_VALLADO_KM: Final = _VALLADO_TABLE[:, 0]
_VALLADO_RHO: Final = _VALLADO_TABLE[:, 1]
_VALLADO_H_KM: Final = _VALLADO_TABLE[:, 2]


def _troposphere_scale_heights() -> npt.NDArray[np.float64]:
    """Scale heights (km) that make each 5-km layer end on the next layer's base density."""
    ends = np.append(_USSA76_RHO[1:-1], _VALLADO_RHO[0])
    out: npt.NDArray[np.float64] = np.diff(_USSA76_KM) / np.log(_USSA76_RHO[:-1] / ends)
    return out


#: Layer table used by :func:`density`: base altitude (m), base density, scale height (m).
LAYER_BASE_M: Final = np.concatenate([_USSA76_KM[:-1], _VALLADO_KM]) * 1000.0
LAYER_DENSITY: Final = np.concatenate([_USSA76_RHO[:-1], _VALLADO_RHO])
LAYER_SCALE_HEIGHT_M: Final = np.concatenate([_troposphere_scale_heights(), _VALLADO_H_KM]) * 1000.0


def density(altitude_m: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Atmospheric density at geometric altitude(s) above the spherical Earth.

    Args:
        altitude_m: Altitude(s) in metres; any shape. Negative values get sea-level density.

    Returns:
        Density in kg/m^3, same shape as the input.
    """
    h = np.maximum(np.asarray(altitude_m, dtype=np.float64), 0.0)
    layer = np.searchsorted(LAYER_BASE_M, h, side="right") - 1
    out: npt.NDArray[np.float64] = LAYER_DENSITY[layer] * np.exp(
        (LAYER_BASE_M[layer] - h) / LAYER_SCALE_HEIGHT_M[layer]
    )
    return out
