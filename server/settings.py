"""Every server knob, read once from an injectable mapping (``os.environ`` by default).

Each field is documented in the README's settings table; names are the environment
variables. Bad values fail at start-up with the variable's name, never deep in a request.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from engine.errors import InvalidOptionError

TIMESTAMP_DEFAULTS = ("required", "segments", "none")


def _number(env: Mapping[str, str], name: str, default, minimum, cast, kind: str):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise InvalidOptionError(f"{name} must be {kind}, not {raw!r}") from None
    if value < minimum:
        raise InvalidOptionError(f"{name} must be at least {minimum}, not {value}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    return _number(env, name, default, minimum, int, "a whole number")


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    return _number(env, name, default, minimum, float, "a number")


def env_flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise InvalidOptionError(f"{name} must be 1 or 0 (true/false), not {raw!r}")


def _networks(env: Mapping[str, str], name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    out = []
    for item in (p.strip() for p in env.get(name, "").split(",")):
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise InvalidOptionError(f"{name}: {item!r} is not an IP address or CIDR") from None
    return tuple(out)


def _database_url(env: Mapping[str, str]) -> str | None:
    raw = (env.get("TFT_DATABASE_URL") or "").strip()
    if not raw:
        return None
    if not raw.startswith(("postgresql://", "postgres://")):
        raise InvalidOptionError("TFT_DATABASE_URL must be a PostgreSQL URL (postgresql://user@host:5432/dbname); "
                                 "leave it unset for the embedded SQLite store")
    return raw


def _blob_url(env: Mapping[str, str]) -> str | None:
    raw = (env.get("TFT_BLOB_URL") or "").strip()
    if not raw:
        return None
    bucket = raw[len("s3://"):].split("/", 1)[0] if raw.startswith("s3://") else ""
    if not bucket:
        raise InvalidOptionError("TFT_BLOB_URL must be an S3 URL with a bucket (s3://bucket/optional/prefix); "
                                 "for a directory, set TFT_BLOB_DIR instead")
    if env.get("TFT_BLOB_DIR"):
        raise InvalidOptionError("set TFT_BLOB_URL (S3) or TFT_BLOB_DIR (a directory), not both")
    return raw


def _separator(raw: str) -> str:
    from engine.separation.base import validate_choice

    try:
        return validate_choice(raw.strip() or "auto")
    except InvalidOptionError as exc:
        raise InvalidOptionError(f"TFT_SEPARATOR: {exc}") from None


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str | None = None  # postgresql://...: the shared job store; None: SQLite in data_dir
    blob_dir: Path | None = None  # uploads, exports, stem cache; a shared mount on many machines; None: data_dir
    blob_url: str | None = None  # s3://bucket/prefix: uploads and exports in S3-compatible storage instead
    s3_endpoint_url: str | None = None  # Garage, SeaweedFS, MinIO...; None: AWS
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    model: str = "base"
    models_dir: Path | None = None
    demucs_model: str = "htdemucs"
    separator: str = "auto"
    device: str = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 0
    default_timestamps: str = "segments"
    max_upload_bytes: int = 512 * 1024 * 1024
    max_audio_seconds: float = 4 * 3600.0
    retention_seconds: float = 7 * 24 * 3600.0
    credits_per_job: int = 1
    new_user_credits: int | None = None  # None: unlimited (a single-person box)
    top_up_url: str | None = None
    force_vocal_separation: bool = False
    lease_seconds: float = 30.0
    max_attempts: int = 3
    shutdown_grace_seconds: float = 20.0
    upload_idle_timeout_seconds: float = 30.0
    auth_failures_per_minute: int = 10
    trusted_proxies: tuple = field(default_factory=tuple)  # peers whose X-Forwarded-For is believed
    webhook_timeout_seconds: float = 10.0  # overall deadline of one delivery attempt
    webhook_concurrency: int = 32  # delivery attempts in flight, all endpoints together
    max_webhooks_per_user: int = 20
    webhook_retry_scale: float = 1.0
    webhook_disable_after_seconds: float = 3 * 24 * 3600.0
    webhook_allow_networks: tuple = field(default_factory=tuple)
    metrics: bool = True
    metrics_port: int = 0  # `tft worker`: serve /metrics on this port (0: not at all)
    public_url: str | None = None
    worker_nice: int = 10
    model_ttl_seconds: float = 300.0  # -1: never unload an idle model; 0: unload after each job
    model_memory_bytes: int = 4096 * 1024 * 1024
    thread_restart_limit: int = 5  # per thread, in 10 minutes; then it stays down and /healthz says 503
    janitor_interval_seconds: float = 5.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        timestamps = env.get("TFT_DEFAULT_TIMESTAMPS", "segments")
        if timestamps not in TIMESTAMP_DEFAULTS:
            raise InvalidOptionError(f"TFT_DEFAULT_TIMESTAMPS must be one of {', '.join(TIMESTAMP_DEFAULTS)}")
        credits = env.get("TFT_NEW_USER_CREDITS", "")
        models_dir = env.get("TFT_MODELS_DIR")
        blob_dir = env.get("TFT_BLOB_DIR")
        return cls(
            data_dir=Path(env.get("TFT_DATA_DIR", "var")).expanduser(),
            database_url=_database_url(env),
            blob_dir=Path(blob_dir).expanduser() if blob_dir else None,
            blob_url=_blob_url(env),
            s3_endpoint_url=(env.get("TFT_S3_ENDPOINT_URL") or "").strip() or None,
            host=env.get("TFT_HOST", "127.0.0.1"),
            port=_int(env, "TFT_PORT", 8000),
            workers=_int(env, "TFT_WORKERS", 1),
            model=env.get("TFT_MODEL", "base"),
            models_dir=Path(models_dir).expanduser() if models_dir else None,
            demucs_model=env.get("TFT_DEMUCS_MODEL", "htdemucs"),
            separator=_separator(env.get("TFT_SEPARATOR", "auto")),
            device=env.get("TFT_DEVICE", "auto"),
            compute_type=env.get("TFT_COMPUTE_TYPE", "auto"),
            cpu_threads=_int(env, "TFT_THREADS", 0),
            default_timestamps=timestamps,
            max_upload_bytes=_int(env, "TFT_MAX_UPLOAD_MB", 512, 1) * 1024 * 1024,
            max_audio_seconds=_float(env, "TFT_MAX_AUDIO_MINUTES", 240.0, 0.1) * 60,
            retention_seconds=_float(env, "TFT_RETENTION_SECONDS", 7 * 24 * 3600.0, 0.0),
            credits_per_job=_int(env, "TFT_CREDITS_PER_JOB", 1),
            new_user_credits=None if credits in ("", "unlimited") else _int(env, "TFT_NEW_USER_CREDITS", 0),
            top_up_url=env.get("TFT_TOP_UP_URL") or None,
            force_vocal_separation=env_flag(env, "MUSIC_MODE_FORCE_VOCAL_SEPARATION", False),
            lease_seconds=_float(env, "TFT_LEASE_SECONDS", 30.0, 1.0),
            max_attempts=_int(env, "TFT_MAX_ATTEMPTS", 3, 1),
            shutdown_grace_seconds=_float(env, "TFT_SHUTDOWN_GRACE_SECONDS", 20.0),
            upload_idle_timeout_seconds=_float(env, "TFT_UPLOAD_IDLE_TIMEOUT_SECONDS", 30.0, 0.1),
            auth_failures_per_minute=_int(env, "TFT_AUTH_FAILURES_PER_MINUTE", 10, 1),
            trusted_proxies=_networks(env, "TFT_TRUSTED_PROXIES"),
            webhook_timeout_seconds=_float(env, "TFT_WEBHOOK_TIMEOUT_SECONDS", 10.0, 0.1),
            webhook_concurrency=_int(env, "TFT_WEBHOOK_CONCURRENCY", 32, 1),
            max_webhooks_per_user=_int(env, "TFT_MAX_WEBHOOKS_PER_USER", 20, 1),
            webhook_retry_scale=_float(env, "TFT_WEBHOOK_RETRY_SCALE", 1.0, 0.0),
            webhook_disable_after_seconds=_float(env, "TFT_WEBHOOK_DISABLE_AFTER_SECONDS", 3 * 24 * 3600.0, 0.0),
            webhook_allow_networks=_networks(env, "TFT_WEBHOOK_ALLOW_NETWORKS"),
            metrics=env_flag(env, "TFT_METRICS", True),
            metrics_port=_int(env, "TFT_METRICS_PORT", 0),
            public_url=env.get("TFT_PUBLIC_URL") or None,
            worker_nice=_int(env, "TFT_WORKER_NICE", 10),
            model_ttl_seconds=_float(env, "TFT_MODEL_TTL_SECONDS", 300.0, -1.0),
            model_memory_bytes=_int(env, "TFT_MODEL_MEMORY_MB", 4096, 1) * 1024 * 1024,
            thread_restart_limit=_int(env, "TFT_THREAD_RESTART_LIMIT", 5),
            janitor_interval_seconds=_float(env, "TFT_JANITOR_INTERVAL_SECONDS", 5.0, 0.1),
        )

    # Derived locations: the SQLite database and the scratch space under data_dir; the files
    # every node must see (uploads, exports, stem cache) under blob_dir, which is data_dir
    # unless set. With blob_url (S3) uploads and exports live in the bucket (blobs.blob_store)
    # and each node keeps its own stem cache under data_dir.
    @property
    def database(self) -> Path:
        return self.data_dir / "tft.sqlite3"

    @property
    def shared_dir(self) -> Path:
        return self.blob_dir or self.data_dir

    @property
    def uploads_dir(self) -> Path:
        return self.shared_dir / "uploads"

    @property
    def exports_dir(self) -> Path:
        return self.shared_dir / "exports"

    @property
    def cache_dir(self) -> Path:
        return (self.data_dir if self.blob_url else self.shared_dir) / "cache"

    @property
    def scratch_dir(self) -> Path:
        """This node's own: uploads being received, a job's fetched upload and staged exports."""
        return self.data_dir / "scratch"
