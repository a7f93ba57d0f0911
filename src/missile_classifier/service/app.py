"""The Flask app factory: configuration, model, track store, security, logs and metrics.

``create_app()`` loads and smoke-tests the model before it returns, so a gunicorn worker never
takes traffic with a half-loaded model; if the model is missing the app still starts (liveness
answers) and readiness says why.
"""

from __future__ import annotations

import hmac
import re
from random import getrandbits
from time import perf_counter
from typing import Any, Final

from flask import Flask, Response, g, request
from pydantic import ValidationError

from missile_classifier.service import metrics
from missile_classifier.service.config import Settings
from missile_classifier.service.deadlines import release_deadline
from missile_classifier.service.errors import ApiError, error_response, register_error_handlers
from missile_classifier.service.logs import configure_logging, get_logger
from missile_classifier.service.routes import api
from missile_classifier.service.state import ServiceState

#: Endpoints open without API key and rate limit: probes and the Prometheus scrape.
OPEN_ENDPOINTS: Final = frozenset(
    {"api.livez", "api.health", "api.prometheus_metrics", "api.openapi"}
)
_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: WSGI environ key of a request's start (``perf_counter``) and id.
_REQUEST_KEY: Final = "missile_classifier.request"


def new_request_id() -> str:
    """A random request id: 32 hex digits, like a UUID4's.

    From the process's Mersenne Twister (reseeded in each forked worker), not ``os.urandom``: an
    id needs no cryptographic strength, and the ``getrandom`` system call under ``uuid4`` hands
    the GIL to the other request threads on every request (about 8 % of ``/livez``'s throughput
    under load, docs/performance.md).
    """
    return f"{getrandbits(128):032x}"


class ConfigError(ValueError):
    """The environment holds an invalid setting; the message names it."""


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Settings from the environment (plus overrides), with one readable error per problem."""
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        # A check across settings (SCALER_PATH against MODEL_PATH) has no field: its message
        # names the variables itself.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            if e["loc"]
            else e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None


def create_app(test_config: dict[str, Any] | Settings | None = None) -> Flask:
    """Build the service.

    Args:
        test_config: Settings, or overrides of the environment's settings (tests).
    """
    settings = test_config if isinstance(test_config, Settings) else load_settings(test_config)
    configure_logging(settings.log_level)
    log = get_logger()
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_content_length, DEBUG=settings.debug, JSON_SORT_KEYS=False
    )
    app.extensions["missile_classifier"] = ServiceState.start(settings)
    app.register_blueprint(api)
    register_error_handlers(app)
    _install_request_hooks(app, settings)
    if settings.rate_limit:
        _install_rate_limit(app, settings)
    log.info(
        "service_started",
        store=settings.store_kind,
        api_key=settings.api_key is not None,
        rate_limit=settings.rate_limit,
        model_path=str(settings.model_path),
    )
    return app


def _install_request_hooks(app: Flask, settings: Settings) -> None:
    log = get_logger()
    expected_key = settings.api_key.encode() if settings.api_key else None

    # The request's start and id ride in its WSGI environ (under our own key) rather than
    # Flask's ``g``: each access to ``g`` or ``request`` is a context lookup (~1 µs), and under
    # load every µs a request thread holds the GIL is paid again by the threads waiting for it.
    @app.before_request
    def _start() -> None:
        environ = request.environ
        given = environ.get("HTTP_X_REQUEST_ID")  # the header, without building the headers
        request_id = given if given and _REQUEST_ID.match(given) else new_request_id()
        environ[_REQUEST_KEY] = (perf_counter(), request_id)
        if environ["REQUEST_METHOD"].upper() in ("GET", "HEAD", "OPTIONS"):  # as request.method
            release_deadline()  # no body to wait for: the request is in
        if expected_key is not None and request.endpoint not in OPEN_ENDPOINTS:
            supplied = request.headers.get("X-API-Key", "").encode()
            if not hmac.compare_digest(supplied, expected_key):  # constant time
                raise ApiError(401, "unauthorized", "missing or wrong X-API-Key header")

    @app.after_request
    def _finish(response: Response) -> Response:
        environ = request.environ
        # Unset if a hook before ours failed.
        started, request_id = environ.get(_REQUEST_KEY) or (perf_counter(), "")
        elapsed = perf_counter() - started
        method = environ["REQUEST_METHOD"].upper()  # what request.method gives, one lookup less
        rule = request.url_rule
        endpoint = rule.rule if rule is not None else "unmatched"
        requests, duration = metrics.request_series(method, endpoint, response.status_code)
        requests.inc()
        duration.observe(elapsed)
        response.headers["X-Request-ID"] = request_id
        if endpoint not in ("/livez", "/metrics"):  # probes and scrapes would drown the log
            log.info(
                "request",
                request_id=request_id,
                method=method,
                endpoint=endpoint,
                status=response.status_code,
                latency_ms=round(elapsed * 1000, 3),
                **g.get("log_fields", {}),
            )
        return response


def _install_rate_limit(app: Flask, settings: Settings) -> None:
    """Per-client limit (API key if given, else address), shared through Redis when used."""
    from flask_limiter import Limiter, RateLimitExceeded

    def client() -> str:
        return request.headers.get("X-API-Key") or request.remote_addr or "unknown"

    limiter = Limiter(
        client,
        app=app,
        default_limits=[settings.rate_limit or ""],
        storage_uri=settings.redis_url or "memory://",
        strategy="moving-window",
        headers_enabled=True,
        swallow_errors=True,  # a down Redis must not turn into 500s: limits pause instead
        in_memory_fallback_enabled=True,
    )
    for endpoint in OPEN_ENDPOINTS:
        limiter.exempt(app.view_functions[endpoint])

    @app.errorhandler(RateLimitExceeded)
    def _too_many(error: RateLimitExceeded) -> Response:
        # Flask-Limiter adds Retry-After and X-RateLimit-* headers to this response.
        return error_response(429, "rate_limited", f"rate limit exceeded: {error.description}")
