"""Inputs, signal/update arguments and results of the bookings workflows and activities.

No side effects: the workflow sandbox imports this module. The reminder offsets and the
reminder notification key live here because the lifecycle, the batch and the services must
agree on them exactly (the key is what stops a reminder being sent twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from estuary.contracts.checks import ACTOR_HELP
from estuary.contracts.field_types import resolve_field_types

TASK_QUEUE = "bookings"

ReminderType = Literal["24h", "1h"]
REMINDER_TYPES: tuple[str, ...] = ("24h", "1h")
REMINDER_OFFSETS: dict[str, timedelta] = {"24h": timedelta(hours=24), "1h": timedelta(hours=1)}
CancelledBy = Literal["client", "practitioner", "ops"]

# Default policy values, used only when neither the input nor the app config gives one.
DEFAULT_NO_SHOW_FEE_PERCENT = 50
DEFAULT_NO_SHOW_CREDIT_FORFEITED = True
DEFAULT_CANCEL_FULL_CREDIT_HOURS = 24
DEFAULT_LATE_CANCEL_CREDIT_PERCENT = 50
DEFAULT_GRACE_PERIOD_MINUTES = 120
DEFAULT_FEEDBACK_REMINDER_HOURS = 72

KEY_PATTERN = r"[A-Za-z0-9_.:-]{1,64}"
MAX_WINDOW = timedelta(days=31)


def utc_iso(value: datetime) -> str:
    """The one text form of a booking time (keys, payloads, progress)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def lifecycle_workflow_id(booking_id: int) -> str:
    """The business id of a booking's lifecycle run."""
    return f"bookings-lifecycle-{booking_id}"


def reminder_key(booking_id: int, reminder_type: str, start_at: datetime) -> str:
    """Notification key of one reminder: per booking, reminder type and start time, so the
    batch and the lifecycle never send the same reminder twice and a moved booking's new
    reminders are distinct from the old ones."""
    return f"booking:{booking_id}:reminder:{reminder_type}:{utc_iso(start_at)}"


# --- workflow inputs and results --------------------------------------------------------


@dataclass
class BookingLifecycleInput:
    """BookingLifecycleWorkflow. Policy fields left empty are filled from the app config
    (by the command, or by the lifecycle's first activity when started elsewhere)."""

    booking_id: int = field(metadata={"help": "The booking to run the lifecycle of"})
    no_show_fee_percent: int | None = field(
        default=None,
        metadata={
            "help": "No-show: share of the price paid to the practitioner (percent)",
            "min": 0,
            "max": 100,
        },
    )
    no_show_credit_forfeited: bool | None = field(
        default=None,
        metadata={"help": "No-show: the client forfeits the rest of the price (no credit)"},
    )
    cancel_full_credit_hours: int | None = field(
        default=None,
        metadata={
            "help": "Client cancellations more than this many hours ahead get full credit",
            "min": 0,
            "max": 720,
        },
    )
    late_cancel_credit_percent: int | None = field(
        default=None,
        metadata={
            "help": "Late client cancellation: credit back (percent); the rest is the "
            "practitioner's late-cancellation fee",
            "min": 0,
            "max": 100,
        },
    )
    grace_period_minutes: int | None = field(
        default=None,
        metadata={
            "help": "Minutes after the session's end before an unmarked session is flagged",
            "min": 1,
            "max": 10_080,
        },
    )
    feedback_reminder_hours: int | None = field(
        default=None,
        metadata={
            "help": "Hours after the follow-up before the one feedback reminder",
            "min": 1,
            "max": 720,
        },
    )


@dataclass
class BookingLifecycleResult:
    booking_id: int
    outcome: str  # completed / no_show / cancelled / rescheduled
    start_at: str
    credit_cents: int = 0
    fee_cents: int = 0
    feedback_rating: int | None = None
    feedback_reminder_sent: bool = False
    reminders_sent: list[str] = field(default_factory=list)
    rescheduled_to_booking_id: int | None = None


@dataclass
class ReschedulingInput:
    """ReschedulingWorkflow: move a booking to a new booking at a new time."""

    booking_id: int = field(metadata={"help": "The booking to move"})
    new_start_at: datetime = field(
        metadata={"help": "New start, ISO 8601 (UTC unless an offset is given)"}
    )
    reason: str = field(
        default="", metadata={"help": "Why the booking moves (shown to ops)", "max_length": 500}
    )
    request_key: str = field(
        default="",
        metadata={
            "help": "Idempotency key of this request (default: derived from the new start)",
            "max_length": 64,
            "pattern": KEY_PATTERN,
        },
    )

    def key(self) -> str:
        return self.request_key or f"{self.new_start_at.astimezone(UTC):%Y%m%dT%H%M}"

    def validate(self) -> dict[str, str]:
        # Runs on the starting side only (command, console form): the wall clock is fine here.
        if self.new_start_at <= datetime.now(UTC):
            return {"new_start_at": f"{utc_iso(self.new_start_at)} is not in the future"}
        return {}


