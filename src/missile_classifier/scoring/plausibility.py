"""What an observation may be: value limits, and the jump rule that quarantines a glitch.

NumPy only. Two kinds of check, both applied identically by CSV validation, ``predict`` and the
service:

- **Limits** on every value (:data:`LIMITS`). A value outside them is not a measurement of a
  missile (an altitude of 1e308 m, a timestamp in the year 3000): the row is refused, with a
  422 from the API and a :class:`~missile_classifier.schema.SchemaError` from a CSV file.
- **The jump rule** on consecutive points of one stream (:func:`accepted_rows`). A point whose
  altitude or position moved further from the stream's last accepted point than anything
  ballistic can move in the time between them is a sensor glitch. It is *quarantined*: it gets
  the stream's last accepted answer, marked, and does not enter the stream's state, so one bad
  value cannot rewrite the running maximum for the rest of the track. Points that keep
  disagreeing with the state for long (at least :data:`RESTART_AFTER` of them, and
  :data:`RESTART_AFTER_S` seconds after the last accepted point) mean the state itself was
  wrong (a glitch on the stream's first point) or the track was re-associated: the stream
  restarts at that point. A burst of glitches shorter than that is quarantined whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

#: Inclusive limits of every number an observation carries.
#: - timestamp: Unix seconds from 1970 to 2100-01-01;
#: - altitude: 5 km below sea level (below the lowest land, -430 m, by 6 σ of the noisiest
#:   altitude sensor we simulate, 600 m, on a track at the ground) up to 10,000 km, above the
#:   highest ballistic apogee on record (7,688 km, Hwasong-19, 31 October 2024, per Japan's
#:   Ministry of Defense);
#: - radiometric_intensity: nominally 0–1; ±1,000 leaves room for other units and catches garbage;
#: - ids: the int64 range the arrays and the CSV reader hold.
LIMITS: Final = {
    "timestamp": (0.0, 4_102_444_800.0),
    "latitude": (-90.0, 90.0),
    "longitude": (-180.0, 180.0),
    "altitude": (-5_000.0, 10_000_000.0),
    "radiometric_intensity": (-1_000.0, 1_000.0),
}
ID_LIMITS: Final = (-(2**63), 2**63 - 1)

#: No ballistic object climbs or falls faster than this (escape velocity is 11.2 km/s).
MAX_SPEED_M_S: Final = 12_000.0
#: Nor moves in a straight line faster than this. Not 12 km/s: the challenge tracks cross
#: ~5,000 km in 300–600 s, 9.5–18.7 km/s of straight-line speed on the `make run` data (a
#: 37 s burst of lost rows there put the next point past a 12 km/s limit, and the stream,
#: quarantined until it restarted, lost its maximum).
MAX_POSITION_SPEED_M_S: Final = 25_000.0
#: Slack on top of the reach (speed × Δt) for measurement noise: 2 km of altitude, 50 km of
#: position. With the reach, the limit is ≥ 10 σ of the difference of two samples of every
#: sensor we simulate (the noisiest altitude, 600 m every 1 s: 14 km against σ 850 m; a 0.03°
#: lat/lon noise, σ 4.7 km per axis: > 50 km).
ALTITUDE_SLACK_M: Final = 2_000.0
POSITION_SLACK_M: Final = 50_000.0
#: A disagreeing point restarts its stream once at least this many points in a row were
#: quarantined before it and it comes at least ``RESTART_AFTER_S`` after the last accepted
#: point: glitches come alone or in short bursts, a wrong state disagrees with everything.
RESTART_AFTER: Final = 3
RESTART_AFTER_S: Final = 10.0

#: Why a point was quarantined (the reason the API and logs give).
ALTITUDE_JUMP: Final = "altitude_jump"
POSITION_JUMP: Final = "position_jump"


def jump_limits(dt: np.ndarray | float) -> tuple[Any, Any]:
    """Largest plausible altitude change and position change (metres) over ``dt`` seconds
    (arrays of ``dt``, or one)."""
    seconds = np.abs(dt)
    return (
        MAX_SPEED_M_S * seconds + ALTITUDE_SLACK_M,
        MAX_POSITION_SPEED_M_S * seconds + POSITION_SLACK_M,
    )


def implausible(dt: np.ndarray, d_altitude: np.ndarray, d_position: np.ndarray) -> np.ndarray:
    """Whether each step (Δt, Δaltitude, straight-line Δposition) is too large to be real."""
    max_altitude, max_position = jump_limits(dt)
    too_far: np.ndarray = (np.abs(d_altitude) > max_altitude) | (d_position > max_position)
    return too_far


def jump_reason(dt: float, d_altitude: float) -> str:
    """Which rule a step broke: the altitude rule is named first when both are broken."""
    max_altitude, _ = jump_limits(np.array([dt]))
    return ALTITUDE_JUMP if abs(d_altitude) > float(max_altitude[0]) else POSITION_JUMP


#: Codes of :attr:`Screening.reason`: 0 for an accepted point, else the rule it broke.
REASONS: Final = (None, ALTITUDE_JUMP, POSITION_JUMP)


@dataclass(frozen=True)
class Reference:
    """Each stream's last accepted point before these rows (``known`` False: a new stream)."""

    known: np.ndarray
    timestamp: np.ndarray
    altitude: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    #: Points quarantined in a row just before these rows.
    quarantined: np.ndarray


