"""The audit log: hash chain verified (and an edited or deleted row found), the page's
filters, the CSV export that neutralises formula cells, secrets redacted, sign-in
successes and failures recorded."""

from __future__ import annotations

import csv
import html
import io
import json

import pytest
from sqlalchemy import delete, select, text, update

from estuary.db import db
from estuary.models import AuditEvent
from estuary.services import audit
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


@pytest.fixture
def anchored(app, tmp_path):
    """The app with an anchor file, as in every real deployment."""
    app.config["AUDIT_ANCHOR_PATH"] = str(tmp_path / "audit-anchor.log")
    return tmp_path / "audit-anchor.log"


def _verify(runner) -> tuple[int, str]:
    result = runner.invoke(args=["audit", "verify"])
    return result.exit_code, result.output


def _resign_from(app, first_id: int, key: str) -> None:
    """What an attacker holding the key does: re-sign every row from `first_id` on."""
    with app.app_context():
        prev = audit.GENESIS
        for row in db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all():
            if row.id >= first_id:
                row.prev_hash = prev
                row.hash = audit._mac(row, key)
                db.session.flush()
            prev = row.hash
        db.session.commit()


def test_verify_passes_and_anchors_the_head(app, runner, anchored):
    ids = [_record(app, target=f"thing:{i}") for i in range(5)]
    code, output = _verify(runner)
    assert code == 0, output
    assert "5 events verified" in output and "Head anchored: sequence number 5" in output
    entry = json.loads(anchored.read_text().splitlines()[-1])
    assert entry["seq"] == 5
    with app.app_context():
        assert entry["mac"] == db.session.get(AuditEvent, ids[-1]).hash
    # the same head is not anchored twice; a new head is appended
    _verify(runner)
    assert len(anchored.read_text().splitlines()) == 1
    _record(app, target="thing:5")
    _verify(runner)
    assert [json.loads(x)["seq"] for x in anchored.read_text().splitlines()] == [5, 6]


def test_tamper_edit_is_named_by_sequence_number(app, runner, anchored):
    ids = [_record(app, target=f"thing:{i}", reason=f"r{i}") for i in range(5)]
    with app.app_context():
        db.session.execute(
            update(AuditEvent).where(AuditEvent.id == ids[2]).values(reason="nothing to see")
        )
        db.session.commit()
        check = audit.verify()
    assert not check.ok and (check.seq, check.kind, check.event_id) == (3, "edited", ids[2])
    code, output = _verify(runner)
    assert code == 1
    assert "AUDIT CHAIN BROKEN at sequence number 3 (edited" in output
    assert "the row was edited" in output
    assert not anchored.exists()  # a broken chain is never anchored


def test_tamper_delete_middle_is_a_gap(app, runner, anchored):
    ids = [_record(app, target=f"thing:{i}") for i in range(5)]
    with app.app_context():
        db.session.execute(delete(AuditEvent).where(AuditEvent.id.in_([ids[1], ids[2]])))
        db.session.commit()
    code, output = _verify(runner)
    assert code == 1
    assert "AUDIT CHAIN BROKEN at sequence number 2 (deleted" in output
    assert "events 2..3 are missing" in output


def test_tamper_delete_newest_is_caught_by_the_anchor(app, runner, anchored):
    ids = [_record(app, target=f"thing:{i}") for i in range(5)]
    assert _verify(runner)[0] == 0  # anchors seq 5
    with app.app_context():
        db.session.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids[3:])))
        db.session.commit()
    code, output = _verify(runner)
    assert code == 1
    assert "AUDIT CHAIN BROKEN at sequence number 4 (truncated" in output
    assert "the log ends at sequence number 3, but sequence number 5 was anchored" in output


