"""Record BookingLifecycleWorkflow histories for the replay test (test_replay.py).

Run once by hand when the lifecycle changes on purpose (and commit the JSON files):

    .venv/bin/python -m tests.bookings.record_lifecycle_history

It runs real lifecycles against a time-skipping server with the real bookings worker (and
the payments double) on a throwaway SQLite database, and writes each run's full event
history to tests/bookings/histories/. Not a test: pytest does not collect it.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from config import TestingConfig
from dashboard import create_app
from dashboard.extensions import db
from tests.bookings.conftest import booking_kit, make_booking
from tests.conftest import _binary
from workers.bookings.shared import CancelArg, FeedbackArg, MarkSessionArg, RescheduleArg
from workers.bookings.workflows import BookingLifecycleWorkflow
from workers.temporal.search_attributes import ALL_KEYS

HISTORIES = Path(__file__).parent / "histories"


async def record(env: WorkflowEnvironment, app) -> dict[str, str]:
    out: dict[str, str] = {}
    async with booking_kit(env, app) as kit:
        # 1. Three days ahead: confirmation, both reminders, completion, feedback.
        booked = make_booking(app, await kit.now() + timedelta(days=3), package=True)
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.sleep_until(booked.end_at + timedelta(minutes=10))
        await handle.signal(BookingLifecycleWorkflow.mark_completed, MarkSessionArg("prac"))
        await handle.signal(BookingLifecycleWorkflow.mark_completed, MarkSessionArg("prac"))
        await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_feedback")
        await kit.env.sleep(timedelta(days=1))
        await handle.signal(
            BookingLifecycleWorkflow.feedback_received, FeedbackArg("client", 5, "Great")
        )
        await handle.result()
        out["lifecycle_completed_with_feedback"] = (await handle.fetch_history()).to_json()

        # 2. Moved in place (update), a refused update, then a late cancellation (update).
        booked = make_booking(app, await kit.now() + timedelta(days=2))
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_session")
        new_start = booked.start_at + timedelta(hours=6)
        await handle.execute_update(
            BookingLifecycleWorkflow.reschedule, RescheduleArg("ops", new_start, "asked")
        )
        await kit.sleep_until(new_start - timedelta(hours=20))
        await kit.wait_progress(handle, lambda p: p["reminders"]["24h"]["state"] == "sent")
        try:
            await handle.execute_update(
                BookingLifecycleWorkflow.reschedule,
                RescheduleArg("ops", booked.start_at - timedelta(days=30), "past"),
            )
        except Exception as exc:  # the validator refuses it, as it should
            print(f"refused as expected: {exc}")
        await handle.execute_update(
            BookingLifecycleWorkflow.cancel, CancelArg("ops", "client ill", "client")
        )
        await handle.result()
        out["lifecycle_moved_then_cancelled"] = (await handle.fetch_history()).to_json()

        # 3. Unresolved session: flagged after the grace period, then a late no-show.
        booked = make_booking(app, await kit.now() + timedelta(minutes=30))
        handle = await kit.start_lifecycle(booked.booking_id, grace_period_minutes=60)
        await kit.sleep_until(booked.end_at + timedelta(minutes=90))
        await kit.wait_progress(handle, lambda p: p["stage"] == "unresolved")
        await handle.signal(BookingLifecycleWorkflow.mark_no_show, MarkSessionArg("ops"))
        await handle.result()
        out["lifecycle_unresolved_then_no_show"] = (await handle.fetch_history()).to_json()
    return out


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp}/record.db")
        with app.app_context():
            db.create_all()
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=_binary("temporal-test-server")
        )
        try:
            await env.client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=env.client.namespace,
                    search_attributes={
                        k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in ALL_KEYS
                    },
                )
            )
            histories = await record(env, app)
        finally:
            await env.shutdown()
            with app.app_context():
                db.engine.dispose()
    HISTORIES.mkdir(exist_ok=True)
    for name, text in histories.items():
        path = HISTORIES / f"{name}.json"
        path.write_text(text + "\n")
        print(f"wrote {path} ({len(text)} bytes)")


if __name__ == "__main__":
    asyncio.run(main())
