"""`monitored_workflow` (catalogue metadata + start/end logging) and `monitored_activity`.

Imported by workflow modules, so nothing here may have side effects or import Flask.
Workflow logging itself happens in `MonitoringInterceptor` (workers.temporal.worker):
an interceptor sees start, end, duration and failure of every run of a monitored class
without wrapping `run`, which `@workflow.defn` must see undecorated.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from estuary.contracts.spec import WorkflowSpec
from workers.temporal import failures

log = logging.getLogger("estuary.activity")

T = TypeVar("T")


def monitored_workflow(
    *,
    domain: str,
    input: type,
    description: str,
    business_id: Callable[[Any, datetime], str],
    entity_type: str,
    entity_id: Callable[[Any], str | int],
    money: bool = False,
    signals: tuple[tuple[str, type | None], ...] = (),
    updates: tuple[tuple[str, type | None], ...] = (),
    actions_now: Callable[[Any], tuple[str, ...]] | None = None,
    console_signals: tuple[str, ...] | None = None,
) -> Callable[[type[T]], type[T]]:
    """Attach a `WorkflowSpec` to a workflow class and mark it for run monitoring."""

    spec = WorkflowSpec(
        domain=domain,
        input_type=input,
        description=description,
        business_id=business_id,
        entity_type=entity_type,
        entity_id=entity_id,
        money=money,
        signals=signals,
        updates=updates,
        actions_now=actions_now,
        console_signals=console_signals,
    )

    def attach(cls: type[T]) -> type[T]:
        cls.__estuary_spec__ = spec  # type: ignore[attr-defined]
        return cls

    return attach


def spec_of(cls: type) -> WorkflowSpec | None:
    return getattr(cls, "__estuary_spec__", None)


def monitored_activity(fn: Callable[..., T]) -> Callable[..., T]:
    """Log start, end, duration and failure of an activity with workflow id and attempt.

    An expected failure (a business refusal, a provider declining or briefly down) is one
    WARNING line with its reason and no traceback; the SDK's own record of it is dropped
    (`failures.DropLoggedActivityFailures`). An unexpected one is an ERROR line here, and
    the SDK's record keeps the traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any) -> T:
        info = activity.info()
        where = f"{info.activity_type} wf={info.workflow_id} attempt={info.attempt}"
        started = time.monotonic()
        log.info("activity start %s", where)
        try:
            result = fn(*args)
        except Exception as exc:
            elapsed = time.monotonic() - started
            reason = failures.expected_reason(exc)
            if reason is not None:
                log.warning(
                    "activity refused %s after %.3fs: %s%s",
                    where,
                    elapsed,
                    reason,
                    _retry_note(exc, info),
                )
                failures.mark_logged(exc)
            else:
                log.error(
                    "activity failed %s after %.3fs: %s",
                    where,
                    elapsed,
                    failures.failure_summary(exc),
                )
            raise
        log.info("activity done %s in %.3fs", where, time.monotonic() - started)
        return result

    return wrapper


def _retry_note(exc: BaseException, info: activity.Info) -> str:
    """What Temporal does next with this failure, as far as the activity can tell."""
    if isinstance(exc, ApplicationError) and exc.non_retryable:
        return ""
    limit = info.retry_policy.maximum_attempts if info.retry_policy else 0
    if limit and info.attempt >= limit:
        return "; last attempt"
    return "; will be retried"
