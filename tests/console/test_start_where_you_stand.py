"""Domain pages offer what fits the entity's state: onboarding for a pending
practitioner (not a payout), and a booking with no lifecycle run can be cancelled from
its page: the lifecycle starts first, then the cancel is applied, both audited."""

from __future__ import annotations

import asyncio
import html

from estuary.db import db
from estuary.models import Booking
from tests.conftest import running_workers
from tests.console.write_support import (
    audit_events,
    counting_gateway_for,
    login,
    seed_booking,
    seed_practitioner,
)

LIFECYCLE = "BookingLifecycleWorkflow"


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


async def test_pending_practitioner_is_offered_onboarding_and_no_payout(app, local_env):
    pid = seed_practitioner(app, status="pending")
    active = seed_practitioner(app, status="active")
    operator, _ = login(app, "operator")
    async with running_workers(local_env.client, app, ["practitioners"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        page = _text(await asyncio.to_thread(operator.get, f"/practitioners/{pid}"))
        other = _text(await asyncio.to_thread(operator.get, f"/practitioners/{active}"))
    assert "Start onboarding" in page
    assert f"/workflows/PractitionerOnboardingWorkflow/start?practitioner_id={pid}" in page
    assert "PractitionerPayoutWorkflow/start" not in page
    assert "PractitionerPayoutWorkflow/start" in other and "Start onboarding" not in other


async def test_cancel_a_booking_that_has_no_lifecycle(app, local_env):
    booking = seed_booking(app, hours_ahead=72)
    done_booking = seed_booking(app, hours_ahead=72, status="cancelled")
    operator, user = login(app, "operator")
    viewer, _ = login(app, "viewer")
    wid = f"bookings-lifecycle-{booking}"
    async with running_workers(local_env.client, app, ["bookings", "payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        page = _text(await asyncio.to_thread(operator.get, f"/bookings/{booking}"))
        assert 'data-testid="start-first"' in page
        assert 'data-testid="action-cancel"' in page and 'data-testid="action-reschedule"' in page
        assert f'name="start_entity" value="{booking}"' in page
        # A cancelled booking offers nothing; a viewer gets no forms.
        closed = _text(await asyncio.to_thread(operator.get, f"/bookings/{done_booking}"))
        assert 'data-testid="start-first"' not in closed and "nothing to act on" in closed
        assert 'data-testid="action-' not in _text(
            await asyncio.to_thread(viewer.get, f"/bookings/{booking}")
        )
        # The form names the entity; another booking's id for this workflow id is refused.
        form = {"workflow_type": LIFECYCLE, "reason": "client moved away", "by": "client"}
        forged = await asyncio.to_thread(
            operator.post, f"/runs/{wid}/update/cancel", data={**form, "start_entity": "999"}
        )
        assert forged.status_code == 404
        done = await asyncio.to_thread(
            operator.post,
            f"/runs/{wid}/update/cancel",
            data={**form, "start_entity": str(booking), "next": f"/bookings/{booking}"},
        )
        assert done.status_code == 303, _text(done)[:600]
        assert done.headers["Location"].endswith(f"/bookings/{booking}")
        for _ in range(100):
            with app.app_context():
                if db.session.get(Booking, booking).status == "cancelled":
                    break
            await asyncio.sleep(0.1)
        with app.app_context():
            row = db.session.get(Booking, booking)
            assert row.status == "cancelled" and row.cancelled_by == f"client:{user.email}"
        events = [e for e in audit_events(app, action="runs.update") if e.target.endswith(wid)]
        assert [e.outcome for e in events] == ["success", "success"]
        assert "started run" in events[0].detail and "cancel sent" in events[1].detail
        await local_env.client.get_workflow_handle(wid).result()


async def test_onboarding_started_from_the_practitioner_page_leads_back_to_it(app, local_env):
    pid = seed_practitioner(app, status="pending")
    other = seed_practitioner(app, status="pending")
    operator, _ = login(app, "operator")
    back = f"/practitioners/{pid}"
    async with running_workers(local_env.client, app, ["practitioners"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        page = _text(await asyncio.to_thread(operator.get, back))
        start = f"/workflows/PractitionerOnboardingWorkflow/start?practitioner_id={pid}"
        assert f'href="{start}&next=/practitioners/{pid}"' in page, page[:3000]
        form = _text(await asyncio.to_thread(operator.get, f"{start}&next={back}"))
        assert f'<input type="hidden" name="next" value="{back}">' in form
        assert f'href="{back}" data-testid="back-link"' in form
        started = await asyncio.to_thread(
            operator.post,
            "/workflows/PractitionerOnboardingWorkflow/start",
            data={"practitioner_id": str(pid), "next": back},
        )
        assert started.status_code == 303, _text(started)[:800]
        assert started.headers["Location"].endswith(back)
        # The practitioner page now shows the run (with a link to it) and what was done.
        landed = _text(await asyncio.to_thread(operator.get, back))
        assert 'data-testid="entity-run-PractitionerOnboardingWorkflow"' in landed
        assert f"practitioners-onboarding-{pid}" in landed and "Start onboarding" not in landed
        assert f"Started: Practitioner onboarding (practitioners-onboarding-{pid})." in landed
        # A `next` that leaves the console is ignored: the run's own page instead.
        elsewhere = await asyncio.to_thread(
            operator.post,
            "/workflows/PractitionerOnboardingWorkflow/start",
            data={"practitioner_id": str(other), "next": "https://evil.example/x"},
        )
        assert elsewhere.status_code == 303
        assert f"/runs/practitioners-onboarding-{other}" in elsewhere.headers["Location"]
        for p in (pid, other):
            await local_env.client.get_workflow_handle(f"practitioners-onboarding-{p}").terminate(
                "test over"
            )
