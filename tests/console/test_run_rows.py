"""The runs list's kept rows (`dashboard/presentation/run_rows.py`): a kept row is the row
the macro renders now, for every value the row shows (status, times in the viewer's
zone, the business outcome from the database, the out-of-band flag)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import render_template_string
from flask_login import login_user
from sqlalchemy import select

from dashboard.presentation import run_rows
from estuary.db import db
from estuary.models import Payout, Practitioner, StaffUser
from estuary.services.demo import MAYA, seed_demo
from temporal_gateway.cache import LRUMap
from temporal_gateway.records import RunInfo
from tests.sql_sent import sql_sent

START = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
IMPORT = '{% from "runs/_row.html" import run_row with context %}'
KEPT = IMPORT + "{{ run_rows(runs, run_row, oob=oob) }}"
FRESH = (
    IMPORT + "{% set labels = run_labels(runs) %}"
    "{% for r in runs %}{{ run_row(r, labels.get(r.run_id), oob=oob) }}{% endfor %}"
)


def _run(n: int, status: str, practitioner_id: int, **changes) -> RunInfo:
    fields = {
        "workflow_id": f"payments-payout-{practitioner_id}-{n}",
        "run_id": f"run-{n}",
        "workflow_type": "PractitionerPayoutWorkflow",
        "status": status,
        "task_queue": "payments",
        "start_time": START + timedelta(minutes=n),
        "close_time": None if status == "Running" else START + timedelta(minutes=n, seconds=42),
        "execution_time": START,
        "history_length": 10,
        "domain": "payments",
        "entity_type": "practitioner",
        "entity_id": str(practitioner_id),
        "triggered_by": "ops@estuary.test" if n % 2 else None,
    }
    return RunInfo(**{**fields, **changes})


@pytest.fixture
def page(app):
    """A request to the runs list by a signed-in viewer (time zone set per test)."""
    with app.app_context():
        seed_demo()
        maya = db.session.scalar(select(Practitioner.id).where(Practitioner.name == MAYA))
        user = db.session.scalar(select(StaffUser).where(StaffUser.role == "viewer"))
        run_rows.ROWS.clear()
        with app.test_request_context("/runs"):
            login_user(user)
            yield maya, user
        run_rows.ROWS.clear()


def _render(template: str, runs: list[RunInfo], oob: bool = False) -> str:
    return render_template_string(template, runs=runs, oob=oob)


@pytest.mark.parametrize("zone", [None, "Europe/Paris", "America/New_York"])
@pytest.mark.parametrize("oob", [False, True])
def test_kept_rows_are_the_rows_the_macro_renders(page, zone, oob):
    maya, user = page
    user.time_zone = zone
    db.session.add(
        Payout(
            practitioner_id=maya,
            amount_cents=184_250,
            currency="USD",
            status="rejected",
            idempotency_key="payout:rows:1",
            workflow_id=f"payments-payout-{maya}-3",
            requested_by="ops@estuary.test",
        )
    )
    db.session.flush()
    statuses = ["Running", "Completed", "Failed", "Completed", "Terminated", "Running"]
    runs = [_run(n, s, maya) for n, s in enumerate(statuses)]
    fresh = _render(FRESH, runs, oob)
    assert _render(KEPT, runs, oob) == fresh  # rendered and kept
    assert len(run_rows.ROWS) == len(runs)
    assert _render(KEPT, runs, oob) == fresh  # all from what was kept
    assert len(run_rows.ROWS) == len(runs)
    assert ("hx-swap-oob" in fresh) is oob


def test_a_change_of_anything_shown_is_a_new_row(page):
    maya, user = page
    running = _run(1, "Running", maya)
    first = _render(KEPT, [running])
    assert 'data-status="Running"' in first

    done = _run(1, "Completed", maya)  # same run, now closed
    assert _render(KEPT, [done]) == _render(FRESH, [done])
    assert 'data-status="Completed"' in _render(KEPT, [done])

    # The viewer changes zone: the start time is shown in the new one.
    user.time_zone = "Asia/Tokyo"
    tokyo = _render(KEPT, [done])
    assert tokyo == _render(FRESH, [done]) and tokyo != _render(KEPT, [running])
    assert "JST" in tokyo

    # The payout behind the run is paid meanwhile: the row's outcome follows the database.
    payout = Payout(
        practitioner_id=maya,
        amount_cents=5_000,
        currency="USD",
        status="pending_approval",
        idempotency_key="payout:rows:2",
        workflow_id=done.workflow_id,
        requested_by="ops@estuary.test",
    )
    db.session.add(payout)
    db.session.flush()
    waiting = _render(KEPT, [done])
    payout.status = "rejected"
    db.session.flush()
    rejected = _render(KEPT, [done])
    assert rejected != waiting and rejected == _render(FRESH, [done])


def test_the_cache_is_bounded_and_drops_the_least_recently_shown():
    cache = LRUMap(3)
    for n in range(5):
        cache.put(n, f"<tr>{n}</tr>")
        if n == 2:
            assert cache.get(0) is not None  # shown again: kept over 1
    assert len(cache) == 3
    assert cache.get(1) is None and cache.get(2) is None
    assert [cache.get(k) is not None for k in (0, 3, 4)] == [True, True, True]


def _statements(fn):
    """What `fn()` returns, and the SQL statements it sent."""
    with sql_sent(db.engine) as sent:
        return fn(), sent


def test_labels_are_reused_for_a_few_seconds_while_the_run_stays_as_it_was(page, monkeypatch):
    maya, _user = page
    clock = [1000.0]
    monkeypatch.setattr(run_rows.time, "monotonic", lambda: clock[0])
    run_rows.LABELS.clear()
    runs = [_run(n, "Running", maya) for n in range(3)]
    first, sent = _statements(lambda: run_rows.kept_labels(runs, "UTC", 5))
    assert sent and set(first) == {r.run_id for r in runs}

    clock[0] += 4  # within the 5 s: nothing is read again
    again, sent = _statements(lambda: run_rows.kept_labels(runs, "UTC", 5))
    assert sent == [] and again == first

    # One run closes: only that one is labelled afresh, at once.
    runs[1] = _run(1, "Completed", maya)
    changed, sent = _statements(lambda: run_rows.kept_labels(runs, "UTC", 5))
    assert sent and changed[runs[0].run_id] == first[runs[0].run_id]

    # Another zone is another label (a title may give the day in the viewer's zone).
    _labels, sent = _statements(lambda: run_rows.kept_labels(runs, "JST", 5))
    assert sent

    clock[0] += 5  # the 5 s are over: read again
    _labels, sent = _statements(lambda: run_rows.kept_labels(runs, "UTC", 5))
    assert sent
    # 0 s (tests' setting): every call reads the database.
    _labels, sent = _statements(lambda: run_rows.kept_labels(runs, "UTC", 0))
    assert sent
    run_rows.LABELS.clear()


def test_a_renamed_practitioner_shows_within_the_labels_time(page, monkeypatch):
    maya, _user = page
    clock = [1000.0]
    monkeypatch.setattr(run_rows.time, "monotonic", lambda: clock[0])
    run_rows.LABELS.clear()
    run = _run(7, "Running", maya)
    before = run_rows.kept_labels([run], "UTC", 5)[run.run_id].title.text
    db.session.get(Practitioner, maya).name = "Maya Renamed"
    db.session.flush()
    assert run_rows.kept_labels([run], "UTC", 5)[run.run_id].title.text == before
    clock[0] += 5.01
    assert "Maya Renamed" in run_rows.kept_labels([run], "UTC", 5)[run.run_id].title.text
    run_rows.LABELS.clear()
