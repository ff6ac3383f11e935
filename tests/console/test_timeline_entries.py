"""The run page's kept timeline entries (`dashboard/presentation/timeline_html.py`): an
entry is rendered again only when something it shows changed (a field of its row, a
child's title, the viewer's zone), and a kept entry is the entry the macro renders now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import g, render_template_string
from flask_login import login_user
from sqlalchemy import select

from dashboard.presentation.history_values import FailureInfo
from dashboard.presentation.timeline_html import timeline_entry_html
from dashboard.presentation.timeline_rows import (
    ActivityRow,
    ChildRow,
    MarkRow,
    SignalRow,
    TimerRow,
    UpdateRow,
)
from estuary.db import db
from estuary.models import StaffUser
from estuary.services.demo import seed_demo

AT = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
IMPORT = '{% from "runs/_timeline_entry.html" import timeline_entry with context %}'
TITLE = "titles.get(e.workflow_id) if e.kind == 'child' else none"
LOOP = "{% for e in rows %}{{ ENTRY }}{% endfor %}"
KEPT = IMPORT + LOOP.replace("ENTRY", f"timeline_entry_html(e, timeline_entry, {TITLE})")
FRESH = IMPORT + LOOP.replace("ENTRY", f"timeline_entry(e, {TITLE})")


def _rows() -> list:
    return [
        MarkRow(1, "Started", AT, "by ops@estuary.test", "run"),
        ActivityRow(5, "1", "create_payout", "payments", AT, AT, attempts=1, status="started"),
        TimerRow(9, "t1", AT, AT + timedelta(hours=1)),
        SignalRow(12, "approve", AT, "worker@host"),
        UpdateRow(15, "u1", "note", AT, "lead@estuary.test", "console", "{}"),
        ChildRow(20, "payments-payout-7-1", "PractitionerPayoutWorkflow", AT),
    ]


@pytest.fixture
def viewer(app):
    with app.app_context():
        seed_demo()
        user = db.session.scalar(select(StaffUser).where(StaffUser.role == "viewer"))
        with app.test_request_context("/runs/x/y"):
            login_user(user)
            yield user


def _render(template: str, rows: list, titles: dict[str, str]) -> str:
    g.pop("timeline_page", None)  # a new response (the zone is read once per response)
    return render_template_string(template, rows=rows, titles=titles)


def test_kept_entries_are_the_entries_the_macro_renders(viewer):
    rows, titles = _rows(), {}
    fresh = _render(FRESH, rows, titles)
    assert 'data-kind="activity"' in fresh and 'data-kind="child"' in fresh
    assert _render(KEPT, rows, titles) == fresh  # rendered and kept
    assert _render(KEPT, rows, titles) == fresh  # all from what was kept

    # What happens to a running run's rows as its history grows, one change at a time.
    activity, timer, update, child = rows[1], rows[2], rows[4], rows[5]

    def change(row, **values):
        return lambda: [setattr(row, name, value) for name, value in values.items()]

    changes = [
        change(activity, attempts=2),
        change(activity, last_failure=FailureInfo("flaked", "RuntimeError")),
        change(activity, closed_at=AT + timedelta(seconds=3), status="completed"),
        change(timer, fired_at=AT + timedelta(hours=1), status="fired"),
        change(update, status="completed"),
        change(child, run_id="run-7", status="running"),
        lambda: titles.update({child.workflow_id: "Payout of $1,842.50 to Maya"}),
    ]
    for make_change in changes:
        before = _render(KEPT, rows, titles)
        make_change()
        after = _render(KEPT, rows, titles)
        assert after == _render(FRESH, rows, titles) and after != before
    assert "Payout of $1,842.50 to Maya" in after and "flaked" in after

    viewer.time_zone = "Asia/Tokyo"  # the viewer's zone: every time shown in it
    tokyo = _render(KEPT, rows, titles)
    assert tokyo == _render(FRESH, rows, titles) and "JST" in tokyo and tokyo != after


def test_an_unchanged_entry_is_not_rendered_again(viewer):
    rendered: list[int] = []

    def macro(row, title):
        rendered.append(row.event_id)
        return f"<li>{row.event_id} {getattr(row, 'status', '')}</li>"

    rows = _rows()
    g.pop("timeline_page", None)
    first = [timeline_entry_html(r, macro, None) for r in rows]
    assert rendered == [r.event_id for r in rows]
    rendered.clear()
    rows[1].status = "completed"  # one activity closed since
    g.pop("timeline_page", None)
    again = [timeline_entry_html(r, macro, None) for r in rows]
    assert rendered == [5]
    assert again[1] == "<li>5 completed</li>" and again[:1] + again[2:] == first[:1] + first[2:]
