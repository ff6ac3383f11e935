"""Sign-in and sign-out (built in the skeleton): wrong password, rate limits per account
and per address, server-side logout, idle timeout, and no open redirect through `next`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import StaffSession
from tests.conftest import make_user
from tests.console.read_support import PASSWORD


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


def test_rate_limit_per_account(app, anon):
    user = make_user(app, "viewer", email="limited@test.local")
    limit = app.config["LOGIN_MAX_FAILURES"]
    for i in range(limit):
        assert _sign_in(anon, user.email, "nope", addr=f"10.1.0.{i}").status_code == 401
    # the right password from a fresh address is refused while the account is locked
    response = _sign_in(anon, user.email, PASSWORD, addr="10.9.9.9")
    assert response.status_code == 401
    assert "Too many failed sign-ins" in response.get_data(as_text=True)


def test_rate_limit_per_address(app, anon):
    victim = make_user(app, "viewer", email="victim@test.local")
    limit = app.config["LOGIN_MAX_FAILURES"] * 4
    for i in range(limit):  # different accounts, one address: spraying
        _sign_in(anon, f"nobody{i}@test.local", "nope", addr="10.2.0.1")
    response = _sign_in(anon, victim.email, PASSWORD, addr="10.2.0.1")
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    # the same account from another address still works
    assert _sign_in(anon, victim.email, PASSWORD, addr="10.2.0.2").status_code == 302


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
