"""Retry policies, timeouts and ID policies, named once and used by name.

Imported by workflow modules, so it must stay free of side effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import ScheduleOverlapPolicy
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from estuary.contracts.field_types import resolve_field_types

# Errors that no retry can fix: raised by services as BusinessRuleError and turned into
# non-retryable ApplicationErrors by `app_activity`; listed here for workflows that
# catch them by type.
BUSINESS_RULE_ERROR = "BusinessRuleError"
NOT_FOUND_ERROR = "NotFoundError"


@dataclass(frozen=True)
class ActivityPolicy:
    """How one kind of activity is timed and retried."""

    name: str
    start_to_close: timedelta
    retry: RetryPolicy
    schedule_to_close: timedelta | None = None
    heartbeat: timedelta | None = None


def doubling(first: timedelta, up_to: timedelta, attempts: int = 0) -> RetryPolicy:
    """Retry after `first`, then after twice as long each time, never more than `up_to`
    apart; at most `attempts` attempts (0: until the activity's schedule-to-close)."""
    return RetryPolicy(
        initial_interval=first,
        backoff_coefficient=2.0,
        maximum_interval=up_to,
        maximum_attempts=attempts,
    )


SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)

# Reads and writes of the app database: fast, retried briefly on connection trouble.
DATABASE = ActivityPolicy("database", 30 * SECOND, doubling(SECOND, 30 * SECOND, 10))

# Messages to people: retried for a long time; sending is idempotent by key.
NOTIFICATION = ActivityPolicy(
    "notification", 30 * SECOND, doubling(5 * SECOND, 10 * MINUTE), timedelta(hours=12)
)

# Money through the payment provider: every call carries an idempotency key, so retrying
# is safe; the window is bounded so a stuck provider surfaces as a failed payout.
PAYMENT_PROVIDER = ActivityPolicy(
    "payment_provider", 60 * SECOND, doubling(2 * SECOND, 5 * MINUTE, 12)
)

# The payout transfer: a short attempt timeout, so an attempt lost with its worker
# (crash, SIGKILL) is retried on another worker within seconds rather than a minute, and
# few attempts: when they are used up the outcome is unknown, and the payout moves to
# `reconciling` (hold kept) and asks the provider by key on durable timers instead of
# hammering it. Safe because the transfer carries its idempotency key.
PAYOUT_TRANSFER = ActivityPolicy(
    "payout_transfer", 15 * SECOND, doubling(2 * SECOND, 30 * SECOND, 4)
)

# One more send of a payout whose outcome is unknown and of which the provider has no
# record yet, from the reconciling loop (same idempotency key: at most one transfer).
PAYOUT_TRANSFER_RESEND = ActivityPolicy(
    "payout_transfer_resend", 15 * SECOND, RetryPolicy(maximum_attempts=1)
)

# Calls to outside verification providers (background checks).
EXTERNAL_PROVIDER = ActivityPolicy(
    "external_provider", 2 * MINUTE, doubling(10 * SECOND, 30 * MINUTE, 20)
)

# Bulk reads/writes over many rows (batch selection): longer, still bounded.
BATCH = ActivityPolicy("batch", 5 * MINUTE, doubling(2 * SECOND, MINUTE, 10))

POLICIES = {
    p.name: p
    for p in (
        DATABASE,
        NOTIFICATION,
        PAYMENT_PROVIDER,
        PAYOUT_TRANSFER,
        PAYOUT_TRANSFER_RESEND,
        EXTERNAL_PROVIDER,
        BATCH,
    )
}

# Workflow ID policies. Money: a completed run can never be started again under the same
# business id; a failed one may be retried; a second start while one runs is refused (the
# caller is shown the running one).
MONEY_ID_REUSE = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
DEFAULT_ID_REUSE = WorkflowIDReusePolicy.ALLOW_DUPLICATE
ID_CONFLICT = WorkflowIDConflictPolicy.FAIL

# Child workflows of batches are started in chunks of at most `payments.BATCH_CHUNK_SIZE`
# (the batch input's default, kept with the input so the domain can read it without
# importing temporalio).
# A batch continues as new after this many items even if the server does not suggest it.
CONTINUE_AS_NEW_AFTER_ITEMS = 2_000

# Schedules (set by `flask schedules sync`). A firing that finds the previous run still
# going is skipped: a batch must never overlap itself (its children would race for the
# same balances). A firing missed while Temporal was down is caught up within a day, so a
# weekend outage still pays on Monday, but not the SDK default of a year, which would
# start stale batches after a long outage.
SCHEDULE_OVERLAP = ScheduleOverlapPolicy.SKIP
SCHEDULE_CATCHUP_WINDOW = timedelta(days=1)


resolve_field_types(__name__)
