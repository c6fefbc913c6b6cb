"""Settings of the service's processes, read from environment variables prefixed ``AELLE_``
(or given as arguments; a command-line flag overrides its variable): :class:`ServiceSettings`
for the coordinator, :class:`ClientSettings` for the user's commands (submit, studies,
trials)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_TOKEN_LENGTH = 16  # the shortest bearer token a coordinator serves with


class ServiceSettings(BaseSettings):
    """database_url: SQLAlchemy URL shared by Optuna's tables and ours (a SQLite file by
    default; ``postgresql+psycopg://user@host/db`` for several workers and machines).
    user_token / worker_token: bearer tokens of users (submit, read) and of workers.
    heartbeat_interval / grace_period: seconds; a running trial whose last heartbeat is older
    than the grace period is failed and retried (at most ``max_retry`` times).
    max_body_bytes: larger request bodies are refused with 413.
    public_docs: serve the OpenAPI schema at /openapi.json and its browsable pages at /docs
    and /redoc without a token (for a coordinator on a private network); by default only
    /api/v1/health answers without one, and the schema is /api/v1/openapi.json for users.
    completed_cache_seconds: how long a study's completed trials are reused by the pruners
    before they are read from the database again.
    models_kept: the AeLLE models kept per study (older ones are deleted).
    db_pool_size / db_max_overflow: the connection pool of a PostgreSQL engine.
    sqlite_timeout: seconds a SQLite connection waits for another writer's lock.
    artifact_dir: where trained networks are stored (Optuna's FileSystemArtifactStore); by
    default ``<database file>.artifacts`` beside a SQLite file, ``./aelle-artifacts``
    otherwise. artifact_s3_bucket: store them in this S3 bucket instead (Optuna's
    Boto3ArtifactStore; credentials from the usual AWS_* variables), at artifact_s3_endpoint
    for an S3-compatible server. artifact_max_bytes: a larger upload is refused with 413.
    artifacts_kept: the networks kept per study, of its best completed trials (the others'
    are deleted as better trials complete). explain_max_bytes: a larger explanation (a
    report's JSON and HTML, ``PUT .../explain``) is refused with 413."""

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
    completed_cache_seconds: float = Field(5.0, ge=0)
    models_kept: int = Field(5, ge=1)
    db_pool_size: int = Field(10, ge=1)
    db_max_overflow: int = Field(20, ge=0)
    sqlite_timeout: float = Field(30.0, gt=0)
    artifact_dir: str | None = None
    artifact_s3_bucket: str | None = None
    artifact_s3_endpoint: str | None = None
    artifact_max_bytes: int = Field(64 << 20, ge=1024)
    artifacts_kept: int = Field(5, ge=1)
    explain_max_bytes: int = Field(16 << 20, ge=1024)

    @field_validator("grace_period")
    @classmethod
    def _grace_exceeds_interval(cls, v, info):
        interval = info.data.get("heartbeat_interval")
        if interval is not None and v <= interval:
            raise ValueError(f"grace_period ({v} s) must exceed heartbeat_interval "
                             f"({interval} s)")
        return v

    def require_tokens(self) -> None:
        """Serving with a missing, short or shared token would leave the API open: refuse,
        saying which. Each token has at least MIN_TOKEN_LENGTH characters, and users and
        workers hold different ones (a worker's token must not read or create studies)."""
        missing = [name for name in ("user_token", "worker_token")
                   if getattr(self, name) is None or not getattr(self, name).get_secret_value()]
        if missing:
            raise ValueError("set " + " and ".join(f"AELLE_{m.upper()}" for m in missing)
                             + " (the bearer tokens of users and workers)")
        short = [name for name in ("user_token", "worker_token")
                 if len(getattr(self, name).get_secret_value()) < MIN_TOKEN_LENGTH]
        if short:
            raise ValueError(" and ".join(f"AELLE_{m.upper()}" for m in short)
                             + f" must have at least {MIN_TOKEN_LENGTH} characters (for "
                             "instance: python -c 'import secrets; print(secrets.token_hex(16))')")
        if self.user_token.get_secret_value() == self.worker_token.get_secret_value():
            raise ValueError("AELLE_USER_TOKEN and AELLE_WORKER_TOKEN must differ (a worker "
                             "must not act as a user)")


class ClientSettings(BaseSettings):
    """url: the coordinator the user's commands talk to.
    user_token: the users' bearer token (the coordinator's ``AELLE_USER_TOKEN``)."""

    model_config = SettingsConfigDict(env_prefix="AELLE_", extra="ignore")

    url: str = "http://127.0.0.1:8000"
    user_token: SecretStr | None = None
