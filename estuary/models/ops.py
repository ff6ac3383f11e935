"""Staff users, their server-side sessions, sign-in attempts, ops flags and the audit log."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from estuary.db import db
from estuary.models.base import UTCDateTime, utcnow

ROLES = ("viewer", "operator", "approver", "admin")


class StaffUser(db.Model):
    """A staff login. It answers the few questions flask-login asks of a user
    (`is_active`, `is_authenticated`, `is_anonymous`, `get_id`) itself, so the domain
    does not depend on the console's sign-in library."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="viewer")
    password_hash: Mapped[str] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Approver limit in cents (None: no limit beyond the role's).
    approval_limit_cents: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # IANA time zone the console shows times in (None: not chosen yet; the browser's
    # zone is saved on the first page it loads).
    time_zone: Mapped[str | None] = mapped_column(String(64))

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(
            password, method=current_app.config["PASSWORD_HASH_METHOD"]
        )

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # flask-login refuses disabled users
        return not self.disabled

    @property
    def is_authenticated(self) -> bool:
        return self.is_active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<StaffUser {self.email} {self.role}>"


class StaffSession(db.Model):
    """A signed-in browser session; ending it here signs the browser out."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    client_addr: Mapped[str | None] = mapped_column(String(64))


class LoginAttempt(db.Model):
    __tablename__ = "login_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    client_addr: Mapped[str] = mapped_column(String(64), index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # failed (also a crash mid-check), success, busy, throttled_account, throttled_address
    outcome: Mapped[str] = mapped_column(String(20), default="failed")


class SignInThrottle(db.Model):
    """A sign-in counter, claimed by one conditional UPDATE before any password is hashed,
    so parallel attempts cannot all read the same old count.

    `key` is `addr:<address>` (hard limit per client address) or `pair:<email>|<address>`
    (progressive delay for one account from one address). Times are epoch seconds so the
    claim's arithmetic is plain integers on every database.
    """

    __tablename__ = "signin_throttle"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(330), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[int] = mapped_column(BigInteger, default=0)
    next_allowed: Mapped[int] = mapped_column(BigInteger, default=0)


class OpsFlag(db.Model):
    """Something a workflow could not decide alone and wants a person to look at."""

    __tablename__ = "ops_flag"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(250), unique=True)
    kind: Mapped[str] = mapped_column(String(50), index=True)  # unresolved_session, stalled_...
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[int] = mapped_column(Integer)
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(String(1000))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(db.Model):
    """Append-only; `hash` is an HMAC-SHA-256 (key `AUDIT_KEY`, fingerprint `key_id`)
    over the row's content, its `seq` and the previous row's hash. Rows from before the
    keyed chain have an empty `key_id` and an unkeyed SHA-256 in `hash`."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    key_id: Mapped[str] = mapped_column(String(16), default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(254), index=True)  # email or "anonymous"
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(80), index=True)
    target: Mapped[str] = mapped_column(String(300), default="", index=True)
    params_json: Mapped[str] = mapped_column(Text, default="{}")
    reason: Mapped[str] = mapped_column(String(1000), default="")
    outcome: Mapped[str] = mapped_column(String(20), index=True)  # success/denied/error/invalid
    detail: Mapped[str] = mapped_column(String(1000), default="")
    client_addr: Mapped[str] = mapped_column(String(64), default="")
    request_id: Mapped[str] = mapped_column(String(64), default="")
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class WorkerHeartbeat(db.Model):
    """One row per worker process, rewritten every WORKER_HEARTBEAT_SECONDS while it runs."""

    __tablename__ = "worker_heartbeat"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The process's Temporal identity (`pid@host`), as the task-queue pollers show it.
    identity: Mapped[str] = mapped_column(String(200), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    task_queues: Mapped[str] = mapped_column(String(1000))  # comma-separated
    build_id: Mapped[str | None] = mapped_column(String(200))
    activity_slots_used: Mapped[int] = mapped_column(Integer, default=0)
    activity_slots_max: Mapped[int] = mapped_column(Integer, default=0)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_beat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
