"""Schedules page: the schedules defined in code with next and recent runs; pause,
resume and trigger now for admins, each with a reason and audited."""

from __future__ import annotations

import asyncio
import html
import uuid

from temporalio.client import Client

from dashboard.views import schedules as schedules_view
from estuary.contracts.payments import LedgerReconciliationInput
from tests.conftest import running_workers
from tests.console.write_support import audit_events, counting_gateway_for, login
from workers.temporal.schedules import ScheduleDefinition, definitions, desired_schedule


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_the_real_schedules_are_listed(app, local_env):
    counting_gateway_for(app, local_env, "nobody-")
    client, _ = login(app, "viewer")
    body = _text(client.get("/schedules/"))
    defs = definitions()
    assert {d.workflow_name for d in defs} >= {
        "BatchPractitionerPayoutWorkflow",
        "BatchReminderWorkflow",
    }
    for d in defs:
        assert d.description in body and d.cron in body


async def test_pause_resume_trigger_need_admin_and_a_reason(app, local_env, monkeypatch):
    defn = ScheduleDefinition(
        schedule_id=f"test-ledger-check-{uuid.uuid4().hex[:8]}",
        workflow_name="LedgerReconciliationWorkflow",
        make_input=LedgerReconciliationInput,
        cron="0 3 1 1 *",
        description="Yearly ledger check (test)",
        workflow_id_prefix=f"test-ledger-check-{uuid.uuid4().hex[:6]}",
    )
    monkeypatch.setattr(schedules_view, "definitions", lambda: [defn])
    admin, admin_user = login(app, "admin")
    operator, _ = login(app, "operator")
    viewer, _ = login(app, "viewer")
    client: Client = local_env.client
    async with running_workers(client, app, ["payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        handle = await client.create_schedule(
            defn.schedule_id, desired_schedule(defn, prefix, "UTC")
        )
        try:
            page = _text(await asyncio.to_thread(viewer.get, "/schedules/"))
            assert "Yearly ledger check (test)" in page
            assert 'data-testid="schedule-state">active' in page
            assert "-01-01 03:00:00 UTC" in page  # the next run
            assert 'data-testid="pause"' not in page  # viewers see no buttons

            base = f"/schedules/{defn.schedule_id}"
            denied = await asyncio.to_thread(
                operator.post, f"{base}/pause", data={"action_reason": "x"}
            )
            assert denied.status_code == 403
            missing = await asyncio.to_thread(admin.post, f"{base}/pause", data={})
            assert missing.status_code == 422 and "a reason is required" in _text(missing)
            assert not (await handle.describe()).schedule.state.paused
            assert (
                await asyncio.to_thread(
                    admin.post, "/schedules/nope/pause", data={"action_reason": "x"}
                )
            ).status_code == 404
            assert (
                await asyncio.to_thread(admin.post, f"{base}/delete", data={"action_reason": "x"})
            ).status_code == 404

            paused = await asyncio.to_thread(
                admin.post, f"{base}/pause", data={"action_reason": "provider maintenance"}
            )
            assert paused.status_code == 303
            state = (await handle.describe()).schedule.state
            assert state.paused and "provider maintenance" in state.note
            assert admin_user.email in state.note
            page = _text(await asyncio.to_thread(admin.get, "/schedules/"))
            assert 'data-testid="schedule-state">paused' in page and 'data-testid="resume"' in page

            resumed = await asyncio.to_thread(
                admin.post, f"{base}/resume", data={"action_reason": "maintenance over"}
            )
            assert resumed.status_code == 303
            assert not (await handle.describe()).schedule.state.paused

            triggered = await asyncio.to_thread(
                admin.post, f"{base}/trigger", data={"action_reason": "check now"}
            )
            assert triggered.status_code == 303
            for _ in range(100):
                recent = (await handle.describe()).info.recent_actions
                if recent:
                    break
                await asyncio.sleep(0.1)
            assert recent, "the triggered run never showed"
            page = _text(await asyncio.to_thread(admin.get, "/schedules/"))
            assert defn.workflow_id_prefix in page  # the recent run, linked
        finally:
            await handle.delete()

    events = [(e.outcome, e.reason) for e in audit_events(app, action="schedules.act")]
    assert events == [
        ("denied", ""),
        ("invalid", ""),
        ("invalid", ""),  # no such schedule
        ("invalid", ""),  # no such operation
        ("success", "provider maintenance"),
        ("success", "maintenance over"),
        ("success", "check now"),
    ]
