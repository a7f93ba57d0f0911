"""Structured JSON logs: one line per event, machine-readable, level from LOG_LEVEL."""

from __future__ import annotations

import logging
import sys
from typing import Final

import structlog

#: What every line gets before it is rendered: structlog events and stdlib records alike.
_SHARED: Final[list[structlog.typing.Processor]] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def json_formatter() -> logging.Formatter:
    """Formatter of stdlib records (ours, gunicorn's, libraries') as the same JSON lines.

    The app's handler uses it, and gunicorn's ``logconfig_dict`` names it as a factory, so the
    server's own messages and the app's read alike.
    """
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
        foreign_pre_chain=[*_SHARED, structlog.stdlib.add_logger_name],
    )


def configure_logging(level: str) -> None:
    """Send structlog events (and stdlib records, e.g. gunicorn's) as JSON lines to stderr."""
    numeric = logging.getLevelNamesMapping()[level]
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write per line (message and newline together): print() writes them separately,
        # and with several gunicorn workers on one stderr another worker's line got in between.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Libraries stay at WARNING unless we debug: their INFO chatter is not ours to ship.
    for name in ("werkzeug", "onnxruntime", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING if numeric > logging.DEBUG else numeric)


def get_logger(name: str = "missile_classifier.service") -> structlog.typing.FilteringBoundLogger:
    """A bound structlog logger."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