def test_tamper_recompute_without_the_key_is_an_edit(app, runner, anchored):
    ids = [_record(app, target=f"thing:{i}") for i in range(3)]
    with app.app_context():
        row = db.session.get(AuditEvent, ids[2])
        row.reason = "forged"
        row.hash = audit._digest(row)  # the app's unkeyed digest
        db.session.commit()
    code, output = _verify(runner)
    assert code == 1 and "sequence number 3 (edited" in output
    with app.app_context():
        row = db.session.get(AuditEvent, ids[2])
        row.hash = audit._mac(row, "a key the attacker guessed")
        db.session.commit()
    code, output = _verify(runner)
    assert code == 1 and "sequence number 3 (edited" in output


def test_tamper_recompute_with_the_key_is_caught_by_the_anchor(app, runner, anchored):
    ids = [_record(app, target=f"thing:{i}") for i in range(5)]
    assert _verify(runner)[0] == 0
    with app.app_context():
        db.session.execute(
            update(AuditEvent).where(AuditEvent.id == ids[1]).values(actor="someone-else")
        )
        db.session.commit()
    _resign_from(app, ids[1], app.config["AUDIT_KEY"])
    with app.app_context():
        check = audit.verify(anchor=False)
    assert (check.ok, check.kind, check.seq) == (False, "rewritten", 5)
    code, output = _verify(runner)
    assert code == 1 and "sequence number 5 (rewritten" in output
    assert "rewritten and re-signed" in output


def test_tamper_replaced_or_cut_anchor_is_detected(app, runner, anchored):
    for i in range(3):
        _record(app, target=f"thing:{i}")
        assert _verify(runner)[0] == 0
    lines = anchored.read_text().splitlines()
    assert len(lines) == 3
    # replaced: a file written by someone without the key
    forged = json.loads(lines[0])
    forged["mac"] = "0" * 64
    anchored.write_text(json.dumps(forged) + "\n")
    code, output = _verify(runner)
    assert code == 1 and "AUDIT CHAIN BROKEN at the anchor file (anchor" in output
    assert "line 1: not signed by a known audit key" in output
    # cut: a line taken out of the middle
    anchored.write_text("\n".join([lines[0], lines[2]]) + "\n")
    code, output = _verify(runner)
    assert code == 1 and "line 2: does not follow the line before it" in output
    anchored.write_text("not json\n")
    assert "line 1: not an anchor entry" in _verify(runner)[1]


def test_key_rotation_keeps_old_rows_verifiable(app, runner, anchored):
    old_key = app.config["AUDIT_KEY"]
    ids = [_record(app, target=f"old:{i}") for i in range(3)]
    assert _verify(runner)[0] == 0
    app.config["AUDIT_KEY"] = "a-new-audit-key-after-rotation-0123456789"
    app.config["AUDIT_PREVIOUS_KEYS"] = [old_key]
    new_ids = [_record(app, target=f"new:{i}") for i in range(2)]
    with app.app_context():
        old_row, new_row = (
            db.session.get(AuditEvent, ids[0]),
            db.session.get(AuditEvent, new_ids[0]),
        )
        assert old_row.key_id == audit.key_id(old_key) != new_row.key_id
    code, output = _verify(runner)
    assert code == 0 and "5 events verified" in output, output
    # the retired key forgotten: its rows (and its anchor lines) can no longer be checked
    app.config["AUDIT_PREVIOUS_KEYS"] = []
    code, output = _verify(runner)
    assert code == 1 and "anchor file line 1: not signed by a known audit key" in output
    anchored.unlink()
    code, output = _verify(runner)
    assert code == 1 and "sequence number 1 (unknown_key" in output
    assert "neither AUDIT_KEY nor in AUDIT_PREVIOUS_KEYS" in output


def test_rows_from_before_the_keyed_chain_verify_only_as_its_prefix(app, runner, anchored):
    """Rows migrated from the unkeyed chain keep their digests; a forged unkeyed row
    after keyed ones is an edit."""
    ids = [_record(app, target=f"thing:{i}") for i in range(3)]
    with app.app_context():
        first = db.session.get(AuditEvent, ids[0])
        first.key_id = ""
        first.hash = audit._digest(first)
        db.session.flush()
    _resign_from(app, ids[1], app.config["AUDIT_KEY"])
    assert _verify(runner)[0] == 0
    with app.app_context():
        last = db.session.get(AuditEvent, ids[2])
        last.key_id, last.reason = "", "forged"
        last.hash = audit._digest(last)
        db.session.commit()
    code, output = _verify(runner)
    assert code == 1 and "sequence number 3 (edited" in output