@dataclass
class ReschedulingResult:
    old_booking_id: int
    new_booking_id: int
    new_start_at: str
    lifecycle_workflow_id: str
    created: bool  # False when this request had already been carried out


@dataclass
class BatchReminderInput:
    """BatchReminderWorkflow. Without a window it covers bookings starting 24-48 h after
    the run starts (the daily schedule), so each gets its reminder a day ahead."""

    window_start: datetime | None = field(
        default=None, metadata={"help": "Bookings starting at or after this time (ISO 8601)"}
    )
    window_end: datetime | None = field(
        default=None, metadata={"help": "... and before this time (ISO 8601)"}
    )
    reminder_type: ReminderType = field(
        default="24h", metadata={"help": "Which reminder to send: 24h or 1h"}
    )
    chunk_size: int = field(
        default=100, metadata={"help": "Bookings per activity call", "min": 1, "max": 500}
    )
    # Carried across continue-as-new; leave at 0 when starting.
    resume_cursor: int = field(
        default=0,
        metadata={"help": "Internal: continue after this booking id (0: from the start)", "min": 0},
    )
    sent_so_far: int = field(default=0, metadata={"help": "Internal: count carried over", "min": 0})
    already_sent_so_far: int = field(
        default=0, metadata={"help": "Internal: count carried over", "min": 0}
    )

    def window_label(self) -> str:
        if self.window_start is None or self.window_end is None:
            return f"{self.reminder_type}-daily"
        return (
            f"{self.reminder_type}-{self.window_start.astimezone(UTC):%Y%m%dT%H%M}"
            f"-{self.window_end.astimezone(UTC):%Y%m%dT%H%M}"
        )

    def validate(self) -> dict[str, str]:
        if (self.window_start is None) != (self.window_end is None):
            field_name = "window_end" if self.window_end is None else "window_start"
            return {field_name: "give both window_start and window_end, or neither"}
        if self.window_start is not None and self.window_end is not None:
            if self.window_end <= self.window_start:
                return {"window_end": "must be after window_start"}
            if self.window_end - self.window_start > MAX_WINDOW:
                return {"window_end": f"the window may span at most {MAX_WINDOW.days} days"}
        return {}


@dataclass
class BatchReminderResult:
    window_start: str
    window_end: str
    reminder_type: str
    sent: int
    already_sent: int
    chunks: int


# --- signal and update arguments ---------------------------------------------------------


@dataclass
class MarkSessionArg:
    """`mark_completed` / `mark_no_show` (signals)."""

    actor: str = field(metadata={"help": ACTOR_HELP, "max_length": 254})
    note: str = field(default="", metadata={"help": "Optional note", "max_length": 500})


@dataclass
class FeedbackArg:
    """`feedback_received` (signal)."""

    actor: str = field(metadata={"help": ACTOR_HELP, "max_length": 254})
    rating: int = field(
        metadata={"help": "Rating from 1 (poor) to 5 (excellent)", "min": 1, "max": 5}
    )
    comment: str = field(default="", metadata={"help": "The client's comment", "max_length": 2000})


@dataclass
class CancelArg:
    """`cancel` (update with validator)."""

    actor: str = field(metadata={"help": ACTOR_HELP, "max_length": 254})
    reason: str = field(metadata={"help": "Why the booking is cancelled", "max_length": 500})
    by: CancelledBy = field(
        default="client",
        metadata={"help": "Who cancels: client, practitioner or ops (decides the credit)"},
    )


@dataclass
class RescheduleArg:
    """`reschedule` (update with validator): move this booking's time in place."""

    actor: str = field(metadata={"help": ACTOR_HELP, "max_length": 254})
    new_start_at: datetime = field(metadata={"help": "New start, ISO 8601 (UTC by default)"})
    reason: str = field(default="", metadata={"help": "Why it moves", "max_length": 500})


@dataclass
class RescheduledAwayArg:
    """`rescheduled_away` (internal signal from ReschedulingWorkflow): this booking was
    replaced by a new booking; the lifecycle ends without applying any policy."""

    actor: str = field(metadata={"help": ACTOR_HELP, "max_length": 254})
    new_booking_id: int = field(metadata={"help": "The booking that replaces this one"})
    reason: str = field(default="", metadata={"help": "Why it moved", "max_length": 500})


@dataclass
class CancelResult:
    booking_id: int
    credit_cents: int
    fee_cents: int
    full_credit: bool
    note: str


@dataclass
class RescheduleResult:
    booking_id: int
    start_at: str
    end_at: str
    reminders: dict[str, str]  # type -> "pending at <iso>" / "skipped"


# --- activity inputs and results ---------------------------------------------------------


@dataclass
class BookingRef:
    booking_id: int


