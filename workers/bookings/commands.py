"""`flask trigger-booking-workflows ...`: start the bookings workflows and send their
signals and updates from the command line.

    flask trigger-booking-workflows lifecycle 456
    flask trigger-booking-workflows reschedule 456 --to 2026-12-01T10:00 --reason "client asked"
    flask trigger-booking-workflows batch_reminders --from 2026-12-01 --to 2026-12-02 --type 24h
    flask trigger-booking-workflows complete 456 | no_show 456 | cancel 456 --reason "..."
    flask trigger-booking-workflows move 456 --to ... | feedback 456 --rating 5 | progress 456

Every argument is parsed and checked against the database before anything reaches
Temporal: bad input gets a message naming the option, and nothing starts or changes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from flask.cli import AppGroup

from estuary.contracts.bookings import (
    BatchReminderInput,
    BookingLifecycleInput,
    CancelArg,
    FeedbackArg,
    MarkSessionArg,
    RescheduleArg,
    ReschedulingInput,
    lifecycle_workflow_id,
    utc_iso,
)
from estuary.contracts.inputs import InputError, parse_input
from estuary.services import booking_policies, bookings
from estuary.services.command_audit import cli_actor, note_temporal_call
from estuary.services.errors import BusinessRuleError
from temporal_gateway.access import gateway
from temporal_gateway.gateway import GatewayError, RunNotFound, StartedRun
from workers.temporal.command_support import start_and_report

T = TypeVar("T")

# Field name -> the option a user typed, so messages name what the user can fix.
OPTION_NAMES = {
    "booking_id": "BOOKING_ID",
    "new_start_at": "--to",
    "window_start": "--from",
    "window_end": "--to",
    "reminder_type": "--type",
    "chunk_size": "--chunk-size",
    "request_key": "--key",
    "reason": "--reason",
    "rating": "--rating",
    "comment": "--comment",
    "note": "--note",
    "by": "--by",
}


def _describe(errors: dict[str, str]) -> str:
    return "; ".join(
        f"{OPTION_NAMES.get(name, '--' + name.replace('_', '-'))} ({name}): {message}"
        for name, message in errors.items()
    )


def _parse(input_type: type[T], values: dict[str, Any]) -> T:
    try:
        return parse_input(input_type, {k: v for k, v in values.items() if v is not None})
    except InputError as exc:
        raise click.ClickException(f"invalid input: {_describe(exc.errors)}") from None


def _check(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except BusinessRuleError as exc:
        where = f"{_describe({exc.field: exc.message})}" if exc.field else exc.message
        raise click.ClickException(where) from None


def _now() -> datetime:
    return datetime.now(UTC)


# --- starting workflows ----------------------------------------------------------------------


def fill_policy_defaults(inp: BookingLifecycleInput) -> BookingLifecycleInput:
    """Empty policy fields take the configured values, so the run's input shows them."""
    policy = booking_policies.defaults()
    filled = {
        f.name: getattr(policy, f.name)
        for f in dataclasses.fields(inp)
        if f.name != "booking_id" and getattr(inp, f.name) is None
    }
    return dataclasses.replace(inp, **filled)


def start_lifecycle(values: dict[str, Any], *, reason: str = "", wait: bool = False) -> StartedRun:
    inp = _parse(BookingLifecycleInput, values)
    _check(lambda: bookings.check_lifecycle_can_start(inp.booking_id))
    return start_and_report(
        "BookingLifecycleWorkflow", fill_policy_defaults(inp), reason=reason, wait=wait
    )


def start_reschedule(
    booking_id: str, to: str, *, reason: str, key: str = "", wait: bool = False
) -> StartedRun:
    inp = _parse(
        ReschedulingInput,
        {"booking_id": booking_id, "new_start_at": to, "reason": reason, "request_key": key},
    )

    def check() -> None:
        booking = bookings.get_booking(inp.booking_id)
        bookings.check_new_slot(booking, inp.new_start_at, _now())

    _check(check)
    return start_and_report("ReschedulingWorkflow", inp, reason=reason, wait=wait)


