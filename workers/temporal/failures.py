"""Which failures are expected, and how they are logged: one line with the reason.

Expected failures are the ones the system plans for: a business rule refusing
(`BusinessRuleError`, `NotFoundError`), a provider declining (`ProviderDeclined`) or being
briefly down (`ProviderUnavailable`, retried), a decision refused, a payout that failed for
one of those reasons. They are logged as one line naming the reason; a traceback is kept
for the unexpected, where it helps.

Imported by the workflow decorators (and so inside the workflow sandbox): it imports only
the standard library and temporalio, and has no side effects.
"""

from __future__ import annotations

import contextlib
import logging

from temporalio.exceptions import ApplicationError, FailureError

# ApplicationError types of expected failures. `app_activity` raises the services'
# ExpectedFailure subclasses under these names (their `type_name` or class name); workflows
# raise DecisionRefused, InvalidInput and PayoutFailed themselves.
EXPECTED_FAILURE_TYPES = frozenset(
    {
        "BusinessRuleError",
        "NotFoundError",
        "ProviderDeclined",
        "ProviderUnavailable",
        "DecisionRefused",
        "InvalidInput",
        "PayoutFailed",
        "PayoutChanged",
    }
)

# Set on an exception once `monitored_activity` has logged it, so the SDK's own
# "Completing activity as failed" record (with a traceback) can be dropped for it.
_LOGGED_MARK = "_estuary_failure_logged"


def _application_errors(exc: BaseException) -> list[ApplicationError]:
    """The ApplicationErrors of a Temporal failure chain, outermost first (ActivityError,
    ChildWorkflowError and ApplicationError carry what caused them as `__cause__`)."""
    found: list[ApplicationError] = []
    current: BaseException | None = exc
    while current is not None and len(found) < 20:
        if isinstance(current, ApplicationError):
            found.append(current)
        if not isinstance(current, FailureError):
            break
        current = current.__cause__
    return found


def expected_reason(exc: BaseException) -> str | None:
    """`"Type: message"` of the outermost expected failure in the chain, else None."""
    for error in _application_errors(exc):
        if error.type in EXPECTED_FAILURE_TYPES:
            return f"{error.type}: {error.message}"
    return None


def failure_summary(exc: BaseException) -> str:
    """One line for any failure: the expected reason, or the type and text."""
    reason = expected_reason(exc)
    if reason is not None:
        return reason
    errors = _application_errors(exc)
    if errors:
        return f"{errors[0].type or type(errors[0]).__name__}: {errors[0].message}"
    return f"{type(exc).__name__}: {exc}"


def mark_logged(exc: BaseException) -> None:
    """Remember that this expected failure has had its one log line."""
    # An exception that refuses attributes keeps the SDK's record: noisy, never lost.
    with contextlib.suppress(AttributeError):
        setattr(exc, _LOGGED_MARK, True)


class DropLoggedActivityFailures(logging.Filter):
    """Keeps the SDK's "Completing activity as failed" record (and its traceback) for
    unexpected failures only. For an expected one it is dropped when `monitored_activity`
    has already logged it, else shortened to one line with the reason (an activity
    without the decorator)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "__temporal_error_identifier", None) != "ActivityFailure":
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        if getattr(exc, _LOGGED_MARK, False):
            return False
        reason = expected_reason(exc)
        if reason is not None:
            record.msg = f"{record.getMessage()}: {reason}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


_filter = DropLoggedActivityFailures()


def install_log_filter() -> None:
    """Attach the filter to the SDK's activity logger (idempotent; done by build_worker)."""
    sdk_logger = logging.getLogger("temporalio.activity")
    if _filter not in sdk_logger.filters:
        sdk_logger.addFilter(_filter)
