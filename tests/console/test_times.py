"""One time format everywhere, in the staff member's zone, UTC in the tooltip; every typed
date-time read in that zone unless it carries an offset; the zone a profile setting that
the browser fills once."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard import times
from dashboard.visibility import build_query, parse_filters
from estuary.db import db
from estuary.models import AuditEvent, StaffUser
from tests.console.read_support import login, unreachable_gateway

PARIS = ZoneInfo("Europe/Paris")
KOLKATA = ZoneInfo("Asia/Kolkata")


def test_one_format_for_datetimes_and_iso_texts():
    moment = datetime(2026, 12, 8, 8, 39, 12, 177321, tzinfo=UTC)
    assert times.format_local(moment, PARIS) == "2026-12-08 09:39 CET"
    assert times.format_local("2026-12-08T08:39:12.177321+00:00", PARIS) == ("2026-12-08 09:39 CET")
    # Temporal's event times carry nanoseconds.
    assert times.format_local("2026-12-08T08:39:12.177321123Z", KOLKATA) == ("2026-12-08 14:09 IST")
    assert times.format_local(datetime(2026, 7, 1, 12, 0), PARIS) == "2026-07-01 14:00 CEST"
    assert times.format_utc(moment) == "2026-12-08 08:39:12 UTC"
    assert times.format_local(None) == "-"
    assert times.format_local("not a time") == "not a time"


def test_the_time_element_carries_utc_in_its_tooltip():
    html = str(times.time_element("2026-12-08T08:39:12Z", PARIS))
    assert html == (
        '<time datetime="2026-12-08T08:39:12Z" title="2026-12-08 08:39:12 UTC">'
        "2026-12-08 09:39 CET</time>"
    )
    assert str(times.time_element("<b>x</b>")) == "&lt;b&gt;x&lt;/b&gt;"


@pytest.mark.parametrize(
    "typed,expected",
    [
        ("2026-12-01 10:00", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("2026-12-01T10:00", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("  2026-12-01   10:00 ", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("2026-12-01T10:00Z", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
        ("2026-12-01T10:00+05:30", datetime(2026, 12, 1, 4, 30, tzinfo=UTC)),
    ],
)
def test_typed_times_are_read_in_the_staff_zone_unless_offset(typed, expected):
    assert times.parse_local(typed, PARIS) == expected


@pytest.mark.parametrize("typed", ["yesterday", "2026-13-01 10:00", "12/01/2026 10:00", "x" * 41])
def test_typed_times_that_are_no_time_say_how_to_write_one(typed):
    with pytest.raises(ValueError, match="write it as 2026-12-01 10:00"):
        times.parse_local(typed, PARIS)


def test_zones_are_iana_names_only():
    assert times.zone_or_none("Europe/Paris") == PARIS
    for bad in ("", "Mars/Olympus", "../../etc/passwd", "Europe/Paris'", "x" * 80):
        assert times.zone_or_none(bad) is None
    assert times.zone_label(PARIS) == "Europe/Paris"


def test_runs_filters_read_times_in_the_zone_and_keep_them_in_utc():
    filters, errors = parse_filters({"started_after": "2026-12-01 10:00"}, zone=KOLKATA)
    assert not errors
    assert "StartTime >= '2026-12-01T04:30:00Z'" in build_query(filters)
    # Links carry UTC marked as such, so they mean the same for a staff member elsewhere.
    assert filters.as_params() == {"started_after": "2026-12-01T04:30Z"}
    again, _ = parse_filters(filters.as_params(), zone=PARIS)
    assert again.started_after == filters.started_after
    _, errors = parse_filters({"started_after": "tomorrow"}, zone=KOLKATA)
    assert "write it as 2026-12-01 10:00" in errors["started_after"]


def _user(app, email: str) -> StaffUser:
    with app.app_context():
        return db.session.scalar(select(StaffUser).where(StaffUser.email == email))


def test_the_profile_sets_the_zone_and_pages_show_it(app):
    unreachable_gateway(app)
    client = login(app, "viewer", email="tz-viewer@test.local")
    assert _user(app, "tz-viewer@test.local").time_zone is None
    page = client.get("/profile").get_data(as_text=True)
    assert 'data-time-zone-unset="yes"' in page  # the browser is asked for its zone

    refused = client.post("/profile/time-zone", data={"time_zone": "Mars/Olympus"})
    assert refused.status_code == 422
    assert "is not a time zone" in refused.get_data(as_text=True)
    assert _user(app, "tz-viewer@test.local").time_zone is None

    saved = client.post("/profile/time-zone", data={"time_zone": "Asia/Kolkata"})
    assert saved.status_code == 303
    assert _user(app, "tz-viewer@test.local").time_zone == "Asia/Kolkata"
    # The browser's zone does not overwrite a chosen one.
    answer = client.post(
        "/profile/time-zone", data={"time_zone": "Europe/Paris", "from_browser": "yes"}
    )
    assert answer.get_json() == {"saved": False, "time_zone": "Asia/Kolkata"}
    assert _user(app, "tz-viewer@test.local").time_zone == "Asia/Kolkata"

    page = client.get("/profile").get_data(as_text=True)
    assert 'data-time-zone-unset="yes"' not in page
    assert 'data-testid="time-zone"' in page and "Asia/Kolkata" in page
    assert " IST</time>" in page and ' UTC">' in page

    # The audit log shows its times in the zone and reads its filters in it too.
    audit = client.get("/audit/").get_data(as_text=True)
    assert " IST</time>" in audit
    with app.app_context():
        newest = db.session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()))
        assert newest.action == "profile.set_time_zone"
    filtered = client.get("/audit/?since=2001-01-01 05:30").get_data(as_text=True)
    assert 'value="2001-01-01 05:30"' in filtered  # shown back as typed, in IST


def test_the_browser_zone_is_saved_once(app):
    unreachable_gateway(app)
    client = login(app, "operator", email="tz-op@test.local")
    first = client.post(
        "/profile/time-zone", data={"time_zone": "Europe/Paris", "from_browser": "yes"}
    )
    assert first.get_json() == {"saved": True, "time_zone": "Europe/Paris"}
    assert _user(app, "tz-op@test.local").time_zone == "Europe/Paris"
    bad = client.post("/profile/time-zone", data={"time_zone": "Nowhere", "from_browser": "yes"})
    assert bad.status_code == 422 and bad.get_json()["saved"] is False


def test_running_rows_say_for_how_long():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    ago = [(40, "running for 40 s"), (3 * 60 + 5, "running for 3 min")]
    ago += [(2 * 3600, "running for 2 h"), (2 * 3600 + 300, "running for 2 h 5 min")]
    ago += [(3 * 86400 + 4 * 3600, "running for 3 d 4 h")]
    for seconds, text in ago:
        start = datetime.fromtimestamp(now.timestamp() - seconds, UTC)
        assert times.running_for(start, now) == text
    assert times.running_for(None) == "running"


def test_payout_volume_is_counted_by_the_staff_members_day(app):
    """A payout at 23:30 UTC belongs to the next day in Asia/Kolkata (UTC+05:30)."""
    from dashboard.presentation.overview import payout_volume_by_day
    from estuary.models import Payout, Practitioner

    with app.app_context():
        p = Practitioner(name="Late Payee", email="late@p.test", status="active")
        db.session.add(p)
        db.session.flush()
        for n, paid_at in enumerate(
            [datetime(2026, 12, 1, 23, 30, tzinfo=UTC), datetime(2026, 12, 1, 12, 0, tzinfo=UTC)]
        ):
            db.session.add(
                Payout(
                    practitioner_id=p.id,
                    amount_cents=1000 * (n + 1),
                    idempotency_key=f"late-{n}",
                    workflow_id=f"payments-payout-{p.id}-late-{n}",
                    requested_by="operator@estuary.test",
                    approvals_required=0,
                    status="paid",
                    paid_at=paid_at,
                )
            )
        db.session.commit()
        today = datetime(2026, 12, 2).date()
        in_utc = {d.day.isoformat(): d.cents for d in payout_volume_by_day(2, today=today)}
        in_kolkata = {
            d.day.isoformat(): d.cents for d in payout_volume_by_day(2, today=today, zone=KOLKATA)
        }
    assert in_utc == {"2026-12-01": 3000, "2026-12-02": 0}
    assert in_kolkata == {"2026-12-01": 2000, "2026-12-02": 1000}
