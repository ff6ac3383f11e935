"""Sign-in rules: rate limits, server-side sessions, idle and absolute timeouts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from dashboard.extensions import db
from dashboard.models import LoginAttempt, StaffSession, StaffUser
from dashboard.models.base import utcnow

# A dummy hash so an unknown email costs the same time as a wrong password.
_DUMMY_USER = StaffUser(email="-", name="-", role="viewer", password_hash="")


@dataclass(frozen=True)
class SignInResult:
    user: StaffUser | None
    error: str | None = None


def _recent_failures(column, value: str) -> int:
    window = utcnow() - timedelta(minutes=current_app.config["LOGIN_LOCKOUT_MINUTES"])
    return (
        db.session.scalar(
            select(func.count(LoginAttempt.id)).where(
                column == value,
                LoginAttempt.succeeded.is_(False),
                LoginAttempt.attempted_at >= window,
            )
        )
        or 0
    )


def authenticate(email: str, password: str, client_addr: str) -> SignInResult:
    """Check credentials under the per-account and per-address rate limits."""
    email = (email or "").strip().lower()[:254]
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    minutes = current_app.config["LOGIN_LOCKOUT_MINUTES"]
    if (
        _recent_failures(LoginAttempt.email, email) >= limit
        or _recent_failures(LoginAttempt.client_addr, client_addr) >= limit * 4
    ):
        return SignInResult(None, f"Too many failed sign-ins. Try again in {minutes} minutes.")
    user = db.session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email))
    if user is None:
        if not _DUMMY_USER.password_hash:
            _DUMMY_USER.set_password(secrets.token_hex(8))
        _DUMMY_USER.check_password(password)
    ok = user is not None and user.check_password(password) and not user.disabled
    db.session.add(LoginAttempt(email=email, client_addr=client_addr, succeeded=ok))
    if not ok:
        db.session.commit()
        return SignInResult(None, "Email or password is not right, or the account is disabled.")
    user.last_login_at = utcnow()
    db.session.commit()
    return SignInResult(user)


def start_session(user: StaffUser, client_addr: str) -> str:
    token = secrets.token_urlsafe(32)
    db.session.add(StaffSession(token=token, user_id=user.id, client_addr=client_addr))
    db.session.commit()
    return token


def end_session(token: str | None) -> None:
    if not token:
        return
    db.session.execute(
        update(StaffSession)
        .where(StaffSession.token == token, StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    db.session.commit()


def end_user_sessions(user_id: int) -> int:
    """End every session of a user (disable, role change, password reset). No commit."""
    result = db.session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    return result.rowcount or 0


def session_is_valid(token: str | None, user_id: int) -> bool:
    """True if the session is open, belongs to the user, and is within both timeouts.

    Touches `last_seen_at` at most once a minute.
    """
    if not token:
        return False
    row = db.session.scalar(select(StaffSession).where(StaffSession.token == token))
    if row is None or row.ended_at is not None or row.user_id != user_id:
        return False
    now = utcnow()
    idle = timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
    absolute = current_app.config["PERMANENT_SESSION_LIFETIME"]
    if now - row.last_seen_at > idle or now - row.created_at > absolute:
        row.ended_at = now
        db.session.commit()
        return False
    if now - row.last_seen_at > timedelta(minutes=1):
        row.last_seen_at = now
        db.session.commit()
    return True
