"""Request and response models of the REST API; the OpenAPI document is generated from them.

Strict types: a number sent as a string, a float track id, NaN or Infinity are client errors
(422), not coerced. Unknown fields (a label column, say) are ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

_STRICT = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")


class Observation(BaseModel):
    """One sensor observation of a missile."""

    model_config = _STRICT

    timestamp: float | None = Field(
        None, description="Unix seconds; required with track_id (orders the stream)."
    )
    track_id: int | None = Field(
        None, description="Track to append this point to; omit to classify the point alone."
    )
    sensor_id: int = Field(0, description="Sensor that made the observation (stream key).")
    latitude: Annotated[float, Field(ge=-90.0, le=90.0, description="Degrees (WGS84).")]
    longitude: Annotated[float, Field(ge=-180.0, le=180.0, description="Degrees (WGS84).")]
    altitude: float = Field(description="Metres.")
    radiometric_intensity: float | None = Field(
        None, description="Nominally 0–1; null or absent when the sensor gave none."
    )


class BatchRequest(BaseModel):
    """Observations scored together; grouped into streams by track_id and sensor_id."""

    model_config = _STRICT

    samples: list[Observation] = Field(min_length=1)


class Prediction(BaseModel):
    """The classification of one observation."""

    track_id: int | None
    sensor_id: int
    timestamp: float | None
    probability: float = Field(ge=0.0, le=1.0, description="Probability of reentry.")
    reentry_phase: Literal[0, 1]
    label: Literal["reentry", "non_reentry"]
    context_points: int = Field(description="Rows of the stream's history the answer used.")
    mode: Literal["stream", "single"] = Field(
        description="stream: joined the track's history; single: classified from this point alone."
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


class HealthResponse(BaseModel):
    """Readiness: 200 once the model answers; degraded when the shared store is down."""

    status: Literal["ok", "degraded", "unavailable"]
    reason: str | None = None
    model_version: str | None = None
    store: StoreStatus | None = None


class InfoResponse(BaseModel):
    """Service and model metadata."""

    service: dict[str, object]
    model: dict[str, object] | None
    endpoints: list[str]
    features: list[str]
