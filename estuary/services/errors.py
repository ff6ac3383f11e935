"""Errors that domain services raise when a rule refuses an operation.

They carry a message meant for a person. Activities turn them into non-retryable
Temporal failures (no retry can make an unknown practitioner known); views show them.
"""

from __future__ import annotations


class ExpectedFailure(Exception):
    """A failure the system plans for (a rule refusing, a provider declining or briefly
    down): logged as one line with its reason, never with a traceback."""


class BusinessRuleError(ExpectedFailure):
    """A request that the domain rules refuse; retrying will not help."""

    type_name = "BusinessRuleError"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFoundError(BusinessRuleError):
    type_name = "NotFoundError"
