"""Configuration from the environment and a ``.env`` file."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from dotenv import dotenv_values

from healthcare.application.paging import DEFAULT_LIMIT, MAX_LIMIT

log = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32
MIN_METRICS_TOKEN_CHARS = 16
MEMORY_URL = "memory://"
ENVIRONMENTS = ("development", "test", "production")


class SettingsError(ValueError):
    """The configuration cannot be used; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    secret_key: str
    access_token_lifetime: timedelta = timedelta(minutes=15)
    refresh_token_lifetime: timedelta = timedelta(days=7)
    # Off, as simplejwt and the seed: a refresh answers an access token and the client keeps
    # its refresh token. On: each refresh spends it for a new one, with reuse detection.
    refresh_token_rotation: bool = False
    bcrypt_rounds: int = 12
    # Per worker. Few: a request holds a connection for one statement, and on a small
    # machine every busy backend competes with the workers for the same cores. In `make
    # bench` (2 cores, 64 connections) 8 instead of 20 took get-by-id's p99 from 47-53 to
    # 38-40 ms and a create's from 80-96 to 51-66 ms, at the same throughput.
    db_pool_size: int = 8
    db_pool_timeout: int = 5  # seconds a request waits for a connection before a 503
    # Longest a statement may run, and wait for a lock (SQLite: for the write lock), before
    # its request is a 503. Lock waits end first, so a blocked write says why.
    db_statement_timeout_ms: int = 5000
    db_lock_timeout_ms: int = 2000
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    environment: str = "development"
    docs_enabled: bool = True
    cors_origins: tuple[str, ...] = ()  # none: cross-origin browsers are refused
    redis_url: str | None = None  # shared throttling counters; else per process
    redis_timeout_ms: int = 500  # to connect to Redis, and for each answer
    login_attempts_per_username: int = 5
    login_failures_per_client: int = 20
    login_window_seconds: int = 300
    # How long a sign-in or password check refused by those limits waits for its 429 (0: none).
    # Cheap refusals at full speed took both cores from the hashes (bench: password storm).
    login_refusal_delay_ms: int = 1000
    auth_requests_per_minute: int = 60  # registration and refresh, per client address
    # Proxies (addresses or networks) whose X-Forwarded-For names the client; else the socket.
    trusted_proxies: tuple[str, ...] = ()
    # Longest a request's body may take to arrive, from the first read of it, before a 408.
    body_read_timeout_ms: int = 10_000
    audit_flush_ms: int = 250  # longest a read's audit event waits to be written
    # PostgreSQL: how often each worker rereads the token revocations, should a
    # notification have been missed (they arrive by LISTEN/NOTIFY within milliseconds).
    revocation_resync_seconds: int = 30
    default_page_size: int = DEFAULT_LIMIT  # items in a list's page when the client names none
    admin_session_idle_minutes: int = 30  # an admin session ends after this long unused
    # /metrics (Prometheus) is served only when set, to scrapers that send it as a Bearer token.
    metrics_token: str | None = None

    @property
    def metrics_enabled(self) -> bool:
        return self.metrics_token is not None

    @property
    def audit_flush_seconds(self) -> float:
        return self.audit_flush_ms / 1000

    @property
    def body_read_timeout_seconds(self) -> float:
        return self.body_read_timeout_ms / 1000

    @property
    def login_refusal_delay_seconds(self) -> float:
        return self.login_refusal_delay_ms / 1000

    @property
    def redis_timeout_seconds(self) -> float:
        return self.redis_timeout_ms / 1000

    @property
    def admin_session_idle(self) -> timedelta:
        return timedelta(minutes=self.admin_session_idle_minutes)

    @property
    def throttle_backend(self) -> str:
        return "redis" if self.redis_url else "memory"

    @property
    def persistence(self) -> str:
        """Which persistence adapter the URL selects: ``memory`` or ``sqlalchemy``."""
        return "memory" if self.database_url == MEMORY_URL else "sqlalchemy"


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: Path | None = Path(".env"),
    data_dir: Path | None = None,
    create_secret: bool = False,
) -> Settings:
    """Read settings; the process environment wins over ``.env``.

    ``create_secret`` lets ``make run`` mint a signing key into ``DATA_DIR`` on first start;
    every other caller must be given one.
    """
    values = _read_values(environ, env_file)
    data = _data_dir(values, data_dir)
    environment = values.get("ENVIRONMENT", "development").strip().lower()
    if environment not in ENVIRONMENTS:
        raise SettingsError(f"ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}")
    production = environment == "production"
    if production and not values.get("SECRET_KEY"):
        raise SettingsError("ENVIRONMENT=production needs an explicit SECRET_KEY")
    return Settings(
        database_url=_database_url(values, data),
        secret_key=_secret_key(values, data, create_secret),
        access_token_lifetime=timedelta(minutes=_int(values, "ACCESS_TOKEN_MINUTES", 15, 1)),
        refresh_token_lifetime=timedelta(days=_int(values, "REFRESH_TOKEN_DAYS", 7, 1)),
        refresh_token_rotation=_bool(values, "REFRESH_TOKEN_ROTATION", default=False),
        bcrypt_rounds=_int(values, "BCRYPT_ROUNDS", 12, 4, 31),
        db_pool_size=_int(values, "DB_POOL_SIZE", 8, 1),
        db_pool_timeout=_int(values, "DB_POOL_TIMEOUT", 5, 1),
        db_statement_timeout_ms=_int(values, "DB_STATEMENT_TIMEOUT_MS", 5000, 1, 3_600_000),
        db_lock_timeout_ms=_int(values, "DB_LOCK_TIMEOUT_MS", 2000, 1, 3_600_000),
        host=values.get("HOST", "127.0.0.1"),
        port=_int(values, "PORT", 8000, 0, 65535),
        workers=_int(values, "WORKERS", 1, 1),
        environment=environment,
        docs_enabled=_bool(values, "DOCS_ENABLED", default=not production),
        redis_url=values.get("REDIS_URL") or None,
        redis_timeout_ms=_int(values, "REDIS_TIMEOUT_MS", 500, 1, 60_000),
        login_attempts_per_username=_int(values, "LOGIN_ATTEMPTS_PER_USERNAME", 5, 1),
        login_failures_per_client=_int(values, "LOGIN_FAILURES_PER_CLIENT", 20, 1),
        login_window_seconds=_int(values, "LOGIN_WINDOW_SECONDS", 300, 1),
        login_refusal_delay_ms=_int(values, "LOGIN_REFUSAL_DELAY_MS", 1000, 0, 30_000),
        auth_requests_per_minute=_int(values, "AUTH_REQUESTS_PER_MINUTE", 60, 1),
        cors_origins=_list(values, "CORS_ORIGINS"),
        trusted_proxies=_networks(values, "TRUSTED_PROXIES"),
        body_read_timeout_ms=_int(values, "BODY_READ_TIMEOUT_MS", 10_000, 1, 600_000),
        audit_flush_ms=_int(values, "AUDIT_FLUSH_MS", 250, 10, 60_000),
        revocation_resync_seconds=_int(values, "REVOCATION_RESYNC_SECONDS", 30, 1, 3600),
        default_page_size=_int(values, "DEFAULT_PAGE_SIZE", DEFAULT_LIMIT, 1, MAX_LIMIT),
        admin_session_idle_minutes=_int(values, "ADMIN_SESSION_IDLE_MINUTES", 30, 1, 24 * 60),
        metrics_token=_metrics_token(values),
    )


