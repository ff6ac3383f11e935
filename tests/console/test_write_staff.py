"""Staff admin: creating users (with field messages for bad input), setting roles and
approver limits, disabling (their sessions end at once), resetting passwords."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import func, select

from dashboard.permissions import MATRIX
from estuary.db import db
from estuary.models import StaffSession, StaffUser
from tests.console.write_support import (
    PASSWORD,
    audit_events,
    count_rows,
    login,
    sign_in,
    unreachable_gateway,
)


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _user(app, email: str) -> StaffUser | None:
    with app.app_context():
        user = db.session.scalar(select(StaffUser).where(StaffUser.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


def test_everyone_sees_users_and_the_matrix_only_admins_see_changes(app):
    unreachable_gateway(app)
    viewer, _ = login(app, "viewer")
    page = _text(viewer.get("/staff/"))
    assert 'data-testid="permissions-matrix"' in page
    for action in MATRIX:
        assert f'<td class="mono">{action}</td>' in page
    assert "Create a user" not in page
    admin, _ = login(app, "admin")
    assert "Create a user" in _text(admin.get("/staff/"))


GOOD = {
    "email": "Nia@Test.Local",
    "name": "Nia",
    "role": "approver",
    "password": "long enough pass",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"email": "not-an-email"}, "is not an email address"),
        ({"role": "superuser"}, "role must be one of"),
        ({"name": ""}, "name is required"),
        ({"name": "n" * 201}, "name is required"),
        ({"password": "short"}, "at least 12 characters"),
        ({"password": "p" * 257}, "at most 256 characters"),
        ({"approval_limit": "NaN"}, "is not an amount"),
        ({"approval_limit": "-5"}, "greater than zero"),
        ({"approval_limit": "1e309"}, "is not an amount"),
    ],
)
def test_create_user_refuses_bad_input(app, change, message):
    unreachable_gateway(app)
    admin, _ = login(app, "admin")
    before = count_rows(app, StaffUser)
    response = admin.post("/staff/create", data={**GOOD, **change})
    assert response.status_code == 422
    assert message in _text(response)
    assert count_rows(app, StaffUser) == before
    assert audit_events(app, action="staff.create")[-1].outcome == "invalid"


def test_create_set_role_and_limit(app):
    unreachable_gateway(app)
    admin, admin_user = login(app, "admin")
    created = admin.post("/staff/create", data={**GOOD, "approval_limit": "2500.00"})
    assert created.status_code == 303
    nia = _user(app, "nia@test.local")
    assert nia.role == "approver" and nia.approval_limit_cents == 250_000
    assert nia.password_hash != GOOD["password"] and nia.password_hash.startswith("scrypt")
    duplicate = admin.post("/staff/create", data=GOOD)
    assert duplicate.status_code == 422 and "already has an account" in _text(duplicate)

    bad = admin.post(f"/staff/{nia.id}/role", data={"role": "root"})
    assert bad.status_code == 422
    changed = admin.post(f"/staff/{nia.id}/role", data={"role": "operator", "approval_limit": ""})
    assert changed.status_code == 303
    nia = _user(app, "nia@test.local")
    assert nia.role == "operator" and nia.approval_limit_cents is None
    own = admin.post(f"/staff/{admin_user.id}/role", data={"role": "viewer"})
    assert own.status_code == 422 and "your own role" in _text(own)
    assert _user(app, admin_user.email).role == "admin"
    assert admin.post("/staff/999999/role", data={"role": "viewer"}).status_code == 404


def test_disabling_ends_the_users_sessions_at_once(app):
    unreachable_gateway(app)
    admin, admin_user = login(app, "admin")
    victim_client, victim = login(app, "operator")
    assert victim_client.get("/staff/").status_code == 200
    response = admin.post(f"/staff/{victim.id}/disable")
    assert response.status_code == 303
    # The next request of the disabled user's open session is signed out.
    after = victim_client.get("/staff/")
    assert after.status_code == 302 and "/auth/login" in after.headers["Location"]
    with app.app_context():
        open_sessions = db.session.scalar(
            select(func.count(StaffSession.id)).where(
                StaffSession.user_id == victim.id, StaffSession.ended_at.is_(None)
            )
        )
    assert open_sessions == 0
    fresh = app.test_client()
    refused = fresh.post("/auth/login", data={"email": victim.email, "password": PASSWORD})
    assert refused.status_code == 401
    assert admin.post(f"/staff/{admin_user.id}/disable").status_code == 422
    assert not _user(app, admin_user.email).disabled
    assert admin.post(f"/staff/{victim.id}/enable").status_code == 303
    assert not _user(app, victim.email).disabled
    event = next(e for e in audit_events(app, action="staff.disable") if e.outcome == "success")
    assert "1 sessions ended" in event.detail


def test_reset_password_ends_sessions_and_the_new_one_works(app):
    unreachable_gateway(app)
    admin, _ = login(app, "admin")
    old_client, user = login(app, "viewer")
    short = admin.post(f"/staff/{user.id}/password", data={"password": "tiny"})
    assert short.status_code == 422 and "at least 12" in _text(short)
    assert old_client.get("/staff/").status_code == 200
    ok = admin.post(f"/staff/{user.id}/password", data={"password": "a brand new passphrase"})
    assert ok.status_code == 303
    assert old_client.get("/staff/").status_code == 302
    new_client = app.test_client()
    signed = new_client.post(
        "/auth/login", data={"email": user.email, "password": "a brand new passphrase"}
    )
    assert signed.status_code == 302
    with pytest.raises(AssertionError):
        sign_in(app, user)  # the old password no longer works
    event = audit_events(app, action="staff.reset_password")[-1]
    assert "a brand new passphrase" not in event.params_json
