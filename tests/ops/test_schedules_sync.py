"""`flask schedules sync` on the dev server: it creates what is missing and updates only
what the code owns (spec, action, policies); a paused schedule stays paused with its note,
even when its spec changes; each schedule's cron is read in its configured time zone."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import timedelta

import pytest
from temporalio.client import ScheduleOverlapPolicy
from temporalio.service import RPCError

from estuary.contracts.specs import payments as payment_schedules
from tests.conftest import gateway_for
from workers.temporal.schedules import ScheduleConfigError, definitions, time_zones

PAYOUT = "payments-weekly-batch-payout"
NOTE = "paused by admin@estuary.local: month-end audit, do not pay until it is signed off"


def _hours_and_minutes(spec) -> set[tuple[int, int]]:
    """(hour, minute) pairs the spec fires at, whether the server kept the cron text or
    turned it into calendar entries."""
    if spec.cron_expressions:
        out = set()
        for cron in spec.cron_expressions:
            minute, hour, *_ = cron.split()
            out.add((int(hour), int(minute)))
        return out
    return {(h.start, m.start) for cal in spec.calendars for h in cal.hour for m in cal.minute}


async def test_sync_keeps_a_paused_schedule_paused_with_its_note(
    app, runner, local_env, monkeypatch
):
    app.config["TEMPORAL_TASK_QUEUE_PREFIX"] = "tsync-"
    app.config["SCHEDULE_TIME_ZONE"] = "UTC"
    app.config["SCHEDULE_TIME_ZONES"] = {PAYOUT: "Europe/London"}
    gateway_for(app, local_env, "tsync-")
    handles = [local_env.client.get_schedule_handle(d.schedule_id) for d in definitions()]
    for h in handles:  # another test of this session may have synced them
        with contextlib.suppress(RPCError):
            await h.delete()
    payout = local_env.client.get_schedule_handle(PAYOUT)
    try:
        first = runner.invoke(args=["schedules", "sync"])
        assert first.exit_code == 0, first.output
        assert f"created {PAYOUT} (0 6 * * MON Europe/London)" in first.output
        desc = await payout.describe()
        assert desc.schedule.spec.time_zone_name == "Europe/London"
        assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert desc.schedule.policy.catchup_window == timedelta(days=1)
        assert not desc.schedule.state.paused
        reminders = await local_env.client.get_schedule_handle(
            "bookings-daily-reminders"
        ).describe()
        assert reminders.schedule.spec.time_zone_name == "UTC"

        await payout.pause(note=NOTE)
        second = runner.invoke(args=["schedules", "sync"])
        assert second.exit_code == 0, second.output
        assert f"updated {PAYOUT} (0 6 * * MON Europe/London; still paused: {NOTE})" in (
            second.output
        )
        desc = await payout.describe()
        assert desc.schedule.state.paused and desc.schedule.state.note == NOTE

        # The code changes the schedule's time: the spec follows, the pause and note stay.
        changed = [dataclasses.replace(d, cron="30 7 * * TUE") for d in payment_schedules.SCHEDULES]
        monkeypatch.setattr(payment_schedules, "SCHEDULES", changed)
        third = runner.invoke(args=["schedules", "sync"])
        assert third.exit_code == 0, third.output
        assert "still paused" in third.output
        desc = await payout.describe()
        assert _hours_and_minutes(desc.schedule.spec) == {(7, 30)}
        assert desc.schedule.state.paused and desc.schedule.state.note == NOTE
        assert desc.schedule.action.task_queue == "tsync-payments"

        # A zone that does not exist is refused by name and nothing is synced.
        app.config["SCHEDULE_TIME_ZONES"] = {PAYOUT: "Europe/Atlantis"}
        monkeypatch.setattr(payment_schedules, "SCHEDULES", list(payment_schedules.SCHEDULES))
        bad = runner.invoke(args=["schedules", "sync"])
        assert bad.exit_code != 0
        assert "'Europe/Atlantis'" in bad.output and PAYOUT in bad.output
        desc = await payout.describe()
        assert desc.schedule.spec.time_zone_name == "Europe/London"
        assert desc.schedule.state.paused and desc.schedule.state.note == NOTE
    finally:
        for h in handles:
            with contextlib.suppress(RPCError):
                await h.delete()


def test_time_zones_resolve_override_then_definition_then_default():
    defs = definitions()
    own = dataclasses.replace(defs[0], time_zone="America/New_York")
    zones = time_zones([own, *defs[1:]], "UTC", {})
    assert zones[own.schedule_id] == "America/New_York"
    assert all(zones[d.schedule_id] == "UTC" for d in defs[1:])
    overridden = time_zones([own], "UTC", {own.schedule_id: "Asia/Tokyo"})
    assert overridden == {own.schedule_id: "Asia/Tokyo"}


@pytest.mark.parametrize(
    ("default", "overrides", "message"),
    [
        ("Mars/Olympus", {}, "'Mars/Olympus' for"),
        ("UTC", {"payments-weekly-batch-payot": "UTC"}, "names no schedule defined in code"),
        ("UTC", {PAYOUT: "../../etc/passwd"}, "is not an IANA zone name"),
    ],
)
def test_bad_time_zone_settings_are_refused_by_name(default, overrides, message):
    with pytest.raises(ScheduleConfigError, match=message):
        time_zones(definitions(), default, overrides)
