"""The coordinator's settings: environment variables prefixed ``AELLE_`` (or arguments)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """database_url: SQLAlchemy URL shared by Optuna's tables and ours (a SQLite file by
    default; ``postgresql+psycopg://user@host/db`` for several workers and machines).
    user_token / worker_token: bearer tokens of users (submit, read) and of workers.
    heartbeat_interval / grace_period: seconds; a running trial whose last heartbeat is older
    than the grace period is failed and retried (at most ``max_retry`` times).
    max_body_bytes: larger request bodies are refused with 413.
    public_docs: serve the OpenAPI schema at /openapi.json and its browsable pages at /docs
    and /redoc without a token (for a coordinator on a private network); by default only
    /api/v1/health answers without one, and the schema is /api/v1/openapi.json for users."""

    model_config = SettingsConfigDict(env_prefix="AELLE_", extra="ignore")

    database_url: str = "sqlite:///aelle.db"
    user_token: SecretStr | None = None
    worker_token: SecretStr | None = None
    heartbeat_interval: int = Field(10, ge=1)
    grace_period: int = Field(60, ge=2)
    max_retry: int = Field(3, ge=0)
    stale_check_seconds: float = Field(5.0, gt=0)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    public_docs: bool = False

    @field_validator("grace_period")
    @classmethod
    def _grace_exceeds_interval(cls, v, info):
        interval = info.data.get("heartbeat_interval")
        if interval is not None and v <= interval:
            raise ValueError(f"grace_period ({v} s) must exceed heartbeat_interval "
                             f"({interval} s)")
        return v

    def require_tokens(self) -> None:
        """Serving without both tokens would leave the API open: refuse, saying which."""
        missing = [name for name in ("user_token", "worker_token")
                   if getattr(self, name) is None or not getattr(self, name).get_secret_value()]
        if missing:
            raise ValueError("set " + " and ".join(f"AELLE_{m.upper()}" for m in missing)
                             + " (the bearer tokens of users and workers)")
