"""Bookings activities more than one workflow uses (notices): thin calls into
estuary.services. Each runs in its own Flask app context and one DB transaction; a
refusal by the rules (BusinessRuleError) becomes a non-retryable failure with its message.
"""

from __future__ import annotations

from estuary.contracts.bookings import (
    BookingNoticeInput,
    BookingNoticeResult,
)
from estuary.services import bookings
from workers.temporal.base_activities import write_activity


@write_activity
def send_booking_notice(inp: BookingNoticeInput) -> BookingNoticeResult:
    sent = bookings.send_notice(
        inp.booking_id,
        inp.kind,
        list(inp.audience),
        inp.workflow_time,
        key_suffix=inp.key_suffix,
        details=inp.details,
    )
    return BookingNoticeResult(keys=[s.key for s in sent], created=[s.created for s in sent])