@dataclass
class BookingSnapshot:
    """What the lifecycle needs to know about its booking, plus the configured policy."""

    booking_id: int
    status: str
    start_at: datetime
    end_at: datetime
    client_id: int
    practitioner_id: int
    package_purchase_id: int | None
    rescheduled_from_id: int | None
    price_cents: int
    currency: str
    no_show_fee_percent: int
    no_show_credit_forfeited: bool
    cancel_full_credit_hours: int
    late_cancel_credit_percent: int
    grace_period_minutes: int
    feedback_reminder_hours: int


@dataclass
class BookingNoticeInput:
    """One message about a booking to the client and/or the practitioner."""

    booking_id: int
    kind: str  # confirmation, follow_up, feedback_reminder, no_show, cancelled, moved, ...
    audience: list[str]  # "client", "practitioner"
    workflow_time: datetime
    key_suffix: str = ""
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class BookingNoticeResult:
    keys: list[str]
    created: list[bool]


@dataclass
class ReminderInput:
    booking_id: int
    reminder_type: str
    start_at: datetime  # the start the sender believes; a moved booking is not reminded
    workflow_time: datetime
    sent_by: str  # "lifecycle" or "batch"


@dataclass
class ReminderResult:
    key: str
    state: str  # sent / already_sent / skipped
    reason: str = ""


@dataclass
class CompleteBookingInput:
    booking_id: int
    actor: str
    workflow_time: datetime
    note: str = ""


@dataclass
class NoShowInput:
    booking_id: int
    actor: str
    workflow_time: datetime
    fee_percent: int
    credit_forfeited: bool
    note: str = ""


@dataclass
class CancellationInput:
    booking_id: int
    actor: str
    by: str
    reason: str
    workflow_time: datetime
    full_credit_hours: int
    late_credit_percent: int


@dataclass
class BookingOutcome:
    booking_id: int
    status: str
    credit_cents: int
    fee_cents: int
    note: str
    changed: bool  # False when the outcome had been applied before (a repeat)


@dataclass
class MoveBookingInput:
    booking_id: int
    new_start_at: datetime
    expected_start_at: datetime
    actor: str
    reason: str
    workflow_time: datetime


@dataclass
class MovedBooking:
    booking_id: int
    start_at: datetime
    end_at: datetime


@dataclass
class FeedbackInput:
    booking_id: int
    rating: int
    comment: str
    actor: str
    workflow_time: datetime


@dataclass
class FeedbackResult:
    booking_id: int
    rating: int
    created: bool


@dataclass
class BookingFlagInput:
    booking_id: int
    kind: str  # unresolved_session, payments_step_failed
    message: str
    workflow_id: str


@dataclass
class BookingFlagResult:
    key: str
    flag_id: int


@dataclass
class RescheduleRequestInput:
    booking_id: int
    new_start_at: datetime
    reschedule_key: str
    reason: str
    actor: str
    workflow_time: datetime


@dataclass
class RescheduledBooking:
    old_booking_id: int
    new_booking_id: int | None  # None from the check when nothing was created yet
    new_start_at: datetime
    new_end_at: datetime
    created: bool


@dataclass
class ReminderPageInput:
    window_start: datetime
    window_end: datetime
    reminder_type: str
    workflow_time: datetime
    after_booking_id: int
    limit: int


@dataclass
class ReminderPage:
    booking_ids: list[int]  # bookings in the page that still need the reminder
    last_booking_id: int  # cursor: the highest booking id looked at
    exhausted: bool
    already_sent: int = 0  # bookings in the page that had the reminder already


@dataclass
class ReminderChunkInput:
    booking_ids: list[int]
    reminder_type: str
    workflow_time: datetime


@dataclass
class ReminderChunkResult:
    sent: int
    already_sent: int
    skipped: int


# --- which lifecycle actions apply now (the console offers only these) -------------------

# The lifecycle's own phase says whether the session has started: its timer at the
# session's start moves `awaiting_session` to `awaiting_outcome` (on the workflow's clock,
# which a console or test server may disagree with), so the console never compares the
# start time with its own clock.
BEFORE_SESSION_STAGES = ("awaiting_session",)
SESSION_STARTED_STAGES = ("awaiting_outcome", "unresolved")


def lifecycle_actions(progress: Any) -> tuple[str, ...]:
    """The lifecycle's handlers that apply at this moment, from its `progress` answer:
    cancel and reschedule before the session (stage `awaiting_session`), cancel and
    completed / no-show once the workflow reports the session started (`awaiting_outcome`,
    `unresolved`), feedback after completion; nothing while it starts, confirms, records
    an outcome or has ended. What the workflow would ignore is not offered."""
    if not isinstance(progress, Mapping):
        return ()
    stage = progress.get("stage")
    if stage == "awaiting_feedback":
        return ("feedback_received",)
    if progress.get("outcome"):
        return ()
    if stage in BEFORE_SESSION_STAGES:
        return ("cancel", "reschedule")
    if stage in SESSION_STARTED_STAGES:
        return ("cancel", "mark_completed", "mark_no_show")
    return ()


resolve_field_types(__name__)