def start_batch_reminders(
    window_from: str | None,
    window_to: str | None,
    reminder_type: str,
    chunk_size: str | None = None,
    *,
    wait: bool = False,
) -> StartedRun:
    inp = _parse(
        BatchReminderInput,
        {
            "window_start": window_from,
            "window_end": window_to,
            "reminder_type": reminder_type,
            "chunk_size": chunk_size,
        },
    )
    if inp.window_end is not None and inp.window_end <= _now():
        raise click.ClickException(
            f"invalid input: --to (window_end): {utc_iso(inp.window_end)} is in the past; "
            "no session in that window can still be reminded"
        )
    return start_and_report("BatchReminderWorkflow", inp, wait=wait)


# --- signals and updates to a running lifecycle -------------------------------------------------


def _booking_id(booking_id: str) -> int:
    return _parse(BookingLifecycleInput, {"booking_id": booking_id}).booking_id


def _active_booking_id(booking_id: str, action: str) -> int:
    """Parse the id and refuse a booking that is unknown or already finished."""
    parsed = _booking_id(booking_id)
    _check(lambda: bookings.require_active(bookings.get_booking(parsed), action))
    return parsed


def _gateway_call(booking_id: int, fn: Callable[[str], T]) -> T:
    workflow_id = lifecycle_workflow_id(booking_id)
    note_temporal_call(f"workflow:{workflow_id}")
    try:
        return fn(workflow_id)
    except RunNotFound:
        raise click.ClickException(
            f"no running lifecycle for booking {booking_id} ({workflow_id}); start one with "
            f"`flask trigger-booking-workflows lifecycle {booking_id}`"
        ) from None
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None


def send_mark(booking_id: str, signal_name: str, note: str) -> None:
    parsed = _active_booking_id(booking_id, "marked")
    arg = _parse(MarkSessionArg, {"actor": cli_actor(), "note": note})
    _gateway_call(parsed, lambda wid: gateway().signal(wid, signal_name, arg))
    click.echo(f"Sent {signal_name} to {lifecycle_workflow_id(parsed)}")


def send_feedback(booking_id: str, rating: str, comment: str) -> None:
    parsed = _booking_id(booking_id)
    _check(lambda: bookings.get_booking(parsed))
    arg = _parse(FeedbackArg, {"actor": cli_actor(), "rating": rating, "comment": comment})
    _gateway_call(parsed, lambda wid: gateway().signal(wid, "feedback_received", arg))
    click.echo(f"Sent feedback_received to {lifecycle_workflow_id(parsed)}")


def send_cancel(booking_id: str, reason: str, by: str) -> Any:
    parsed = _active_booking_id(booking_id, "cancelled")
    arg = _parse(CancelArg, {"actor": cli_actor(), "reason": reason, "by": by})
    result = _gateway_call(parsed, lambda wid: gateway().update(wid, "cancel", arg))
    click.echo(f"Cancelled booking {parsed}: {json.dumps(result, default=str, sort_keys=True)}")
    return result


def send_move(booking_id: str, to: str, reason: str) -> Any:
    parsed = _active_booking_id(booking_id, "moved")
    arg = _parse(RescheduleArg, {"actor": cli_actor(), "new_start_at": to, "reason": reason})

    def check() -> None:
        bookings.check_new_slot(bookings.get_booking(parsed), arg.new_start_at, _now())

    _check(check)
    result = _gateway_call(parsed, lambda wid: gateway().update(wid, "reschedule", arg))
    click.echo(f"Moved booking {parsed}: {json.dumps(result, default=str, sort_keys=True)}")
    return result


def show_progress(booking_id: str) -> Any:
    parsed = _booking_id(booking_id)
    result = _gateway_call(parsed, lambda wid: gateway().query(wid, "progress"))
    click.echo(json.dumps(result, default=str, indent=2, sort_keys=True))
    return result


# --- the click group ----------------------------------------------------------------------------

bookings_cli = AppGroup(
    "trigger-booking-workflows", help="Start bookings workflows and send them signals/updates."
)


