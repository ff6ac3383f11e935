"""`flask trigger-booking-workflows`: bad input is refused with a clear message and changes
nothing; good input starts workflows and reaches running lifecycles through the gateway."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from estuary.db import db
from estuary.models import Booking, Notification
from temporal_gateway.access import set_gateway
from temporal_gateway.gateway import StartedRun
from tests.bookings.conftest import booking_kit, booking_row, make_booking
from tests.conftest import gateway_for
from workers.bookings.rescheduling.workflows import ReschedulingWorkflow

GROUP = "trigger-booking-workflows"


class RecordingGateway:
    """Stands in for the Temporal gateway: records every call that would reach Temporal."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def start(self, workflow_name: str, payload: Any, **kwargs: Any) -> StartedRun:
        self.calls.append(("start", payload))
        return StartedRun("wf-id", "run-id", workflow_name)

    def signal(self, workflow_id: str, name: str, arg: Any = None) -> None:
        self.calls.append(("signal", (workflow_id, name, arg)))

    def update(self, workflow_id: str, name: str, arg: Any = None) -> Any:
        self.calls.append(("update", (workflow_id, name, arg)))
        return {}

    def close(self) -> None:
        pass


@pytest.fixture
def recorder(app) -> RecordingGateway:
    gw = RecordingGateway()
    set_gateway(app, gw)  # type: ignore[arg-type]
    return gw


def snapshot(app) -> tuple:
    with app.app_context():
        rows = db.session.execute(select(Booking).order_by(Booking.id)).scalars().all()
        return (
            [(b.id, b.status, b.start_at, b.end_at, b.credit_issued_cents) for b in rows],
            db.session.scalar(select(func.count(Notification.id))),
        )


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def scene(app) -> dict[str, str]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    active = make_booking(app, now + timedelta(days=3))
    busy = make_booking(app, now + timedelta(days=4), practitioner_id=active.practitioner_id)
    done = make_booking(app, now - timedelta(days=2), status="completed")
    return {
        "id": str(active.booking_id),
        "completed": str(done.booking_id),
        "future": iso(now + timedelta(days=5)),
        "busy": iso(busy.start_at + timedelta(minutes=30)),
        "past": iso(now - timedelta(days=1)),
        "soon": iso(now + timedelta(days=1)),
    }


