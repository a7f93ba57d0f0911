"""Service configuration from environment variables, validated once at start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from missile_classifier.scoring.bundle import check_scaler_path

#: Set by ``missile-classifier serve`` when it created the metrics folder itself.
OWNED_METRICS_DIR = "MISSILE_CLASSIFIER_OWNED_METRICS_DIR"

_RATE = re.compile(r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*$", re.IGNORECASE)


class Settings(BaseSettings):
    """Every setting of the service; environment variables use the field names in capitals."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    model_path: Path = Field(
        Path("models"), description="Bundle folder, folder with `latest`, or a bundle's file."
    )
    scaler_path: Path | None = Field(
        None, description="Seed compatibility: if set, the bundle's own preprocessing.json."
    )
    host: str = "0.0.0.0"  # a container listens on all interfaces
    port: int = Field(8000, ge=1, le=65535)
    workers: int | None = Field(None, ge=1, description="Gunicorn worker processes.")
    threads: int = Field(4, ge=1, description="Threads per worker.")
    # One per worker: the service scores a point, or a few, per call, where a second runtime
    # thread only adds a wake-up (benchmarks/inference_threads.py, docs/performance.md); a
    # server of large /batch_predict calls may set more.
    inference_threads: int = Field(
        1, ge=1, description="ONNX Runtime threads per worker (one per worker fits the cores)."
    )
    timeout: int = Field(120, ge=10, description="Gunicorn worker timeout (covers model loading).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    debug: bool = False
    redis_url: str | None = Field(None, description="Shared track store; memory when unset.")
    track_ttl_seconds: float = Field(3600.0, gt=0, description="Forget a stream idle this long.")
    max_streams: int = Field(100_000, ge=1, description="Most streams held (least recent evicted).")
    api_key: str | None = Field(None, description="Require this X-API-Key on prediction endpoints.")
    rate_limit: str | None = Field(None, description='Per client, e.g. "600/minute".')
    max_batch_size: int = Field(10_000, ge=1, description="Most samples per /batch_predict.")
    max_content_length: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest request body in bytes."
    )
    model_check_interval: float = Field(
        10.0, gt=0, description="Seconds between checks of MODEL_PATH for a new or changed bundle."
    )
    request_read_timeout: float = Field(
        10.0, gt=0, description="Seconds a client has to send a whole request (head and body)."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None and value.strip() and not _RATE.match(value):
            raise ValueError('must look like "100/minute" or "10 per second"')
        return value.strip() if value and value.strip() else None

    @field_validator("redis_url", "api_key")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value if value else None

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _scaler_of_the_bundle(self) -> Settings:
        if self.scaler_path is not None:
            check_scaler_path(self.model_path, self.scaler_path)
        return self

    @property
    def store_kind(self) -> Literal["memory", "redis"]:
        """Which track store the settings select."""
        return "redis" if self.redis_url else "memory"

    def effective_workers(self) -> int:
        """Worker processes: one with the in-memory store (state lives in one process)."""
        if self.store_kind == "memory":
            return 1
        return self.workers or 2
