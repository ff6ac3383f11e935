"""Which failures count as expected (one log line, no traceback) and the SDK-record filter."""

from __future__ import annotations

import logging
import sys

import pytest
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from estuary.services import payment_provider
from estuary.services.errors import BusinessRuleError, ExpectedFailure
from workers.temporal import failures


def _all_subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_all_subclasses(sub)}
    return out


def test_every_expected_failure_class_has_an_expected_type_name():
    assert payment_provider.ProviderUnavailable in _all_subclasses(ExpectedFailure)
    for cls in _all_subclasses(ExpectedFailure):
        # app_activity raises them under `type_name` (business rules) or the class name.
        name = getattr(cls, "type_name", None) if issubclass(cls, BusinessRuleError) else None
        assert (name or cls.__name__) in failures.EXPECTED_FAILURE_TYPES, cls


def _activity_error(cause: BaseException) -> ActivityError:
    err = ActivityError(
        "activity failed",
        scheduled_event_id=5,
        started_event_id=6,
        identity="w",
        activity_type="transfer_payout",
        activity_id="3",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    err.__cause__ = cause
    return err


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (
            ApplicationError("no destination", type="ProviderDeclined"),
            "ProviderDeclined: no destination",
        ),
        (
            _activity_error(ApplicationError("unknown", type="NotFoundError")),
            "NotFoundError: unknown",
        ),
        (ApplicationError("bug", type="KeyError"), None),
        (KeyError("bug"), None),
        (_activity_error(ApplicationError("boom", type="RuntimeError")), None),
    ],
)
def test_expected_reason(exc, reason):
    assert failures.expected_reason(exc) == reason


def test_the_outermost_expected_reason_wins():
    outer = ApplicationError("payout 3 failed: declined; hold returned", type="PayoutFailed")
    outer.__cause__ = _activity_error(ApplicationError("declined", type="ProviderDeclined"))
    assert (
        failures.expected_reason(outer) == "PayoutFailed: payout 3 failed: declined; hold returned"
    )


def _sdk_record(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        info = sys.exc_info()
    record = logging.LogRecord(
        "temporalio.activity",
        logging.WARNING,
        __file__,
        1,
        "Completing activity as failed",
        None,
        info,
    )
    record.__dict__["__temporal_error_identifier"] = "ActivityFailure"
    return record


def test_sdk_record_of_an_unlogged_expected_failure_becomes_one_line():
    record = _sdk_record(ApplicationError("practitioner 9 is suspended", type="BusinessRuleError"))
    assert failures.DropLoggedActivityFailures().filter(record) is True
    assert record.exc_info is None
    assert record.getMessage() == (
        "Completing activity as failed: BusinessRuleError: practitioner 9 is suspended"
    )


def test_sdk_record_of_a_logged_expected_failure_is_dropped():
    exc = ApplicationError("declined", type="ProviderDeclined")
    failures.mark_logged(exc)
    assert failures.DropLoggedActivityFailures().filter(_sdk_record(exc)) is False


def test_sdk_record_of_an_unexpected_failure_keeps_its_traceback():
    record = _sdk_record(KeyError("bug"))
    assert failures.DropLoggedActivityFailures().filter(record) is True
    assert record.exc_info is not None and record.getMessage() == "Completing activity as failed"