@dataclass(frozen=True)
class Screening:
    """Which rows enter their stream's state, per row, and what each stream ends with."""

    #: The point enters the stream (its own features, window and answer).
    accepted: np.ndarray
    #: The point starts its stream afresh (accepted, with the earlier state dropped).
    restart: np.ndarray
    #: Index into :data:`REASONS`: 0 if accepted, else the rule the point broke.
    reason: np.ndarray
    #: Per stream: points quarantined in a row at the end of these rows.
    trailing_quarantined: np.ndarray


def screen(
    timestamp: np.ndarray,
    altitude: np.ndarray,
    xyz: tuple[np.ndarray, np.ndarray, np.ndarray],
    bounds: np.ndarray,
    reference: Reference,
) -> Screening:
    """Apply the jump rule to rows grouped into time-ordered streams.

    A stream's first point is accepted when nothing came before it. Every later point is
    compared with the stream's last *accepted* point, so a glitch is judged against good data
    and the point after it is not. One vectorised comparison with the previous row finds the
    streams where nothing jumps (almost all); only those with a jump are walked point by point.

    Args:
        timestamp: Unix seconds, rows of each stream in time order, streams one after another.
        altitude: Metres.
        xyz: ECEF coordinates (metres) of the rows.
        bounds: Index of each stream's first row, then the row count.
        reference: Each stream's last accepted point before these rows.
    """
    n = len(timestamp)
    first = np.asarray(bounds[:-1], dtype=np.int64)
    stream = np.repeat(np.arange(len(first)), np.diff(bounds))
    columns = (timestamp, altitude, *xyz)
    carried = (reference.timestamp, reference.altitude, reference.x, reference.y, reference.z)
    before = []
    for values, known in zip(columns, carried, strict=True):
        previous = np.empty(n)
        previous[1:] = values[:-1]
        previous[first] = np.where(reference.known, known, values[first])
        before.append(previous)
    jumps = implausible(
        timestamp - before[0],
        altitude - before[1],
        np.sqrt(sum((c - p) ** 2 for c, p in zip(xyz, before[2:], strict=True))),
    )
    accepted = ~jumps
    restart = np.zeros(n, dtype=bool)
    reason = np.zeros(n, dtype=np.int8)
    trailing = np.zeros(len(first), dtype=np.int64)
    for s in np.unique(stream[jumps]):
        # Rows before the stream's first jump are accepted (each agrees with the one before).
        begin = int(np.flatnonzero(jumps[bounds[s] : bounds[s + 1]])[0] + bounds[s])
        if begin > bounds[s]:
            last, quarantined = [float(c[begin - 1]) for c in columns], 0
        else:  # the stream's first row here already jumps from its reference
            last, quarantined = [float(c[s]) for c in carried], int(reference.quarantined[s])
        trailing[s] = _walk(
            columns,
            range(begin, int(bounds[s + 1])),
            last,
            quarantined,
            (accepted, restart, reason),
        )
    # Streams without a jump end with their last point accepted (nothing quarantined after it).
    return Screening(accepted, restart, reason, trailing)


def judge_point(
    point: tuple[float, ...], last: tuple[float, ...], quarantined: int
) -> tuple[int, bool]:
    """:func:`screen` for one point of a stream that has a reference, in plain floats.

    Args:
        point: The point's timestamp, altitude and ECEF x, y, z.
        last: The same of the stream's last accepted point.
        quarantined: Points quarantined in a row just before this one.

    Returns:
        The index into :data:`REASONS` (0: accepted), and whether the point restarts its
        stream.
    """
    dt, d_altitude = point[0] - last[0], point[1] - last[1]
    dx, dy, dz = (a - b for a, b in zip(point[2:], last[2:], strict=True))
    max_altitude, max_position = jump_limits(dt)
    if not (
        abs(d_altitude) > max_altitude or math.sqrt(dx * dx + dy * dy + dz * dz) > max_position
    ):
        return 0, False  # what the vectorised comparison of screen() finds for almost every point
    accepted, restart, reason = np.zeros(1, bool), np.zeros(1, bool), np.zeros(1, np.int8)
    columns = tuple(np.array([value]) for value in point)
    _walk(columns, range(1), list(last), quarantined, (accepted, restart, reason))
    return int(reason[0]), bool(restart[0])


def _walk(
    columns: tuple[np.ndarray, ...],
    rows: range,
    last: list[float],
    quarantined: int,
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> int:
    """Judge ``rows`` one by one against the last accepted point; returns the trailing run."""
    accepted, restart, reason = out
    for i in rows:
        row = [float(c[i]) for c in columns]
        dt, d_altitude = row[0] - last[0], row[1] - last[1]
        d_position = float(
            np.sqrt(sum((a - b) ** 2 for a, b in zip(row[2:], last[2:], strict=True)))
        )
        if not implausible(np.array([dt]), np.array([d_altitude]), np.array([d_position]))[0]:
            accepted[i], last, quarantined = True, row, 0
        elif quarantined >= RESTART_AFTER and dt >= RESTART_AFTER_S:
            accepted[i], restart[i], last, quarantined = True, True, row, 0
        else:
            accepted[i] = False
            reason[i] = REASONS.index(jump_reason(dt, d_altitude))
            quarantined += 1
    return quarantined