def test_verify_without_an_anchor_file_warns(app, runner):
    _record(app, target="thing")
    code, output = _verify(runner)
    assert code == 0 and "AUDIT_ANCHOR_PATH is not set" in output


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
    # the sequence number `flask audit verify` names is on the page
    assert 'data-testid="audit-seq">#60<' in first
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
    event = audit_events(app, action="runs.cancel")[-1]
    assert event.actor == user.email and event.role == "operator"
    assert event.outcome == "invalid" and event.request_id == "req-12345678"
    assert event.client_addr == "127.0.0.1"
    assert event.occurred_at is not None and len(event.hash) == 64
    with app.app_context():
        assert audit.verify().ok


def test_redaction_hides_secrets_but_not_lookalikes():
    from estuary.services.audit import redact

    out = redact({"password": "x", "api_key": "k", "csrf_token": "t", "passed": True, "keys": 2})
    assert out == {
        "password": "[redacted]",
        "api_key": "[redacted]",
        "csrf_token": "[redacted]",
        "passed": True,
        "keys": 2,
    }


def test_oversized_and_unexpected_form_fields_are_not_kept(app):
    """300 extra 500-character fields and a `passwd` field on an invalid form: only the
    form's declared fields are recorded, each cut to the stated length."""
    gw = unreachable_gateway(app)
    client, _ = login(app, "operator")
    data = {f"extra_{i}": "x" * 500 for i in range(300)}
    data.update(
        {
            "passwd": "hunter2-in-clear",
            "practitioner_id": "not a number",
            "amount_cents": "9" * 5000,
            "action_reason": "r" * 400,
        }
    )
    response = client.post("/workflows/PractitionerPayoutWorkflow/start", data=data)
    assert response.status_code == 422
    assert gw.calls == 0
    event = audit_events(app, action="catalog.start")[-1]
    params = json.loads(event.params_json)
    assert len(event.params_json) < 2_000
    assert "hunter2-in-clear" not in event.params_json and "passwd" not in params
    assert not any(key.startswith("extra_") for key in params)
    assert set(params) <= {"practitioner_id", "amount_cents", "payment_method", "action_reason"}
    assert all(len(str(v)) <= audit.MAX_PARAM_LENGTH + 1 for v in params.values())


def test_redaction_by_pattern_and_bounded_size():
    from estuary.services.audit import MAX_PARAMS, redact

    out = redact(
        {
            "passwd": "a",
            "user_password": "b",
            "otp": "c",
            "otp_code": "d",
            "totpSecret": "e",
            "apiKey": "f",
            "private_key": "g",
            "session_token": "h",
            "note": "kept",
        }
    )
    assert out.pop("note") == "kept"
    assert set(out.values()) == {"[redacted]"}
    many = redact({f"f{i}": "v" * 1000 for i in range(100)})
    assert len(many) == MAX_PARAMS + 1 and many["_omitted_fields"] == 100 - MAX_PARAMS
    assert all(len(v) <= 201 for k, v in many.items() if k != "_omitted_fields")


def test_events_from_a_worker_activity_say_so(app):
    """An event written inside an activity (app_activity marks the context) is from the
    worker, not from a command line."""
    from flask import g

    with app.app_context():
        g.audit_origin = "worker"
        worker_event = audit.record(action="payments.payout_paid", target="payout:1")
        assert (worker_event.client_addr, worker_event.actor) == ("worker", "worker")
    with app.app_context():
        cli_event = audit.record(action="cli.thing", target="x")
        assert cli_event.client_addr == "cli" and "@" in cli_event.actor
