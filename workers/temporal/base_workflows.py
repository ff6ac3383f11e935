"""BaseWorkflow: the helpers every Estuary workflow uses.

Imported inside the workflow sandbox: deterministic code only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError

from estuary.contracts import policies
from estuary.contracts.domains import DOMAINS
from estuary.contracts.search_attributes import (
    ENTITY_ID,
    ENTITY_TYPE,
    ESTUARY_DOMAIN,
    TRIGGERED_BY,
)

R = TypeVar("R")

# How many ignored signals a workflow keeps to show in its `progress` answer.
MAX_IGNORED_SHOWN = 20


def iso(value: datetime | None) -> str | None:
    """`value` as ISO text for a `progress` answer, None stays None."""
    return value.isoformat() if value is not None else None


def as_utc(value: datetime) -> datetime:
    """`value` as an aware UTC time (a naive value is taken to be UTC already)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def refusal(message: str) -> ApplicationError:
    """A business-rule refusal: non-retryable, typed so the console shows the message."""
    return ApplicationError(message, type=policies.BUSINESS_RULE_ERROR, non_retryable=True)


def note_ignored(ignored: list[dict], signal: str, reason: str) -> None:
    """Record a signal that could not apply (newest last, the last MAX_IGNORED_SHOWN kept)."""
    ignored.append({"signal": signal, "reason": reason, "at": workflow.now().isoformat()})
    del ignored[:-MAX_IGNORED_SHOWN]


def progress_answer(stage: str, steps_done: list[str], **figures: Any) -> dict[str, Any]:
    """The `progress` answer of a run that waits for nothing (no signal, no approval): its
    stage, a copy of its steps done, and the run's own figures after them."""
    return {
        "stage": stage,
        "steps_done": list(steps_done),
        "waiting_for": None,
        "waiting_until": None,
        **figures,
    }


def require_text(value: str | None, message: str) -> None:
    """Refuse an update, from its validator, whose required text (a reason, the actor) is
    missing or blank."""
    if not (value or "").strip():
        raise ValueError(message)


def queue_prefix() -> str:
    """The task-queue prefix of the running workflow (its own queue minus its domain)."""
    own = workflow.info().task_queue
    for domain in DOMAINS:
        if own.endswith(domain):
            return own[: -len(domain)]
    return ""


def task_queue_for(domain: str) -> str:
    """The task queue of another domain, under the same prefix as this run's queue."""
    return queue_prefix() + domain


class BaseWorkflow:
    """Helpers for activities and child workflows with named policies."""

    async def execute_activity(
        self,
        activity: Callable[..., R] | str,
        arg: Any = None,
        *,
        policy: policies.ActivityPolicy = policies.DATABASE,
        domain: str | None = None,
        result_type: type | None = None,
        summary: str | None = None,
    ) -> R:
        """Run one activity with a named policy, optionally on another domain's queue."""
        args = [] if arg is None else [arg]
        return await workflow.execute_activity(
            activity,
            args=args,
            start_to_close_timeout=policy.start_to_close,
            schedule_to_close_timeout=policy.schedule_to_close,
            heartbeat_timeout=policy.heartbeat,
            retry_policy=policy.retry,
            task_queue=task_queue_for(domain) if domain else None,
            result_type=result_type,
            summary=summary,
        )

    def child_search_attributes(
        self, entity_type: str, entity_id: str | int, domain: str | None = None
    ) -> TypedSearchAttributes:
        """Search attributes for a child run, inheriting domain and trigger from this run."""
        parent = workflow.info().typed_search_attributes
        return TypedSearchAttributes(
            [
                SearchAttributePair(ESTUARY_DOMAIN, domain or parent.get(ESTUARY_DOMAIN) or ""),
                SearchAttributePair(ENTITY_TYPE, entity_type),
                SearchAttributePair(ENTITY_ID, str(entity_id)),
                SearchAttributePair(TRIGGERED_BY, parent.get(TRIGGERED_BY) or "workflow"),
            ]
        )

    @staticmethod
    def deadline_after(delta: timedelta) -> str:
        """ISO time `delta` from now in workflow time (for `progress` answers)."""
        return (workflow.now() + delta).isoformat()


class StepsWorkflow(BaseWorkflow):
    """A run of a few activity steps in a row that waits for nothing: it names its current
    step in `_step`, appends each finished one to `_done`, and `progress` answers both."""

    def __init__(self) -> None:
        self._step = "starting"
        self._done: list[str] = []

    @workflow.query
    def progress(self) -> dict[str, Any]:
        return progress_answer(self._step, self._done, step=self._step)
