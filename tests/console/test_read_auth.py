"""Sign-in and sign-out: wrong password, a progressive delay per account and address, a
hard limit per address, a busy console, pruning, server-side logout, idle timeout, and no
open redirect through `next`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from estuary.db import db
from estuary.models import LoginAttempt, SignInThrottle, StaffSession
from estuary.models.base import utcnow
from tests.conftest import make_user
from tests.console.read_support import PASSWORD
from tests.sql_sent import sql_sent


@pytest.fixture
def anon(app):
    app.config["WTF_CSRF_ENABLED"] = False
    return app.test_client()


def _sign_in(client, email: str, password: str = PASSWORD, addr: str = "10.0.0.1", next_=None):
    url = "/auth/login" + (f"?next={next_}" if next_ is not None else "")
    return client.post(
        url, data={"email": email, "password": password}, environ_base={"REMOTE_ADDR": addr}
    )


def test_wrong_password_is_refused(app, anon):
    user = make_user(app, "viewer", email="wrong@test.local")
    response = _sign_in(anon, user.email, "not the password")
    assert response.status_code == 401
    assert "Email or password is not right" in response.get_data(as_text=True)
    assert anon.get("/").status_code == 302  # still anonymous


def _attempt_rows(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [(a.email, a.outcome) for a in db.session.scalars(select(LoginAttempt))]


def test_wrong_passwords_slow_the_address_not_the_account(app, anon, monkeypatch):
    """Past the limit, one account from one address waits; its owner elsewhere signs in."""
    from estuary.services import signin

    # The wait is counted from the last failure: a still clock keeps it at the full delay
    # however long the attempts take (a slow CI run saw "Wait 1 seconds").
    now = utcnow()
    monkeypatch.setattr(signin, "utcnow", lambda: now)
    user = make_user(app, "viewer", email="limited@test.local")
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        assert _sign_in(anon, user.email, "nope", addr="10.1.0.1").status_code == 401
    # the right password from the attacker's address must wait (progressive delay) ...
    response = _sign_in(anon, user.email, PASSWORD, addr="10.1.0.1")
    assert response.status_code == 429
    assert "Too many failed sign-ins. Wait 2 seconds" in response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "2"
    # ... while the staff member at their own address is not locked out
    assert _sign_in(anon, user.email, PASSWORD, addr="10.9.9.9").status_code == 302
    outcomes = [o for _, o in _attempt_rows(app)]
    assert outcomes == ["failed"] * limit + ["throttled_account", "success"]


def test_the_delay_doubles_and_passes(app, anon, monkeypatch):
    from estuary.services import signin

    user = make_user(app, "viewer", email="slow@test.local")
    limit = app.config["LOGIN_MAX_FAILURES"]
    clock = [utcnow()]
    monkeypatch.setattr(signin, "utcnow", lambda: clock[0])
    for _ in range(limit):
        _sign_in(anon, user.email, "nope", addr="10.1.0.2")
    for wait in (2, 4, 8):
        refused = _sign_in(anon, user.email, "nope", addr="10.1.0.2")
        assert f"Wait {wait} seconds" in refused.get_data(as_text=True)
        clock[0] += timedelta(seconds=wait)
        assert _sign_in(anon, user.email, "nope", addr="10.1.0.2").status_code == 401
    assert signin.delay_seconds(40, 900) == 900  # capped at the lockout period
    clock[0] += timedelta(seconds=16)
    assert _sign_in(anon, user.email, PASSWORD, addr="10.1.0.2").status_code == 302
    # success forgives: the next wrong password is a free attempt again
    anon.post("/auth/logout")
    assert _sign_in(anon, user.email, "nope", addr="10.1.0.2").status_code == 401


def test_rate_limit_per_address(app, anon):
    victim = make_user(app, "viewer", email="victim@test.local")
    limit = app.config["LOGIN_MAX_FAILURES"] * 4
    for i in range(limit):  # different accounts, one address: spraying
        _sign_in(anon, f"nobody{i}@test.local", "nope", addr="10.2.0.1")
    response = _sign_in(anon, victim.email, PASSWORD, addr="10.2.0.1")
    assert response.status_code == 429
    assert "Too many failed sign-ins from this address" in response.get_data(as_text=True)
    # the same account from another address still works
    assert _sign_in(anon, victim.email, PASSWORD, addr="10.2.0.2").status_code == 302


def test_a_busy_console_asks_to_wait_and_checks_nothing(app, anon, monkeypatch):
    from estuary.services import signin

    user = make_user(app, "viewer", email="busy@test.local")
    app.config["LOGIN_HASH_WAIT_SECONDS"] = 0
    slots = signin._hash_semaphore()
    held = [slots.acquire(blocking=False) for _ in range(app.config["LOGIN_HASH_CONCURRENCY"])]
    try:
        response = _sign_in(anon, user.email, PASSWORD, addr="10.3.0.1")
    finally:
        for got in held:
            if got:
                slots.release()
    assert response.status_code == 429
    assert "busy checking other sign-ins" in response.get_data(as_text=True)
    assert _attempt_rows(app) == [(user.email, "busy")]
    assert _sign_in(anon, user.email, PASSWORD, addr="10.3.0.1").status_code == 302


def test_prune_deletes_old_attempts_and_ended_sessions(app, anon):
    from estuary.services import signin

    user = make_user(app, "viewer", email="prune@test.local")
    _sign_in(anon, user.email, "nope", addr="10.4.0.1")
    _sign_in(anon, user.email, PASSWORD, addr="10.4.0.1")
    anon.post("/auth/logout")
    with app.app_context():
        kept = signin.prune(timedelta(days=30))
        assert kept == {"login_attempts": 0, "sessions": 0, "counters": 0}
        old = utcnow() - timedelta(days=31)
        db.session.execute(update(LoginAttempt).values(attempted_at=old))
        db.session.execute(update(StaffSession).values(ended_at=old))
        db.session.execute(update(SignInThrottle).values(window_start=0))
        gone = signin.prune(timedelta(days=30))
    assert gone == {"login_attempts": 2, "sessions": 1, "counters": 1}


def test_logout_ends_the_session_on_the_server(app, anon):
    user = make_user(app, "viewer", email="leaver@test.local")
    assert _sign_in(anon, user.email).status_code == 302
    assert anon.get("/").status_code == 200
    stolen = anon.get_cookie("session")
    assert stolen is not None
    assert anon.post("/auth/logout").status_code == 302
    # replaying the old cookie does not bring the session back
    replay = app.test_client()
    replay.set_cookie("session", stolen.value)
    response = replay.get("/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    with app.app_context():
        row = db.session.scalar(select(StaffSession).where(StaffSession.user_id == user.id))
        assert row.ended_at is not None


def test_idle_timeout_signs_out(app, anon):
    user = make_user(app, "viewer", email="idle@test.local")
    assert _sign_in(anon, user.email).status_code == 302
    assert anon.get("/").status_code == 200
    with app.app_context():
        row = db.session.scalar(select(StaffSession).where(StaffSession.user_id == user.id))
        row.last_seen_at = row.last_seen_at - timedelta(
            minutes=app.config["SESSION_IDLE_MINUTES"] + 1
        )
        db.session.commit()
    response = anon.get("/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_a_page_checks_the_person_and_their_session_in_one_read_and_sets_no_cookie(app, anon):
    user = make_user(app, "viewer", email="reader@test.local")
    assert _sign_in(anon, user.email).status_code == 302
    assert anon.get("/payouts").status_code == 200
    with app.app_context(), sql_sent(db.engine) as sent:
        response = anon.get("/payouts")
    assert response.status_code == 200
    about_who = [s for s in sent if "staff_session" in s or "FROM staff_user" in s]
    assert len(about_who) == 1 and "JOIN staff_session" in about_who[0], about_who
    # The cookie keeps its sign-in expiry: an ordinary page does not sign and send it again.
    assert "Set-Cookie" not in response.headers

    # Another person's session token with this person's id signs out, as before.
    other = make_user(app, "viewer", email="other-reader@test.local")
    theirs = app.test_client()
    assert _sign_in(theirs, other.email, addr="10.0.0.2").status_code == 302
    with anon.session_transaction() as mine, theirs.session_transaction() as them:
        mine["sid"] = them["sid"]
    response = anon.get("/payouts")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "evil.example",
    ],
)
def test_next_never_redirects_off_site(app, anon, target):
    user = make_user(app, "viewer", email="next@test.local")
    response = _sign_in(anon, user.email, next_=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_next_keeps_a_local_path(app, anon):
    user = make_user(app, "viewer", email="local@test.local")
    response = _sign_in(anon, user.email, next_="/runs?status=Failed")
    assert response.headers["Location"] == "/runs?status=Failed"
