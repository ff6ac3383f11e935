"""Helpers the payments workflows share: pure functions of their arguments.

Passed through the workflow sandbox (imported once per worker, not once per run): nothing
here reads a clock, the environment or any state, and nothing is imported that does.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from estuary.contracts.payments import input_problems

# Errors after which the provider is known not to have sent anything.
NOT_SENT_TYPES = ("ProviderDeclined", "BusinessRuleError", "NotFoundError")


def known_not_sent(err: BaseException) -> bool:
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.type in NOT_SENT_TYPES:
            return True
        cause = cause.__cause__
    return False


def refuse_bad_input(inp: object) -> None:
    """Input that skipped `parse_input` (a raw client start) is refused before any step."""
    problem = input_problems(inp)
    if problem:
        raise ApplicationError(problem, type="InvalidInput", non_retryable=True)


def failure_text(err: BaseException) -> str:
    cause: BaseException | None = err
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)
