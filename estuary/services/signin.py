"""Sign-in rules: rate limits claimed before the password is hashed, a bound on parallel
hashing, server-side sessions with idle and absolute timeouts, and pruning of old rows."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from estuary.db import db
from estuary.models import LoginAttempt, SignInThrottle, StaffSession, StaffUser
from estuary.models.base import utcnow

# A dummy hash so an unknown email costs the same time as a wrong password.
_DUMMY_USER = StaffUser(email="-", name="-", role="viewer", password_hash="")
# Password hashes at the production cost take ~128 MiB each; this bounds how many run at
# once in this process (created on first use, sized from LOGIN_HASH_CONCURRENCY).
_hash_slots: threading.BoundedSemaphore | None = None
_hash_slots_lock = threading.Lock()
# The first delayed attempt after the free ones waits this long; each next one doubles it,
# up to LOGIN_LOCKOUT_MINUTES.
FIRST_DELAY_SECONDS = 2

BAD_CREDENTIALS = "Email or password is not right, or the account is disabled."
BUSY = "The console is busy checking other sign-ins. Wait a few seconds and try again."


@dataclass(frozen=True)
class SignInResult:
    user: StaffUser | None
    error: str | None = None
    # HTTP status for a refusal: 401 wrong credentials, 429 slowed down or busy.
    status: int = 401
    retry_after: int | None = None


def delay_seconds(over_limit: int, cap_seconds: int) -> int:
    """How long the `over_limit`-th attempt past the free ones makes the next one wait."""
    if over_limit < 1:
        return 0
    return min(cap_seconds, FIRST_DELAY_SECONDS * 2 ** min(over_limit - 1, 30))


def _hash_semaphore() -> threading.BoundedSemaphore:
    global _hash_slots
    with _hash_slots_lock:
        if _hash_slots is None:
            _hash_slots = threading.BoundedSemaphore(
                max(1, int(current_app.config["LOGIN_HASH_CONCURRENCY"]))
            )
        return _hash_slots


def _ensure_counter(key: str, now: int) -> None:
    table = SignInThrottle.__table__
    values = {"key": key, "attempts": 0, "window_start": now, "next_allowed": 0}
    if db.engine.dialect.name == "postgresql":
        stmt = pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=["key"])
    else:
        stmt = sqlite_insert(table).values(**values).on_conflict_do_nothing(index_elements=["key"])
    db.session.execute(stmt)


def _claim_address(key: str, now: int, window: int, limit: int) -> int | None:
    """Count one attempt from an address; None when it has used up its window (hard lock)."""
    t = SignInThrottle.__table__
    expired = t.c.window_start < now - window
    row = db.session.execute(
        update(t)
        .where(t.c.key == key, or_(expired, t.c.attempts < limit))
        .values(
            attempts=case((expired, 1), else_=t.c.attempts + 1),
            window_start=case((expired, now), else_=t.c.window_start),
        )
        .returning(t.c.window_start)
    ).first()
    return None if row is None else int(row[0])


def _claim_pair(key: str, now: int, window: int, limit: int, cap: int) -> int | None:
    """Count one attempt on an account from an address; None when it must wait.

    The first `limit` attempts in a window are free; from then on each allowed attempt
    pushes `next_allowed` further out (doubling), in the same statement that counts it,
    so parallel attempts past the limit find it already pushed.
    """
    t = SignInThrottle.__table__
    expired = t.c.window_start < now - window
    attempts = case((expired, 1), else_=t.c.attempts + 1)
    steps = [(attempts - limit + 1 == n, now + delay_seconds(n, cap)) for n in range(1, 12)]
    row = db.session.execute(
        update(t)
        .where(
            t.c.key == key,
            # free attempts keep next_allowed at 0, so one test covers both cases
            or_(expired, t.c.next_allowed <= now),
        )
        .values(
            attempts=attempts,
            window_start=case((expired, now), else_=t.c.window_start),
            next_allowed=case((attempts < limit, 0), *steps, else_=now + cap),
        )
        .returning(t.c.attempts)
    ).first()
    return None if row is None else int(row[0])


def _wait_hint(key: str, now: int) -> int:
    row = db.session.scalar(select(SignInThrottle).where(SignInThrottle.key == key))
    return max(1, (row.next_allowed - now) if row else 1)


def authenticate(email: str, password: str, client_addr: str) -> SignInResult:
    """Check credentials under the per-address limit and the per-account-and-address delay.

    The attempt is counted (and committed) before the password is hashed, so N parallel
    attempts count N; hashing waits for one of a few slots, so parallel attempts cannot
    exhaust the process's memory. An attacker's failures slow down only the attacker's
    address: the account stays open to its owner elsewhere.

    Long on purpose: the order of claiming the throttle, looking up, hashing and recording is the
    security property, kept in one place.
    """
    email = (email or "").strip().lower()[:254]
    client_addr = (client_addr or "")[:64]
    config = current_app.config
    limit = int(config["LOGIN_MAX_FAILURES"])
    minutes = int(config["LOGIN_LOCKOUT_MINUTES"])
    window = minutes * 60
    now = int(utcnow().timestamp())
    addr_key, pair_key = f"addr:{client_addr}", f"pair:{email}|{client_addr}"

    _ensure_counter(addr_key, now)
    _ensure_counter(pair_key, now)
    db.session.commit()
    refusal: SignInResult | None = None
    window_start = _claim_address(addr_key, now, window, limit * 4)
    if window_start is None:
        refusal = SignInResult(
            None,
            f"Too many failed sign-ins from this address. Try again in {minutes} minutes.",
            429,
            window,
        )
        outcome = "throttled_address"
    elif _claim_pair(pair_key, now, window, limit, window) is None:
        db.session.rollback()  # the address's count too: this attempt is not checked
        wait = _wait_hint(pair_key, now)
        refusal = SignInResult(
            None, f"Too many failed sign-ins. Wait {wait} seconds and try again.", 429, wait
        )
        outcome = "throttled_account"
    else:
        outcome = "failed"  # until the check says otherwise; a crash mid-check stays failed
    attempt = LoginAttempt(email=email, client_addr=client_addr, succeeded=False, outcome=outcome)
    db.session.add(attempt)
    db.session.commit()
    if refusal is not None:
        return refusal

    slots = _hash_semaphore()
    if not slots.acquire(timeout=float(config["LOGIN_HASH_WAIT_SECONDS"])):
        attempt.outcome = "busy"
        db.session.commit()
        return SignInResult(None, BUSY, 429, 5)
    try:
        user = db.session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email))
        if user is None:
            if not _DUMMY_USER.password_hash:
                _DUMMY_USER.set_password(secrets.token_hex(8))
            _DUMMY_USER.check_password(password)
        ok = user is not None and user.check_password(password) and not user.disabled
    finally:
        slots.release()
    if not ok:
        return SignInResult(None, BAD_CREDENTIALS)
    attempt.succeeded, attempt.outcome = True, "success"
    # A success forgives this account's failures from this address, and gives the
    # address its attempt back (an office behind one address signs in all day).
    db.session.execute(delete(SignInThrottle).where(SignInThrottle.key == pair_key))
    db.session.execute(
        update(SignInThrottle)
        .where(SignInThrottle.key == addr_key, SignInThrottle.attempts > 0)
        .values(attempts=SignInThrottle.attempts - 1)
    )
    user.last_login_at = utcnow()
    db.session.commit()
    return SignInResult(user)


def prune(retention: timedelta) -> dict[str, int]:
    """Delete sign-in attempts and ended sessions older than `retention`, and counters
    whose window and delay have both passed. Returns how many of each went."""
    cutoff = utcnow() - retention
    now = int(utcnow().timestamp())
    window = int(current_app.config["LOGIN_LOCKOUT_MINUTES"]) * 60
    absolute = current_app.config["PERMANENT_SESSION_LIFETIME"]
    attempts = db.session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at < cutoff))
    sessions = db.session.execute(
        delete(StaffSession).where(
            or_(
                StaffSession.ended_at < cutoff,
                # never ended by a sign-out, but long past the absolute timeout
                StaffSession.created_at < cutoff - absolute,
            )
        )
    )
    counters = db.session.execute(
        delete(SignInThrottle).where(
            SignInThrottle.window_start < now - window, SignInThrottle.next_allowed <= now
        )
    )
    db.session.commit()
    return {
        "login_attempts": attempts.rowcount or 0,
        "sessions": sessions.rowcount or 0,
        "counters": counters.rowcount or 0,
    }


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


def user_and_session(
    user_id: int, token: str | None
) -> tuple[StaffUser | None, StaffSession | None]:
    """The staff member and their server-side session with this token, in one query (a
    console request needs both before anything else). The session is None when the
    token is not theirs; pass it to `session_is_valid`."""
    row = db.session.execute(
        select(StaffUser, StaffSession)
        .outerjoin(
            StaffSession,
            (StaffSession.user_id == StaffUser.id) & (StaffSession.token == (token or "")),
        )
        .where(StaffUser.id == user_id)
    ).first()
    return (row[0], row[1]) if row is not None else (None, None)


_READ = object()


def session_is_valid(token: str | None, user_id: int, row: Any = _READ) -> bool:
    """True if the session is open, belongs to the user, and is within both timeouts.

    `row`: the session as `user_and_session` read it (None: there is none), so it is
    not read again. Touches `last_seen_at` at most once a minute.
    """
    if not token:
        return False
    if row is _READ:
        row = db.session.scalar(select(StaffSession).where(StaffSession.token == token))
    if row is None or row.token != token or row.ended_at is not None or row.user_id != user_id:
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
