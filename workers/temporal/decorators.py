"""`monitored_activity`: end, duration and failure of every activity in the log.

Workflow logging happens in `MonitoringInterceptor` (workers.temporal.worker): an
interceptor sees start, end, duration and failure of every run without wrapping `run`,
which `@workflow.defn` must see undecorated. What the console knows of a workflow is not
declared on its class but in the catalogue (`estuary.contracts.specs.<domain>`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workers.temporal import failures

log = logging.getLogger("estuary.activity")

T = TypeVar("T")


def monitored_activity(fn: Callable[..., T]) -> Callable[..., T]:
    """Log the end of an activity with its duration, workflow id and attempt: one INFO
    line when it succeeds (`activity done ... in 0.012s`). Its start is logged at DEBUG
    only: the line said nothing the done line does not, and an activity still running
    shows on its run page as pending, with its attempt and last failure (a payout logged
    9 INFO lines, now 6; docs/performance.md).

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
        log.debug("activity start %s", where)
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
