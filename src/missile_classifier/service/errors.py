"""JSON errors for every failure: ``{"error": {"code", "message"}}``, never a stack trace."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from missile_classifier.service import metrics
from missile_classifier.service.logs import get_logger


class ApiError(Exception):
    """An error answer: HTTP status, a stable machine-readable code and a message for people."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    """Build the JSON error body and count it."""
    metrics.ERRORS.labels(type=code).inc()
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer our errors, HTTP errors and anything unexpected as JSON."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error.status, error.code, error.message, error.details)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        if status == 413:
            code = "payload_too_large"
        response = error_response(status, code, error.description or code)
        if status == 405 and error.response is None:
            response.headers["Allow"] = ", ".join(getattr(error, "valid_methods", None) or [])
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        get_logger().exception("unhandled_error", error_type=type(error).__name__)
        return error_response(500, "internal_error", "internal error; see the service logs")
