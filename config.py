"""Settings, read from environment variables, with safe development defaults.

One class per mode: `Config` (development), `ProductionConfig` (refuses to start without
a real secret key and database), `TestingConfig` (used by the test suite).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("ESTUARY_VAR_DIR", BASE_DIR / "var"))


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be a whole number, got {raw!r}") from exc


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _int_set(name: str) -> set[int]:
    raw = os.environ.get(name, "")
    try:
        return {int(part) for part in raw.replace(",", " ").split()}
    except ValueError as exc:
        raise RuntimeError(f"{name} must be whole numbers separated by commas") from exc


def _cents_map(name: str) -> dict[str, int]:
    """`role=cents,role=cents` (e.g. `approver=1000000`)."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in os.environ.get(name, "").split(","))):
        key, _, value = part.partition("=")
        try:
            out[key.strip()] = int(value)
        except ValueError as exc:
            raise RuntimeError(f"{name} must look like role=cents,role=cents") from exc
    return out


def _dev_secret_key() -> str:
    """A random key kept in var/ so dev sessions survive restarts; never used in production."""
    path = VAR_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


class Config:
    ENV_NAME = "development"
    TESTING = False
    SECRET_KEY = os.environ.get("SECRET_KEY") or None  # filled in by init()

    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'estuary.db'}")
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}

    TEMPORAL_ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
    TEMPORAL_NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")
    TEMPORAL_UI_URL = os.environ.get("TEMPORAL_UI_URL", "http://127.0.0.1:8233")
    TEMPORAL_TLS = _bool("TEMPORAL_TLS", False)
    TEMPORAL_TLS_CLIENT_CERT = os.environ.get("TEMPORAL_TLS_CLIENT_CERT")  # path
    TEMPORAL_TLS_CLIENT_KEY = os.environ.get("TEMPORAL_TLS_CLIENT_KEY")  # path
    TEMPORAL_API_KEY = os.environ.get("TEMPORAL_API_KEY")
    TEMPORAL_TASK_QUEUE_PREFIX = os.environ.get("TEMPORAL_TASK_QUEUE_PREFIX", "")
    # Seconds a console request waits for Temporal before saying it is unreachable.
    TEMPORAL_RPC_TIMEOUT = _int("TEMPORAL_RPC_TIMEOUT", 5)
    TEMPORAL_CONNECT_TIMEOUT = _int("TEMPORAL_CONNECT_TIMEOUT", 3)
    WORKER_MAX_CONCURRENT_ACTIVITIES = _int("WORKER_MAX_CONCURRENT_ACTIVITIES", 20)

    # Money rules (integer cents).
    CURRENCY = os.environ.get("CURRENCY", "USD")
    PAYOUT_APPROVAL_THRESHOLD_CENTS = _int("PAYOUT_APPROVAL_THRESHOLD_CENTS", 50_000)
    PAYOUT_DUAL_APPROVAL_THRESHOLD_CENTS = _int("PAYOUT_DUAL_APPROVAL_THRESHOLD_CENTS", 500_000)
    PAYOUT_APPROVAL_TIMEOUT_SECONDS = _int("PAYOUT_APPROVAL_TIMEOUT_SECONDS", 7 * 24 * 3600)
    PAYOUT_BATCH_CHUNK_SIZE = _int("PAYOUT_BATCH_CHUNK_SIZE", 100)
    # How long a payout whose transfer outcome is unknown keeps asking the provider (by
    # idempotency key) before it decides: nothing at the provider -> failed, hold returned;
    # still processing -> stays reconciling, flagged to ops.
    PAYOUT_SETTLE_WINDOW_SECONDS = _int("PAYOUT_SETTLE_WINDOW_SECONDS", 24 * 3600)

    # Per-role approval limits in cents (a user's own approval_limit_cents wins).
    APPROVAL_LIMITS_CENTS = _cents_map("APPROVAL_LIMITS_CENTS")
    # What happens to a package's unreleased earnings when it expires.
    PACKAGE_EXPIRY_POLICY = os.environ.get("PACKAGE_EXPIRY_POLICY", "release_remaining")

    # Booking policies (copied into each lifecycle's input when it starts).
    BOOKING_NO_SHOW_FEE_PERCENT = _int("BOOKING_NO_SHOW_FEE_PERCENT", 50)
    BOOKING_NO_SHOW_CREDIT_FORFEITED = _bool("BOOKING_NO_SHOW_CREDIT_FORFEITED", True)
    BOOKING_CANCEL_FULL_CREDIT_HOURS = _int("BOOKING_CANCEL_FULL_CREDIT_HOURS", 24)
    BOOKING_LATE_CANCEL_CREDIT_PERCENT = _int("BOOKING_LATE_CANCEL_CREDIT_PERCENT", 50)
    BOOKING_GRACE_PERIOD_MINUTES = _int("BOOKING_GRACE_PERIOD_MINUTES", 120)
    BOOKING_FEEDBACK_REMINDER_HOURS = _int("BOOKING_FEEDBACK_REMINDER_HOURS", 72)

    # Practitioners: background checks ("local" answers by itself after the delay;
    # "manual": ops record the result) and where ops reminders go.
    BACKGROUND_CHECK_PROVIDER = os.environ.get("BACKGROUND_CHECK_PROVIDER", "local")
    BACKGROUND_CHECK_DELAY_SECONDS = _int("BACKGROUND_CHECK_DELAY_SECONDS", 30)
    BACKGROUND_CHECK_FAIL_PRACTITIONERS = _int_set("BACKGROUND_CHECK_FAIL_PRACTITIONERS")
    OPS_NOTIFICATIONS_EMAIL = os.environ.get("OPS_NOTIFICATIONS_EMAIL", "ops@estuary.local")

    # Fault injection for the in-app payment provider (share of calls that fail, 0-100).
    PROVIDER_FAILURE_PERCENT = _int("PROVIDER_FAILURE_PERCENT", 0)

    # Sessions and sign-in.
    PERMANENT_SESSION_LIFETIME = timedelta(hours=_int("SESSION_ABSOLUTE_HOURS", 12))
    SESSION_IDLE_MINUTES = _int("SESSION_IDLE_MINUTES", 30)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    LOGIN_MAX_FAILURES = _int("LOGIN_MAX_FAILURES", 5)
    LOGIN_LOCKOUT_MINUTES = _int("LOGIN_LOCKOUT_MINUTES", 15)
    # Number of trusted reverse proxies in front of the console (0: trust no X-Forwarded-For).
    TRUSTED_PROXY_COUNT = _int("TRUSTED_PROXY_COUNT", 0)
    PASSWORD_HASH_METHOD = "scrypt:131072:8:1"

    WTF_CSRF_TIME_LIMIT = None  # token lives as long as the session
    WTF_CSRF_HEADERS = ["X-CSRFToken"]

    @classmethod
    def init(cls) -> None:
        """Fill settings that need side effects (the dev secret key file)."""
        if not cls.SECRET_KEY:
            cls.SECRET_KEY = _dev_secret_key()


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True

    @classmethod
    def init(cls) -> None:
        if not os.environ.get("SECRET_KEY"):
            raise RuntimeError("SECRET_KEY must be set in production (ESTUARY_ENV=production)")
        if not os.environ.get("DATABASE_URL"):
            raise RuntimeError("DATABASE_URL must be set in production (ESTUARY_ENV=production)")
        cls.SECRET_KEY = os.environ["SECRET_KEY"]


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-only-secret"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    PASSWORD_HASH_METHOD = "scrypt:1024:8:1"  # fast hashes in tests only

    @classmethod
    def init(cls) -> None:
        pass


def config_for_environment() -> type[Config]:
    env = os.environ.get("ESTUARY_ENV", "development")
    if env == "production":
        return ProductionConfig
    if env == "development":
        return Config
    raise RuntimeError(f"ESTUARY_ENV must be 'development' or 'production', got {env!r}")
