"""Settings, read from environment variables, with safe development defaults.

One class per mode: `Config` (development), `ProductionConfig` (refuses to start with a
weak or missing secret or audit key, a database other than PostgreSQL, or no audit
anchor file), `TestingConfig` (used by the test suite).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import string
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


def _tristate(name: str) -> bool | None:
    """True/False when the variable is set, None when it is not (so a default can depend
    on other settings)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
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


def _str_map(name: str) -> dict[str, str]:
    """`key=value,key=value` (e.g. `payments-weekly-batch-payout=Europe/London`)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in os.environ.get(name, "").split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise RuntimeError(f"{name} must look like key=value,key=value, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _dev_key(filename: str) -> str:
    """A random key kept in var/ so dev sessions (and the dev audit chain) survive
    restarts; never used in production."""
    path = VAR_DIR / filename
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _dev_secret_key() -> str:
    return _dev_key("secret_key")


MIN_KEY_BITS = 256


def estimated_key_bits(value: str) -> float:
    """A generous estimate of a key's randomness: its length times the bits of the
    character classes it uses. `secrets.token_hex(32)` and `token_urlsafe(32)` pass;
    short keys, words and one repeated character do not."""
    if len(set(value)) < 12:  # "aaaa...", "abab..." and the like
        return 0.0
    classes = (string.digits, string.ascii_lowercase, string.ascii_uppercase)
    alphabet = sum(len(c) for c in classes if any(ch in c for ch in value))
    if any(not ch.isalnum() for ch in value):
        alphabet += 32
    return len(value) * math.log2(max(alphabet, 2))


def check_key_strength(name: str, value: str | None) -> None:
    """Refuse a missing or weak key (production), naming the setting."""
    hint = "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
    if not value:
        raise RuntimeError(f"{name} must be set in production (ESTUARY_ENV=production); {hint}")
    if len(value) < 32 or estimated_key_bits(value) < MIN_KEY_BITS:
        raise RuntimeError(f"{name} is too weak: at least 32 random bytes are required; {hint}")


def parse_audit_keys(raw: str) -> list[str]:
    """`AUDIT_PREVIOUS_KEYS`: retired audit keys, comma- or space-separated."""
    return [k for k in raw.replace(",", " ").split() if k]


def _dev_payload_keys() -> str:
    """A payload key kept in var/ so dev histories stay readable across restarts."""
    from temporal_gateway.codec import new_key_entry

    path = VAR_DIR / "payload_keys"
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    tmp = VAR_DIR / f".payload_keys.{os.getpid()}"
    tmp.write_text(new_key_entry("dev1"))
    tmp.chmod(0o600)
    try:
        # A hard link never replaces an existing file: when the console and the workers
        # start together, one key wins and both read it (two keys would leave each side
        # unable to read the other's payloads).
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def _check_payload_keys(cls: type[Config]) -> None:
    """Refuse to start with malformed keys (a worker would otherwise fail every task)."""
    from temporal_gateway.codec import PayloadKeyError, parse_keys

    try:
        parse_keys(cls.PAYLOAD_KEYS or "", cls.PAYLOAD_KEY_ID)
    except PayloadKeyError as exc:
        raise RuntimeError(str(exc)) from exc


# What may end a task-queue prefix. The console's scope is "TaskQueue STARTS_WITH prefix":
# without a separator, prefix "t1" would also take in the runs of "t12"'s deployment.
TASK_QUEUE_PREFIX_ENDINGS = ("-", "_", ".", ":", "/")


def check_task_queue_prefix(prefix: str) -> None:
    """Refuse a `TEMPORAL_TASK_QUEUE_PREFIX` that could be the start of another one's."""
    if prefix and not prefix.endswith(TASK_QUEUE_PREFIX_ENDINGS):
        raise RuntimeError(
            f"TEMPORAL_TASK_QUEUE_PREFIX={prefix!r} must end in one of "
            f"{' '.join(TASK_QUEUE_PREFIX_ENDINGS)} (for example {prefix + '-'!r}): the "
            "console shows the runs on every task queue that starts with it, so "
            f"{prefix!r} would also show another deployment's {prefix + '2-'!r} runs"
        )