BAD_INPUT = [
    (["lifecycle", "abc"], "BOOKING_ID (booking_id): 'abc' is not an id"),
    (["lifecycle", "0"], "'0' is not an id"),
    (["lifecycle", "987654321"], "booking 987654321 not found"),
    (["lifecycle", "{completed}"], "is completed; it cannot be given a lifecycle"),
    (["lifecycle", "{id}", "--no-show-fee-percent", "150"], "must be at most 100"),
    (["lifecycle", "{id}", "--no-show-credit-forfeited", "maybe"], "'maybe' is not yes/no"),
    (["reschedule", "{id}", "--to", "tomorrow"], "--to (new_start_at): 'tomorrow' is not a date"),
    (["reschedule", "{id}", "--to", "2026-02-30T10:00"], "is not a date and time"),
    (["reschedule", "{id}", "--to", "{past}"], "is not in the future"),
    (["reschedule", "{completed}", "--to", "{future}"], "is completed; it cannot be moved"),
    (["reschedule", "987654321", "--to", "{future}"], "booking 987654321 not found"),
    (["reschedule", "{id}", "--to", "{busy}"], "the practitioner is not free then"),
    (["reschedule", "{id}", "--to", "{future}", "--key", "bad key!"], "--key (request_key)"),
    (["batch_reminders", "--from", "2026-13-01", "--to", "{future}"], "--from (window_start)"),
    (["batch_reminders", "--from", "{future}", "--to", "{soon}"], "must be after window_start"),
    (["batch_reminders", "--from", "{past}", "--to", "{past}"], "must be after window_start"),
    (["batch_reminders", "--from", "2020-01-01", "--to", "2020-01-02"], "is in the past"),
    (["batch_reminders", "--from", "{soon}"], "give both window_start and window_end"),
    (["batch_reminders", "--type", "2h"], "--type (reminder_type): '2h' is not one of: 24h, 1h"),
    (["batch_reminders", "--from", "{soon}", "--to", "2030-01-01"], "at most 31 days"),
    (["cancel", "{id}", "--reason", "ill", "--by", "robot"], "--by (by): 'robot' is not one of"),
    (["cancel", "{id}", "--reason", "   "], "--reason (reason): is required"),
    (["cancel", "{completed}", "--reason", "x"], "is completed"),
    (["complete", "{completed}"], "is completed"),
    (["no_show", "987654321"], "booking 987654321 not found"),
    (["move", "{id}", "--to", "{past}"], "is not in the future"),
    (["move", "{id}", "--to", "{busy}"], "the practitioner is not free then"),
    (["feedback", "{id}", "--rating", "9"], "--rating (rating): must be at most 5"),
    (["feedback", "{id}", "--rating", "five"], "is not a whole number"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_input_is_refused_clearly_and_changes_nothing(
    app, runner, recorder, scene, args, message
):
    before = snapshot(app)
    result = runner.invoke(args=[GROUP, *[a.format(**scene) for a in args]])
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert recorder.calls == []
    assert snapshot(app) == before


def test_lifecycle_command_fills_the_policy_from_config(app, runner, recorder, scene):
    app.config["BOOKING_NO_SHOW_FEE_PERCENT"] = 30
    result = runner.invoke(args=[GROUP, "lifecycle", scene["id"], "--grace-period-minutes", "45"])
    assert result.exit_code == 0, result.output
    ((kind, payload),) = recorder.calls
    assert kind == "start"
    assert (payload.booking_id, payload.no_show_fee_percent) == (int(scene["id"]), 30)
    assert (payload.grace_period_minutes, payload.cancel_full_credit_hours) == (45, 24)


async def test_commands_drive_real_workflows_through_the_gateway(app, runner, time_env):
    async with booking_kit(time_env, app) as kit:
        gateway_for(app, time_env, kit.prefix)
        now = await kit.now()
        first = make_booking(app, now + timedelta(days=3))
        second = make_booking(app, now + timedelta(hours=3))

        def cli(*args: str):
            return asyncio.to_thread(runner.invoke, args=[GROUP, *args])

        out = await cli("lifecycle", str(first.booking_id), "--reason", "new booking")
        assert out.exit_code == 0, out.output
        assert f"Started BookingLifecycleWorkflow: bookings-lifecycle-{first.booking_id}" in (
            out.output
        )
        handle = kit.client.get_workflow_handle(f"bookings-lifecycle-{first.booking_id}")
        await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_session")
        again = await cli("lifecycle", str(first.booking_id))
        assert "Already running" in again.output

        moved_to = first.start_at + timedelta(hours=5)
        out = await cli("move", str(first.booking_id), "--to", moved_to.isoformat())
        assert out.exit_code == 0, out.output
        assert booking_row(app, first.booking_id)["start_at"] == moved_to

        out = await cli("cancel", str(first.booking_id), "--reason", "client ill")
        assert out.exit_code == 0, out.output
        assert '"credit_cents": 9000' in out.output
        assert (await handle.result())["outcome"] == "cancelled"
        out = await cli("cancel", str(first.booking_id), "--reason", "again")
        assert "is cancelled" in out.output  # refused before reaching Temporal

        await cli("lifecycle", str(second.booking_id))
        second_handle = kit.client.get_workflow_handle(f"bookings-lifecycle-{second.booking_id}")
        await kit.wait_progress(second_handle, lambda p: p["stage"] == "awaiting_session")
        await kit.sleep_until(second.end_at)
        out = await cli("complete", str(second.booking_id))
        assert out.exit_code == 0, out.output
        await kit.wait_progress(second_handle, lambda p: p["stage"] == "awaiting_feedback")
        out = await cli("feedback", str(second.booking_id), "--rating", "4", "--comment", "ok")
        assert out.exit_code == 0, out.output
        assert (await second_handle.result())["feedback_rating"] == 4
        out = await cli("progress", str(second.booking_id))
        assert '"stage": "completed"' in out.output

        third = make_booking(app, await kit.now() + timedelta(days=2))
        target = third.start_at + timedelta(days=1)
        out = await cli(
            "reschedule", str(third.booking_id), "--to", target.isoformat(), "--reason", "asked"
        )
        assert out.exit_code == 0, out.output
        key = f"{target:%Y%m%dT%H%M}"
        resched = kit.client.get_workflow_handle(f"bookings-reschedule-{third.booking_id}-{key}")
        with kit.env.auto_time_skipping_disabled():
            result = await resched.result()
        assert result["created"] is True
        new_id = result["new_booking_id"]
        assert booking_row(app, new_id)["start_at"] == target
        assert (await resched.describe()).workflow_type == ReschedulingWorkflow.__name__

        out = await cli("no_show", str(first.booking_id))
        assert "is cancelled" in out.output
        out = await cli("complete", str(new_id))
        assert out.exit_code == 0  # the signal reached the new lifecycle (ignored: too early)
        progress = await kit.wait_progress(
            kit.client.get_workflow_handle(f"bookings-lifecycle-{new_id}"),
            lambda p: bool(p["ignored_signals"]),
        )
        assert progress["ignored_signals"][0]["reason"].startswith("session has not started")


def test_signal_to_a_booking_without_a_lifecycle_says_so(app, runner, scene, time_env):
    gateway_for(app, time_env, "no-workers-")
    result = runner.invoke(args=[GROUP, "complete", scene["id"]])
    assert result.exit_code != 0
    assert f"no running lifecycle for booking {scene['id']}" in result.output
