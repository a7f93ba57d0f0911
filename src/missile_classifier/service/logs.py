"""Structured JSON logs: one line per event, machine-readable, level from LOG_LEVEL."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str) -> None:
    """Send structlog events (and stdlib records, e.g. gunicorn's) as JSON lines to stderr."""
    numeric = logging.getLevelNamesMapping()[level]
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
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
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
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