def load_database_url(
    environ: Mapping[str, str] | None = None, *, env_file: Path | None = Path(".env")
) -> str:
    """Just the database URL, for commands (migrations) that need no signing key."""
    values = _read_values(environ, env_file)
    return _database_url(values, _data_dir(values, None))


def _read_values(environ: Mapping[str, str] | None, env_file: Path | None) -> dict[str, str]:
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return values


def _data_dir(values: Mapping[str, str], override: Path | None) -> Path:
    return Path(values.get("DATA_DIR", "var")) if override is None else override


def _database_url(values: Mapping[str, str], data_dir: Path) -> str:
    if url := values.get("DATABASE_URL"):
        return url
    if name := values.get("DB_NAME"):  # the seed service's variables
        user = quote(values.get("DB_USER", "postgres"), safe="")
        password = values.get("DB_PASSWORD")
        credentials = f"{user}:{quote(password, safe='')}" if password else user
        host = values.get("DB_HOST", "127.0.0.1")
        port = values.get("DB_PORT", "5432")
        return f"postgresql+psycopg://{credentials}@{host}:{port}/{quote(name, safe='')}"
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{(data_dir / 'healthcare.sqlite3').resolve()}"


def _secret_key(values: Mapping[str, str], data_dir: Path, create: bool) -> str:
    key = values.get("SECRET_KEY")
    if key is None:
        key_file = data_dir / "secret_key"
        if key_file.is_file():
            key = key_file.read_text().strip()
        elif create:
            key = secrets.token_urlsafe(48)
            data_dir.mkdir(parents=True, exist_ok=True)
            key_file.touch(mode=0o600)
            key_file.write_text(key + "\n")
            log.warning(
                "No SECRET_KEY set: generated one into %s. Set SECRET_KEY explicitly in "
                "production, the same on every instance.",
                key_file,
            )
        else:
            raise SettingsError("SECRET_KEY is not set (run `make run` once to generate one)")
    if len(key.encode("utf-8")) < MIN_SECRET_BYTES:
        raise SettingsError(f"SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes long")
    return key


def _metrics_token(values: Mapping[str, str]) -> str | None:
    token = values.get("METRICS_TOKEN", "").strip()
    if not token:
        return None
    if len(token) < MIN_METRICS_TOKEN_CHARS:
        raise SettingsError(
            f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_CHARS} characters long"
        )
    return token


def _list(values: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in values.get(name, "").split(",") if item.strip())


def _networks(values: Mapping[str, str], name: str) -> tuple[str, ...]:
    networks = _list(values, name)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise SettingsError(
                f"{name} must list IP addresses or networks (such as 10.0.0.0/8), not {network!r}"
            ) from None
    return networks


def _bool(values: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = values.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _int(
    values: Mapping[str, str], name: str, default: int, low: int, high: int | None = None
) -> int:
    raw = values.get(name)
    if raw is None or raw == "":
        return default
    try:
        number = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if number < low or (high is not None and number > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise SettingsError(f"{name} must be {limit}")
    return number