class Config:
    ENV_NAME = "development"
    TESTING = False
    SECRET_KEY = os.environ.get("SECRET_KEY") or None  # filled in by init()

    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'estuary.db'}")
    # Engine options are derived in create_app (estuary/database.py): a pool as large as
    # a worker's activity threads unless DATABASE_POOL_SIZE says otherwise.
    DATABASE_POOL_SIZE = _int("DATABASE_POOL_SIZE", 0)  # 0: derived
    # PostgreSQL only: a pooled connection idle this long is pinged before it is handed
    # out (0: on every checkout).
    DATABASE_PING_IDLE_SECONDS = _int("DATABASE_PING_IDLE_SECONDS", 10)
    # SQLite only: how long a writer waits for the lock before "database is locked".
    DATABASE_BUSY_TIMEOUT_SECONDS = _int("DATABASE_BUSY_TIMEOUT_SECONDS", 15)
    # /readyz: how long the staff table read may take before the console says not ready.
    READYZ_DATABASE_TIMEOUT_SECONDS = _int("READYZ_DATABASE_TIMEOUT_SECONDS", 2)

    TEMPORAL_ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
    TEMPORAL_NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")
    TEMPORAL_UI_URL = os.environ.get("TEMPORAL_UI_URL", "http://127.0.0.1:8233")
    # None (unset): on when an API key is given, so the key never travels in plaintext.
    TEMPORAL_TLS = _tristate("TEMPORAL_TLS")
    TEMPORAL_TLS_CLIENT_CERT = os.environ.get("TEMPORAL_TLS_CLIENT_CERT")  # path
    TEMPORAL_TLS_CLIENT_KEY = os.environ.get("TEMPORAL_TLS_CLIENT_KEY")  # path
    # A self-hosted cluster's CA (path, PEM) and the name its certificate carries.
    TEMPORAL_TLS_SERVER_CA_CERT = os.environ.get("TEMPORAL_TLS_SERVER_CA_CERT")
    TEMPORAL_TLS_SERVER_NAME = os.environ.get("TEMPORAL_TLS_SERVER_NAME")
    TEMPORAL_API_KEY = os.environ.get("TEMPORAL_API_KEY")
    TEMPORAL_TASK_QUEUE_PREFIX = os.environ.get("TEMPORAL_TASK_QUEUE_PREFIX", "")
    # Seconds a console request waits for Temporal before saying it is unreachable.
    TEMPORAL_RPC_TIMEOUT = _int("TEMPORAL_RPC_TIMEOUT", 5)
    TEMPORAL_CONNECT_TIMEOUT = _int("TEMPORAL_CONNECT_TIMEOUT", 3)
    # Once Temporal is found unreachable, console pages stop waiting for it and say so at
    # once; the gateway asks it again every this many seconds until it answers.
    TEMPORAL_PROBE_SECONDS = _int("TEMPORAL_PROBE_SECONDS", 1)
    WORKER_MAX_CONCURRENT_ACTIVITIES = _int("WORKER_MAX_CONCURRENT_ACTIVITIES", 20)
    # Seconds the home page's Temporal counts are reused by this process (0: never).
    HOME_COUNTS_CACHE_SECONDS = _int("HOME_COUNTS_CACHE_SECONDS", 10)
    # Live pages (dashboard/presentation/live.py): seconds between the refreshes of a page
    # while something on it runs or waits, and between the navigation's approvals counts.
    LIVE_POLL_SECONDS = _int("LIVE_POLL_SECONDS", 5)
    LIVE_NAV_SECONDS = _int("LIVE_NAV_SECONDS", 30)
    # Seconds a page of the runs list may be behind Temporal (0: read on every request).
    # Within them every request of this process gets the same answer at once, refreshed
    # in the background; running rows still refresh live (their own call, never cached).
    RUNS_LIST_CACHE_SECONDS = _int("RUNS_LIST_CACHE_SECONDS", 3)
    # Seconds a console process reuses a listed run's business title and outcome (read
    # from the app database) while the run's status stays the same (0: read every time).
    RUN_LABELS_CACHE_SECONDS = _int("RUN_LABELS_CACHE_SECONDS", 5)
    # Time zone of every schedule's cron (IANA name), and per-schedule overrides
    # (`schedule_id=Zone,...`): a 06:00 payout should mean 06:00 where the finance team is.
    SCHEDULE_TIME_ZONE = os.environ.get("SCHEDULE_TIME_ZONE", "UTC")
    SCHEDULE_TIME_ZONES = _str_map("SCHEDULE_TIME_ZONES")
    # Worker Deployment Versioning (workers/temporal/versioning.py); empty: unversioned.
    WORKER_DEPLOYMENT_NAME = os.environ.get("WORKER_DEPLOYMENT_NAME", "")
    WORKER_BUILD_ID = os.environ.get("WORKER_BUILD_ID", "")
    WORKER_VERSIONING_BEHAVIOR = os.environ.get("WORKER_VERSIONING_BEHAVIOR", "auto_upgrade")
    # Payload encryption (temporal_gateway/codec.py): `id:base64key,...` and the current id.
    PAYLOAD_KEYS = os.environ.get("PAYLOAD_KEYS") or None  # dev: generated by init()
    PAYLOAD_KEY_ID = os.environ.get("PAYLOAD_KEY_ID") or None
    # Origin of the Temporal Web UI allowed to call the console's codec endpoint (CORS);
    # empty: the origin of TEMPORAL_UI_URL.
    CODEC_CORS_ORIGIN = os.environ.get("CODEC_CORS_ORIGIN", "")

    # Observability (docs/observability.md). Logs: text for people, json for collectors.
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
    # host:port where a worker process serves the Temporal SDK's Prometheus metrics
    # (empty: off). The console serves its own on /metrics.
    WORKER_METRICS_ADDRESS = os.environ.get("WORKER_METRICS_ADDRESS", "")
    # Bearer token for the console's /metrics; empty: only loopback clients may scrape.
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
    # Worker heartbeat rows (Workers page): one write per worker process this often.
    WORKER_HEARTBEAT_SECONDS = _int("WORKER_HEARTBEAT_SECONDS", 15)
    # OpenTelemetry tracing on the console's and the workers' Temporal clients (off by
    # default); spans go to OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, else to stderr.
    OTEL_ENABLED = _bool("OTEL_ENABLED", False)
    OTEL_SERVICE_NAME = os.environ.get("OTEL_SERVICE_NAME", "estuary-ops")

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
    # The cookie keeps the expiry it got at sign-in (the absolute lifetime) instead of
    # being signed and sent again on every response; the idle timeout is the server's
    # (`staff_session.last_seen_at`), so nothing depends on the cookie moving forward.
    SESSION_REFRESH_EACH_REQUEST = False
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    LOGIN_MAX_FAILURES = _int("LOGIN_MAX_FAILURES", 5)
    LOGIN_LOCKOUT_MINUTES = _int("LOGIN_LOCKOUT_MINUTES", 15)
    # Password checks at once per process (each ~128 MiB at the production cost), and how
    # long an attempt waits for one before being told to try again.
    LOGIN_HASH_CONCURRENCY = _int("LOGIN_HASH_CONCURRENCY", 2)
    LOGIN_HASH_WAIT_SECONDS = _int("LOGIN_HASH_WAIT_SECONDS", 5)
    # Sign-in attempts and ended sessions older than this are deleted by the
    # maintenance schedule (the audit log keeps every sign-in for good).
    SIGNIN_RETENTION_DAYS = _int("SIGNIN_RETENTION_DAYS", 30)
    # Number of trusted reverse proxies in front of the console (0: trust no X-Forwarded-For).
    TRUSTED_PROXY_COUNT = _int("TRUSTED_PROXY_COUNT", 0)
    PASSWORD_HASH_METHOD = "scrypt:131072:8:1"

    # The audit chain's HMAC key (never SECRET_KEY) and retired keys still needed to
    # verify older rows; the append-only file the chain head is anchored in.
    AUDIT_KEY = os.environ.get("AUDIT_KEY") or None  # filled in by init()
    AUDIT_PREVIOUS_KEYS = parse_audit_keys(os.environ.get("AUDIT_PREVIOUS_KEYS", ""))
    AUDIT_ANCHOR_PATH = os.environ.get("AUDIT_ANCHOR_PATH") or str(VAR_DIR / "audit-anchor.log")

    WTF_CSRF_TIME_LIMIT = None  # token lives as long as the session
    WTF_CSRF_HEADERS = ["X-CSRFToken"]

    @classmethod
    def init(cls) -> None:
        """Fill settings that need side effects (the dev secret, audit and payload key files)."""
        check_task_queue_prefix(cls.TEMPORAL_TASK_QUEUE_PREFIX)
        if not cls.SECRET_KEY:
            cls.SECRET_KEY = _dev_secret_key()
        if not cls.PAYLOAD_KEYS:
            cls.PAYLOAD_KEYS = _dev_payload_keys()
        _check_payload_keys(cls)
        if not cls.AUDIT_KEY:
            cls.AUDIT_KEY = _dev_key("audit_key")
        _warn_plaintext_api_key(cls)


