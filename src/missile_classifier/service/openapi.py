"""The OpenAPI 3.1 document, built from the pydantic models (never written by hand twice)."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from missile_classifier.service.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    HealthResponse,
    InfoResponse,
    Observation,
    Prediction,
)

_REF = "#/components/schemas/{model}"


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=schema)}}}


_MEANING = {
    400: "Body is not JSON (or holds NaN/Infinity, or is nested too deeply), or was cut short.",
    401: "Missing or wrong X-API-Key.",
    408: "The request did not arrive within REQUEST_READ_TIMEOUT.",
    409: "/predict: timestamp not after the stream's last point; /batch_predict: two samples "
    "of one stream share a timestamp.",
    413: "Body (declared or chunked) or batch too large.",
    415: "Content-Type is not JSON, or the body is compressed (Content-Encoding).",
    422: "A field is missing, of the wrong type or beyond its limits.",
    429: "Rate limit exceeded.",
    500: "An unexpected failure (the model is then taken out of service; see /health).",
    503: "Model not loaded, or track store unavailable for stream predictions.",
}


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(s): {"description": _MEANING[s], "content": _json("ErrorResponse")} for s in statuses
    }


@cache
def openapi_document(
    version: str, *, api_key: bool = False, rate_limit: bool = False
) -> dict[str, Any]:
    """OpenAPI description of every endpoint, as the server is configured.

    Args:
        version: The service's version.
        api_key: ``API_KEY`` is set: prediction and info endpoints require X-API-Key.
        rate_limit: ``RATE_LIMIT`` is set: those endpoints may answer 429.
    """
    guarded = [401] if api_key else []
    limited = [429] if rate_limit else []
    security: dict[str, Any] = {"security": [{"ApiKey": []}]} if api_key else {}
    models: list[type[BaseModel]] = [
        Observation,
        BatchRequest,
        Prediction,
        BatchResponse,
        ErrorResponse,
        HealthResponse,
        InfoResponse,
    ]
    _, schemas = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    # The conditional rule the model cannot express: with an integer track_id, a timestamp.
    schemas["$defs"]["Observation"].update(
        {
            "if": {"properties": {"track_id": {"type": "integer"}}, "required": ["track_id"]},
            "then": {"properties": {"timestamp": {"type": "number"}}, "required": ["timestamp"]},
        }
    )
    samples = schemas["$defs"]["BatchRequest"]["properties"]["samples"]
    samples["description"] = (
        "Each sample with a track_id needs a timestamp; no two samples of one stream may share one."
    )
    predict_errors = _errors(400, *guarded, 408, 409, 413, 415, 422, *limited, 500, 503)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "missile-classifier",
            "version": version,
            "description": "Classifies whether a tracked missile is in its reentry phase.",
        },
        "components": {
            "schemas": schemas.get("$defs", {}),
            **(
                {
                    "securitySchemes": {
                        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
                    }
                }
                if api_key
                else {}
            ),
        },
        "paths": {
            "/livez": {
                "get": {
                    "summary": "Liveness: the process answers.",
                    "responses": {"200": {"description": "Alive."}},
                }
            },
            "/health": {
                "get": {
                    "summary": "Readiness: 200 when the model answers (status ok or degraded).",
                    "responses": {
                        "200": {"description": "Ready.", "content": _json("HealthResponse")},
                        "503": {
                            "description": "Not ready; reason given.",
                            "content": _json("HealthResponse"),
                        },
                    },
                }
            },
            "/predict": {
                "post": {
                    "summary": "Classify one observation (with track_id: as part of its stream).",
                    **security,
                    "requestBody": {"required": True, "content": _json("Observation")},
                    "responses": {
                        "200": {"description": "The prediction.", "content": _json("Prediction")},
                        **predict_errors,
                    },
                }
            },
            "/batch_predict": {
                "post": {
                    "summary": "Classify many observations; stateless, answers in input order.",
                    **security,
                    "requestBody": {"required": True, "content": _json("BatchRequest")},
                    "responses": {
                        "200": {
                            "description": "The predictions.",
                            "content": _json("BatchResponse"),
                        },
                        **_errors(400, *guarded, 408, 409, 413, 415, 422, *limited, 500, 503),
                    },
                }
            },
            "/info": {
                "get": {
                    "summary": "Service and model metadata, training metrics, features.",
                    **security,
                    "responses": {
                        "200": {"description": "Metadata.", "content": _json("InfoResponse")},
                        **_errors(*guarded, *limited),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text exposition format).",
                    "responses": {
                        "200": {"description": "Metrics.", "content": {"text/plain": {}}}
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "responses": {"200": {"description": "OpenAPI 3.1."}},
                }
            },
        },
    }
