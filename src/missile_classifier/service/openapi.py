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


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "Body is not JSON (or holds NaN/Infinity).",
        401: "Missing or wrong X-API-Key (when API_KEY is set).",
        409: "Timestamp not after the stream's last point.",
        413: "Body or batch too large.",
        422: "A field is missing, of the wrong type or out of range.",
        429: "Rate limit exceeded (when RATE_LIMIT is set).",
        503: "Model not loaded, or track store unavailable for stream predictions.",
    }
    return {
        str(s): {"description": meaning[s], "content": _json("ErrorResponse")} for s in statuses
    }


@cache
def openapi_document(version: str) -> dict[str, Any]:
    """OpenAPI description of every endpoint."""
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
    predict_errors = _errors(400, 401, 409, 413, 422, 429, 503)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "missile-classifier",
            "version": version,
            "description": "Classifies whether a tracked missile is in its reentry phase.",
        },
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
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
                    "security": [{"ApiKey": []}],
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
                    "security": [{"ApiKey": []}],
                    "requestBody": {"required": True, "content": _json("BatchRequest")},
                    "responses": {
                        "200": {
                            "description": "The predictions.",
                            "content": _json("BatchResponse"),
                        },
                        **_errors(400, 401, 413, 422, 429, 503),
                    },
                }
            },
            "/info": {
                "get": {
                    "summary": "Service and model metadata, training metrics, features.",
                    "security": [{"ApiKey": []}],
                    "responses": {
                        "200": {"description": "Metadata.", "content": _json("InfoResponse")},
                        **_errors(401, 429),
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
