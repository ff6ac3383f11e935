"""The words of a failure, read once: the innermost message of a Temporal failure chain.

Temporal wraps what went wrong (ActivityError -> ApplicationError, ChildWorkflowError ->
ApplicationError ...) and each wrapper carries its cause as `__cause__`; the innermost
one holds the service's own words ("practitioner 5 has no payout destination"). Workflows
(inside the sandbox), the workers and the console's gateway all show that text, so it is
read here, with no import at all.
"""

from __future__ import annotations


def innermost_message(exc: BaseException) -> str:
    """The message of the innermost exception of the chain (its `message` if it has one,
    as Temporal's failures do, else its text)."""
    seen: set[int] = set()
    while exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return getattr(exc, "message", None) or str(exc)