def _warn_plaintext_api_key(cls: type[Config]) -> None:
    if cls.TEMPORAL_API_KEY and cls.TEMPORAL_TLS is False:
        logging.getLogger("config").warning(
            "TEMPORAL_API_KEY is set but TEMPORAL_TLS=0: the API key is sent in plaintext"
        )


class ProductionConfig(Config):
    ENV_NAME = "production"
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True

    @classmethod
    def init(cls) -> None:
        """Refuse weak or missing settings; each message names the setting."""
        secret = os.environ.get("SECRET_KEY")
        check_key_strength("SECRET_KEY", secret)
        database_url = os.environ.get("DATABASE_URL", "")
        if not database_url:
            raise RuntimeError("DATABASE_URL must be set in production (ESTUARY_ENV=production)")
        if not database_url.startswith(("postgresql://", "postgresql+")):
            raise RuntimeError(
                "DATABASE_URL must be a PostgreSQL URL in production "
                "(postgresql+psycopg://user:pass@host:5432/estuary)"
            )
        audit_key = os.environ.get("AUDIT_KEY")
        check_key_strength("AUDIT_KEY", audit_key)
        if audit_key == secret:
            raise RuntimeError("AUDIT_KEY must differ from SECRET_KEY")
        if not os.environ.get("AUDIT_ANCHOR_PATH"):
            raise RuntimeError(
                "AUDIT_ANCHOR_PATH must be set in production: an append-only file outside "
                "the database where the audit chain head is anchored"
            )
        for name in (
            "TEMPORAL_TLS_SERVER_CA_CERT",
            "TEMPORAL_TLS_CLIENT_CERT",
            "TEMPORAL_TLS_CLIENT_KEY",
        ):
            path = os.environ.get(name)
            if path and not Path(path).is_file():
                raise RuntimeError(f"{name} names {path!r}, which is not a readable file")
        if not os.environ.get("PAYLOAD_KEYS"):
            raise RuntimeError(
                "PAYLOAD_KEYS must be set in production (ESTUARY_ENV=production): payloads "
                "carry personal data and are encrypted before they reach Temporal"
            )
        cls.SECRET_KEY = secret
        # From the environment now (not the class default read at import), so a key the
        # development config generated can never stand in for production's.
        cls.PAYLOAD_KEYS = os.environ["PAYLOAD_KEYS"]
        cls.PAYLOAD_KEY_ID = os.environ.get("PAYLOAD_KEY_ID") or None
        cls.AUDIT_KEY = audit_key
        cls.SQLALCHEMY_DATABASE_URI = database_url
        cls.TEMPORAL_TASK_QUEUE_PREFIX = os.environ.get("TEMPORAL_TASK_QUEUE_PREFIX", "")
        check_task_queue_prefix(cls.TEMPORAL_TASK_QUEUE_PREFIX)
        _check_payload_keys(cls)
        _warn_plaintext_api_key(cls)


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-only-secret"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    PASSWORD_HASH_METHOD = "scrypt:1024:8:1"  # fast hashes in tests only
    AUDIT_KEY = "testing-only-audit-key"
    AUDIT_ANCHOR_PATH = ""  # tests that anchor give their own file
    # Off unless a test turns it on: most tests run workers on the test server's own
    # client, which has no codec (tests/test_payload_codec.py runs both sides with keys).
    PAYLOAD_KEYS = None
    PAYLOAD_KEY_ID = None
    # Tests look at the runs list right after starting runs, or changing what it names.
    RUNS_LIST_CACHE_SECONDS = 0
    RUN_LABELS_CACHE_SECONDS = 0

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
