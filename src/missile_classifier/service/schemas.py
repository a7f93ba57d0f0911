"""Request and response models of the REST API; the OpenAPI document is generated from them.

Strict types: a number sent as a string, a float track id, NaN or Infinity are client errors
(422), not coerced. Unknown fields (a label column, say) are ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from missile_classifier.columns import ALTITUDE, INTENSITY, LATITUDE, LONGITUDE, TIMESTAMP
from missile_classifier.scoring.plausibility import ID_LIMITS, LIMITS

_STRICT = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")


def _within(column: str, description: str) -> Any:
    low, high = LIMITS[column]
    return Field(ge=low, le=high, description=f"{description} Within [{low:,.0f}, {high:,.0f}].")


_ID = {"ge": ID_LIMITS[0], "le": ID_LIMITS[1]}


def _integral(value: object) -> object:
    """``3.0`` as ``3``: JSON Schema's integers include numbers with no fraction (and clients
    that write every number as a double send ids so); ``3.5``, ``"3"`` and ``true`` stay bad."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: A stream id: an int64, written as an integer (``3`` or ``3.0``).
StreamId = Annotated[int, Field(**_ID), BeforeValidator(_integral)]  # this order: JSON Schema


class Observation(BaseModel):
    """One sensor observation of a missile."""

    model_config = _STRICT

    timestamp: Annotated[
        float | None, _within(TIMESTAMP, "Unix seconds; required with track_id (orders it).")
    ] = None
    track_id: StreamId | None = Field(
        None, description="Track to append this point to; omit to classify it alone."
    )
    sensor_id: StreamId = Field(0, description="Sensor that made the observation (stream key).")
    latitude: Annotated[float, _within(LATITUDE, "Degrees (WGS84).")]
    longitude: Annotated[float, _within(LONGITUDE, "Degrees (WGS84).")]
    altitude: Annotated[float, _within(ALTITUDE, "Metres above the WGS84 ellipsoid.")]
    radiometric_intensity: Annotated[
        float | None, _within(INTENSITY, "Nominally 0–1; null or absent when none was measured.")
    ] = None


class BatchRequest(BaseModel):
    """Observations scored together; grouped into streams by track_id and sensor_id."""

    model_config = _STRICT

    samples: list[Observation] = Field(min_length=1)


class Prediction(BaseModel):
    """The classification of one observation."""

    track_id: int | None
    sensor_id: int | None = Field(
        description="The stream's sensor (0 unless sent); null for a point on its own that "
        "named none."
    )
    timestamp: float | None
    probability: float = Field(ge=0.0, le=1.0, description="Probability of reentry.")
    reentry_phase: Literal[0, 1]
    label: Literal["reentry", "non_reentry"]
    context_points: int = Field(description="Rows of the stream's history the answer used.")
    mode: Literal["stream", "single"] = Field(
        description="stream: joined the track's history; single: classified from this point alone."
    )
    quarantine: Literal["altitude_jump", "position_jump"] | None = Field(
        None,
        description="Set when the point moved further from its stream's last accepted point "
        "than anything ballistic can: it is not added to the stream, and the answer is the "
        "stream's last accepted one. Names the rule it broke.",
    )
    history: Literal["continued", "started", "restarted"] | None = Field(
        None,
        description="/predict with track_id only. continued: the point joined its stream's "
        "stored history; started: no history was found (the stream's first point, or its "
        "history expired, was evicted or was lost with the track store); restarted: the point "
        "restarted its stream after several points disagreed with the stored state.",
    )
    maximum_established: bool = Field(
        description="Whether the stream has seen its altitude climb by at least 1 km to its "
        "running maximum, so that the maximum is the track's own. false for a stream first "
        "seen at or after apogee (and for the first points of any stream): its reentry onset "
        "is defined by half of a maximum it never saw, so the answer is a guess."
    )
    model_version: str


class BatchResponse(BaseModel):
    """Predictions in the order of the request's samples."""

    predictions: list[Prediction]
    count: int
    model_version: str


class ErrorDetail(BaseModel):
    """What went wrong, for a client to act on."""

    code: str
    message: str
    details: list[dict[str, object]] | None = None


class ErrorResponse(BaseModel):
    """Every error answer has this shape."""

    error: ErrorDetail


class StoreStatus(BaseModel):
    """State of the track store."""

    kind: Literal["memory", "redis"]
    ok: bool
    error: str | None = None
    active_streams: int | None = None


class WorkerHealth(BaseModel):
    """One worker process of the server."""

    pid: int
    ready: bool
    model_version: str | None = None
    reason: str | None = Field(
        None, description="Why it is not ready, or what it noticed about the bundle on disk."
    )


class HealthResponse(BaseModel):
    """Readiness of the whole server: 200 once every worker's model answers.

    Degraded (still 200) when the shared track store is down.
    """

    status: Literal["ok", "degraded", "unavailable"]
    reason: str | None = None
    model_version: str | None = None
    store: StoreStatus | None = None
    notice: str | None = Field(
        None, description="Something about the bundle on disk that did not stop serving."
    )
    workers: list[WorkerHealth] | None = Field(
        None, description="Every worker of the server (under gunicorn)."
    )


class InfoResponse(BaseModel):
    """Service and model metadata."""

    service: dict[str, object]
    model: dict[str, object] | None
    endpoints: list[str]
    features: list[str]