@bookings_cli.command("lifecycle")
@click.argument("booking_id")
@click.option("--no-show-fee-percent", default=None, help="Default: BOOKING_NO_SHOW_FEE_PERCENT")
@click.option("--no-show-credit-forfeited", default=None, help="yes/no (default from config)")
@click.option("--cancel-full-credit-hours", default=None, help="Default from config (24)")
@click.option("--late-cancel-credit-percent", default=None, help="Default from config (50)")
@click.option("--grace-period-minutes", default=None, help="Default from config (120)")
@click.option("--feedback-reminder-hours", default=None, help="Default from config (72)")
@click.option("--reason", default="", help="Why (kept in the run's memo)")
@click.option("--wait", is_flag=True, help="Follow the run until it ends")
def lifecycle_command(booking_id: str, reason: str, wait: bool, **policy: str | None) -> None:
    """Start the lifecycle of BOOKING_ID (confirmation, reminders, outcome, follow-up)."""
    start_lifecycle({"booking_id": booking_id, **policy}, reason=reason, wait=wait)


@bookings_cli.command("reschedule")
@click.argument("booking_id")
@click.option("--to", "to", required=True, help="New start, ISO 8601 (UTC unless an offset)")
@click.option("--reason", default="", help="Why the booking moves")
@click.option("--key", default="", help="Request key (default: derived from --to)")
@click.option("--wait", is_flag=True, help="Follow the run until it ends")
def reschedule_command(booking_id: str, to: str, reason: str, key: str, wait: bool) -> None:
    """Replace BOOKING_ID by a new booking at --to (ReschedulingWorkflow)."""
    start_reschedule(booking_id, to, reason=reason, key=key, wait=wait)


@bookings_cli.command("batch_reminders")
@click.option("--from", "window_from", default=None, help="Window start (ISO 8601)")
@click.option("--to", "window_to", default=None, help="Window end (ISO 8601)")
@click.option("--type", "reminder_type", default="24h", help="24h or 1h")
@click.option("--chunk-size", default=None, help="Bookings per chunk (default 100)")
@click.option("--wait", is_flag=True, help="Follow the run until it ends")
def batch_reminders_command(
    window_from: str | None,
    window_to: str | None,
    reminder_type: str,
    chunk_size: str | None,
    wait: bool,
) -> None:
    """Send reminders to every booking starting in the window that has not had one."""
    start_batch_reminders(window_from, window_to, reminder_type, chunk_size, wait=wait)


@bookings_cli.command("complete")
@click.argument("booking_id")
@click.option("--note", default="")
def complete_command(booking_id: str, note: str) -> None:
    """Signal mark_completed to the booking's lifecycle."""
    send_mark(booking_id, "mark_completed", note)


@bookings_cli.command("no_show")
@click.argument("booking_id")
@click.option("--note", default="")
def no_show_command(booking_id: str, note: str) -> None:
    """Signal mark_no_show to the booking's lifecycle."""
    send_mark(booking_id, "mark_no_show", note)


@bookings_cli.command("cancel")
@click.argument("booking_id")
@click.option("--reason", required=True, help="Why the booking is cancelled")
@click.option("--by", "by", default="client", help="client, practitioner or ops")
def cancel_command(booking_id: str, reason: str, by: str) -> None:
    """Cancel the booking (update `cancel`; refused at once if it cannot be cancelled)."""
    send_cancel(booking_id, reason, by)


@bookings_cli.command("move")
@click.argument("booking_id")
@click.option("--to", "to", required=True, help="New start, ISO 8601")
@click.option("--reason", default="")
def move_command(booking_id: str, to: str, reason: str) -> None:
    """Move the booking's time in place (update `reschedule` of its lifecycle)."""
    send_move(booking_id, to, reason)


@bookings_cli.command("feedback")
@click.argument("booking_id")
@click.option("--rating", required=True, help="1 to 5")
@click.option("--comment", default="")
def feedback_command(booking_id: str, rating: str, comment: str) -> None:
    """Signal feedback_received to the booking's lifecycle."""
    send_feedback(booking_id, rating, comment)


@bookings_cli.command("progress")
@click.argument("booking_id")
def progress_command(booking_id: str) -> None:
    """Show the `progress` of the booking's lifecycle."""
    show_progress(booking_id)


COMMANDS = [bookings_cli]
