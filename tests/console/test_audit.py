"""The audit log: hash chain verified (and an edited or deleted row found), the page's
filters, the CSV export that neutralises formula cells, secrets redacted, sign-in
successes and failures recorded."""

from __future__ import annotations

import csv
import html
import io
import json

from sqlalchemy import delete, text, update

from dashboard.extensions import db
from dashboard.models import AuditEvent
from dashboard.services import audit
from tests.conftest import make_user
from tests.console.write_support import PASSWORD, audit_events, login, unreachable_gateway


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _record(app, **kwargs) -> int:
    with app.app_context():
        kwargs.setdefault("actor", "cli:test")
        kwargs.setdefault("role", "-")
        kwargs.setdefault("action", "test.action")
        return audit.record(**kwargs).id


def test_verify_passes_then_finds_an_edited_row(app, runner):
    ids = [_record(app, target=f"thing:{i}", reason=f"r{i}") for i in range(5)]
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "5 events verified" in result.output
    with app.app_context():
        db.session.execute(
            update(AuditEvent).where(AuditEvent.id == ids[2]).values(reason="nothing to see")
        )
        db.session.commit()
        check = audit.verify()
    assert not check.ok and check.event_id == ids[2] and "edited" in check.problem
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"AUDIT CHAIN BROKEN at event {ids[2]}" in result.output


def test_verify_finds_a_deleted_row(app, runner):
    ids = [_record(app, target=f"thing:{i}") for i in range(4)]
    with app.app_context():
        db.session.execute(delete(AuditEvent).where(AuditEvent.id == ids[1]))
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"event {ids[2]}" in result.output and "removed or inserted" in result.output


def test_verify_finds_a_recomputed_hash_that_breaks_the_next_link(app, runner):
    """An editor who also recomputes the edited row's hash still breaks the chain."""
    ids = [_record(app, target=f"thing:{i}") for i in range(3)]
    with app.app_context():
        row = db.session.get(AuditEvent, ids[0])
        row.reason = "forged"
        row.hash = audit._digest(row)
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and f"event {ids[1]}" in result.output


def test_sign_in_successes_and_failures_are_audited(app):
    app.config["WTF_CSRF_ENABLED"] = False
    user = make_user(app, "viewer", email="vera@test.local")
    client = app.test_client()
    client.post("/auth/login", data={"email": "vera@test.local", "password": "wrong password"})
    client.post("/auth/login", data={"email": "vera@test.local", "password": PASSWORD})
    events = audit_events(app, action="auth.login")
    assert [(e.outcome, e.actor) for e in events] == [
        ("denied", "vera@test.local"),
        ("success", user.email),
    ]
    assert "wrong password" not in events[0].params_json + events[0].detail
    assert events[1].client_addr and events[1].request_id


def test_audit_page_filters_and_validates(app):
    unreachable_gateway(app)
    client, _ = login(app, "viewer")
    _record(app, actor="ada@test.local", action="approvals.approve", target="payout:7")
    _record(
        app, actor="bea@test.local", action="approvals.reject", target="payout:8", outcome="denied"
    )
    _record(app, actor="100%@test.local", action="staff.create", target="staff:3")
    page = _text(client.get("/audit/?actor=ADA"))
    assert "payout:7" in page and "payout:8" not in page
    page = _text(client.get("/audit/?action=approvals&outcome=denied"))
    assert "payout:8" in page and "payout:7" not in page
    page = _text(client.get("/audit/?target=payout:7"))
    assert "approvals.approve" in page and "staff:3" not in page
    # LIKE wildcards are plain characters.
    page = _text(client.get("/audit/?actor=100%25"))
    assert "staff:3" in page and "payout:7" not in page
    page = _text(client.get("/audit/?since=2001-01-01T00:00&until=2001-01-02T00:00"))
    assert "No audit entries match" in page
    for query, message in (
        ("outcome=bogus", "must be one of"),
        ("since=yesterday", "is not a date and time"),
        ("since=2026-01-02T00:00&until=2026-01-01T00:00", "must be later"),
        ("actor=" + "a" * 201, "at most 200"),
        ("before=abc", "damaged"),
    ):
        response = client.get(f"/audit/?{query}")
        assert response.status_code == 422, query
        assert message in _text(response), query


def test_audit_page_pages_by_id(app):
    unreachable_gateway(app)
    client, _ = login(app, "viewer")
    for i in range(60):
        _record(app, target=f"item:{i:03d}")
    first = _text(client.get("/audit/"))
    assert "item:059" in first and "item:005" not in first
    assert "Older entries" in first
    href = next(p for p in first.split('"') if "before=" in p)
    second = _text(client.get(href))
    assert "item:005" in second and "item:059" not in second


def test_csv_export_neutralises_formula_cells(app):
    unreachable_gateway(app)
    client, user = login(app, "viewer")  # every role may export
    dangerous = ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    for i, value in enumerate(dangerous):
        _record(app, actor=value, target=f"t:{i}", reason=value, params={"note": value})
    response = client.get("/audit/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["id", "occurred_at", "actor"]
    by_target = {r[header.index("target")]: r for r in body}
    for i, value in enumerate(dangerous):
        row = by_target[f"t:{i}"]
        assert row[header.index("actor")] == "'" + value
        assert row[header.index("reason")] == "'" + value
    for row in body:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    # The export itself is audited (who took a copy of the trail).
    assert audit_events(app, action="audit.export")[-1].actor == user.email
    filtered = client.get("/audit/export.csv?target=t:1")
    assert filtered.get_data(as_text=True).count("\r\n") == 2  # header + one row
    assert client.get("/audit/export.csv?outcome=nope").status_code == 422


def test_secrets_are_redacted_and_csrf_tokens_never_kept(app):
    unreachable_gateway(app)
    admin, _ = login(app, "admin")
    admin.post(
        "/staff/create",
        data={
            "email": "new@test.local",
            "name": "New",
            "role": "viewer",
            "password": "a very secret password",
            "csrf_token": "token-value",
        },
    )
    with app.app_context():
        dump = json.dumps(
            [list(r) for r in db.session.execute(text("SELECT * FROM audit_event")).all()],
            default=str,
        )
    assert "a very secret password" not in dump
    assert "token-value" not in dump
    event = audit_events(app, action="staff.create")[-1]
    assert event.outcome == "success"
    assert json.loads(event.params_json)["email"] == "new@test.local"


def test_every_event_has_the_request_facts(app):
    unreachable_gateway(app)
    client, user = login(app, "operator")
    client.post("/runs/some-run/cancel", data={}, headers={"X-Request-Id": "req-12345678"})
    event = audit_events(app, action="actions.cancel")[-1]
    assert event.actor == user.email and event.role == "operator"
    assert event.outcome == "invalid" and event.request_id == "req-12345678"
    assert event.client_addr == "127.0.0.1"
    assert event.occurred_at is not None and len(event.hash) == 64
    with app.app_context():
        assert audit.verify().ok


def test_redaction_hides_secrets_but_not_lookalikes():
    from dashboard.services.audit import redact

    out = redact({"password": "x", "api_key": "k", "csrf_token": "t", "passed": True, "keys": 2})
    assert out == {
        "password": "[redacted]",
        "api_key": "[redacted]",
        "csrf_token": "[redacted]",
        "passed": True,
        "keys": 2,
    }
