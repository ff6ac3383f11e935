"""The dashboard's synchronous gateway to Temporal.

Flask views and `flask` commands are synchronous; the Temporal client is asyncio. Each
process owns one `TemporalGateway`: one event loop on a daemon thread, one `Client`
created on that loop, and sync methods that submit coroutines to it and wait with a
timeout. Temporal errors come back as the typed `GatewayError`s of
`temporal_gateway.errors`, answers as the dataclasses of `temporal_gateway.records` (both
importable from here), which views and commands turn into clear messages.

Calls go through a circuit breaker (`temporal_gateway.breaker`): once Temporal is known to
be unreachable, stopped or hung, every call fails at once with `TemporalUnavailable` and a
background probe finds out when it answers again. Reads that may be a few seconds old
(`fresh_for`) are shared by the process's requests and refreshed in the background.

This module owns the loop, the client, `run` (breaker, error mapping, metrics), starting
runs, listing/counting/describing them and acting on them (cancel, terminate, reset).
Three groups of methods sit in modules of their own and are mixed into the class:
history reads (`temporal_gateway.history_reads`), query/signal/update calls
(`temporal_gateway.handler_calls`) and worker deployments and pollers
(`temporal_gateway.deployments`).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import dataclasses
import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf import json_format
from opentelemetry import context as otel_context
from temporalio.api.enums.v1 import (
    ResetReapplyType,
)
from temporalio.api.workflowservice.v1 import (
    GetSystemInfoRequest,
    ListWorkflowExecutionsRequest,
    ResetWorkflowExecutionRequest,
)
from temporalio.client import (
    Client,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from estuary.contracts import catalogue as registry
from estuary.contracts import policies
from estuary.contracts.search_attributes import (
    run_attributes,
)
from temporal_gateway.breaker import CircuitBreaker
from temporal_gateway.cache import TTLCache
from temporal_gateway.client import TemporalUnreachable, connect
from temporal_gateway.deployments import WorkerReads
from temporal_gateway.errors import (
    AlreadyStarted,
    GatewayError,
    NoWorkerAnswered,
    QueryFailed,
    RunNotFound,
    TemporalTimedOut,
    TemporalUnavailable,
    UpdateRejected,
    map_rpc_error,
)
from temporal_gateway.handler_calls import HandlerCalls
from temporal_gateway.history_reads import HistoryReads, background_threads, decode_history_events
from temporal_gateway.metrics import record_temporal_call
from temporal_gateway.records import (
    CLOSED_FAILED_STATUSES,
    STATUS_NAMES,
    DeploymentInfo,
    DeploymentVersion,
    HistoryPage,
    Poller,
    RunInfo,
    RunPage,
    StartedRun,
    event_type_name,
    run_info,
    run_ui_url,
)

# The names callers import from here (errors and records live in their own modules).
__all__ = [
    "CLOSED_FAILED_STATUSES",
    "STATUS_NAMES",
    "AlreadyStarted",
    "DeploymentInfo",
    "DeploymentVersion",
    "GatewayError",
    "HistoryPage",
    "NoWorkerAnswered",
    "Poller",
    "QueryFailed",
    "RunInfo",
    "RunNotFound",
    "RunPage",
    "StartedRun",
    "TemporalGateway",
    "TemporalTimedOut",
    "TemporalUnavailable",
    "UpdateRejected",
    "decode_history_events",
    "event_type_name",
    "run_ui_url",
]

log = logging.getLogger("estuary.gateway")
T = TypeVar("T")

# --- the gateway --------------------------------------------------------------------


class TemporalGateway(HandlerCalls, HistoryReads, WorkerReads):
    """Sync facade over one asyncio Temporal client living on a background loop."""

    def __init__(self, config: Mapping[str, Any], *, identity: str | None = None) -> None:
        self.config = dict(config)
        self.identity = identity or f"estuary-console@{uuid.uuid4().hex[:8]}"
        self.timeout = float(self.config.get("TEMPORAL_RPC_TIMEOUT", 5))
        self.prefix = self.config.get("TEMPORAL_TASK_QUEUE_PREFIX", "")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Client | None = None
        self._lock = threading.Lock()
        self.probe_seconds = float(self.config.get("TEMPORAL_PROBE_SECONDS", 1))
        self.breaker = CircuitBreaker(
            self._probe,
            every=self.probe_seconds,
            address=str(self.config.get("TEMPORAL_ADDRESS")),
        )
        self._reads = TTLCache(max_entries=512)

    # loop and client ------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="temporal-gateway", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
                # The client's native runtime must be released before the interpreter
                # finalises, or its threads can abort the process on exit.
                atexit.register(self.close)
            return self._loop

    def _submit(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(
            _in_caller_trace(coro, otel_context.get_current()), loop
        )
        limit = (timeout or self.timeout) + float(self.config.get("TEMPORAL_CONNECT_TIMEOUT", 3))
        try:
            with self.breaker.waiting(future):
                return future.result(limit)
        except TimeoutError:
            future.cancel()
            raise TemporalTimedOut(
                f"Temporal did not answer within {limit:.0f} s "
                f"({self.config.get('TEMPORAL_ADDRESS')})"
            ) from None
        except concurrent.futures.CancelledError:
            # Released by the breaker opening while this call waited.
            raise TemporalUnavailable(
                self.unreachable_message() or "Temporal call cancelled"
            ) from None

    async def _get_client(self) -> Client:
        if self._client is None:
            try:
                self._client = await connect(self.config, identity=self.identity)
            except TemporalUnreachable as exc:
                raise TemporalUnavailable(str(exc)) from exc
        return self._client

    def run(self, fn: Any, timeout: float | None = None, *, rpc: str | None = None) -> Any:
        """Run `fn(client)` (a coroutine function) on the gateway loop, mapping errors.

        Each call is counted in the console metrics under `rpc` (default: the name of the
        method or view that defined `fn`) with outcome `ok`, the error's class name, or
        `circuit_open` when the call was not made because Temporal is known to be down.
        """
        name = rpc or _rpc_name(fn)
        down = self.unreachable_message()
        if down is not None:
            record_temporal_call(name, "circuit_open", 0.0)
            raise TemporalUnavailable(down)

        async def call() -> Any:
            client = await self._get_client()
            try:
                return await fn(client)
            except RPCError as exc:
                raise map_rpc_error(exc) from exc

        started = time.perf_counter()
        outcome = "ok"
        try:
            return self._submit(call(), timeout)
        except TemporalTimedOut as exc:
            outcome = type(exc).__name__
            # A timeout alone does not say whether the server or this call is the problem.
            if self.breaker.confirm(exc.message, self._ensure_loop(), self._probe_limit()):
                raise TemporalUnavailable(self.unreachable_message() or exc.message) from exc
            raise
        except TemporalUnavailable as exc:
            outcome = type(exc).__name__
            self.breaker.open(exc.message, self._loop)
            raise
        except BaseException as exc:
            outcome = type(exc).__name__
            raise
        finally:
            record_temporal_call(name, outcome, time.perf_counter() - started)

    def close(self) -> None:
        """Drop the client on its own loop, then stop the loop thread. Idempotent."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None:
            # Closed now: the exit hook would only keep this gateway alive until exit.
            atexit.unregister(self.close)

            async def release() -> None:
                await self.breaker.stop()
                self._client = None
                gc.collect()

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(release(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=5)
            if not loop.is_running():
                loop.close()

    def rpc_timeout(self) -> timedelta:
        return timedelta(seconds=self.timeout)

    # reads that may be a few seconds old ----------------------------------------------

    def _read_cached(self, key: tuple, fresh_for: float, read: Callable[[], T]) -> T:
        """`read()`'s answer shared by every request of this process for `fresh_for`
        seconds. In the second half of that time it is still returned at once and read
        again in the background, so a page many people look at never waits for Temporal
        and is never more than `fresh_for` seconds behind it. Failures are not kept."""
        return self._reads.get_or_compute(key, fresh_for, read, refresh=self._in_background)

    def cached_count_by_status(self, query: str, *, fresh_for: float) -> dict[str, int] | None:
        """`count_by_status(query, fresh_for=...)` if this process has it, else None (and
        no call): a page can then start the call beside its other work only on a miss."""
        counts = self._reads.peek(
            ("count_by_status", query),
            fresh_for,
            lambda: self.count_by_status(query),
            refresh=self._in_background,
        )
        return dict(counts) if counts is not None else None

    def _in_background(self, fn: Callable[[], Any]) -> None:
        def quietly() -> None:
            try:
                fn()
            except GatewayError as exc:  # the next request past the deadline reads it again
                log.debug("background refresh failed: %s", exc.message)

        background_threads.submit(quietly)

    # reachability (the circuit breaker, temporal_gateway/breaker.py) ---------------

    def unreachable_message(self) -> str | None:
        """Why Temporal is known to be unreachable, or None while it is not."""
        return self.breaker.message()

    async def _probe(self) -> bool:
        """Does the server answer a cheap call within a short deadline (connecting first
        if this process never did)?"""
        try:
            client = await self._get_client()
            await client.workflow_service.get_system_info(
                GetSystemInfoRequest(),
                timeout=timedelta(seconds=min(self.probe_seconds, self.timeout)),
            )
        except (GatewayError, RPCError, OSError, RuntimeError, TimeoutError):
            return False
        return True

    def _probe_limit(self) -> float:
        """How long a caller waits for a confirming probe (it may have to connect)."""
        return min(self.probe_seconds, self.timeout) + float(
            self.config.get("TEMPORAL_CONNECT_TIMEOUT", 3)
        )

    # health ---------------------------------------------------------------------------

    def check(self) -> None:
        """Raise TemporalUnavailable unless the server answers a cheap call."""

        async def call(client: Client) -> None:
            await client.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=self.rpc_timeout()
            )

        self.run(call)

    # starting -------------------------------------------------------------------------

    def task_queue(self, domain: str) -> str:
        """The task queue of `domain` under this gateway's prefix."""
        return registry.task_queue(domain, self.prefix)

    def business_id(self, workflow_name: str, payload: Any, now: datetime | None = None) -> str:
        wf = registry.workflow(workflow_name)
        return wf.spec.business_id(payload, now or datetime.now(UTC))

    def start(
        self,
        workflow_name: str,
        payload: Any,
        *,
        triggered_by: str,
        reason: str = "",
        workflow_id: str | None = None,
        memo: Mapping[str, Any] | None = None,
        id_reuse_policy: WorkflowIDReusePolicy | None = None,
        triggered_by_ref: str | None = None,
    ) -> StartedRun:
        """Start a registered workflow under its business id.

        `triggered_by` (who, e.g. a staff email) goes into the memo, which is encrypted;
        the TriggeredBy search attribute, which Temporal keeps in clear to index it, gets
        `triggered_by_ref` instead when given (the console passes `staff:<id>`).

        If a run with that id is running, nothing starts and that run is returned with
        `existing=True`. If the id is closed and its reuse policy forbids another run
        (a completed money workflow), AlreadyStarted is raised.
        """
        wf = registry.workflow(workflow_name)
        if not isinstance(payload, wf.spec.input_type):
            raise TypeError(f"{workflow_name} takes {wf.spec.input_type.__name__}")
        wid = workflow_id or wf.spec.business_id(payload, datetime.now(UTC))
        reuse = id_reuse_policy or (
            policies.MONEY_ID_REUSE if wf.spec.money else policies.DEFAULT_ID_REUSE
        )
        full_memo = {"triggered_by": triggered_by, "reason": reason, **(memo or {})}

        async def call(client: Client) -> StartedRun:
            try:
                handle = await client.start_workflow(
                    workflow_name,
                    payload,
                    id=wid,
                    task_queue=self.task_queue(wf.domain),
                    id_reuse_policy=reuse,
                    id_conflict_policy=policies.ID_CONFLICT,
                    memo=full_memo,
                    search_attributes=run_attributes(
                        wf.domain,
                        wf.spec.entity_type,
                        wf.spec.entity_id(payload),
                        triggered_by_ref or triggered_by,
                    ),
                    rpc_timeout=self.rpc_timeout(),
                )
                return StartedRun(wid, handle.result_run_id or "", workflow_name)
            except WorkflowAlreadyStartedError:
                return await self._already_started(client, wid, workflow_name, wf.spec.money)

        return self.run(call)

    async def _already_started(
        self, client: Client, wid: str, workflow_name: str, money: bool
    ) -> StartedRun:
        """The run already holding `wid`: returned with `existing=True` while it runs,
        otherwise AlreadyStarted (its reuse policy forbade another run)."""
        desc = await client.get_workflow_handle(wid).describe(rpc_timeout=self.rpc_timeout())
        status = STATUS_NAMES.get(desc.status, str(desc.status)) if desc.status else "?"
        if status == "Running":
            return StartedRun(wid, desc.run_id, workflow_name, existing=True)
        raise AlreadyStarted(
            f"{wid} already ran ({status}); a {'money ' if money else ''}"
            "workflow that completed cannot be started again under the same id",
            wid,
            desc.run_id,
            status,
        ) from None

    # reading --------------------------------------------------------------------------

    def list_runs(
        self,
        query: str = "",
        *,
        page_size: int = 25,
        next_page_token: bytes | None = None,
        fresh_for: float = 0,
    ) -> RunPage:
        """One page of runs matching a visibility query built by `dashboard.visibility`.

        `fresh_for` > 0: an answer up to that many seconds old will do (`_read_cached`)."""
        if fresh_for > 0:
            page = self._read_cached(
                ("list_runs", query, page_size, next_page_token),
                fresh_for,
                lambda: self.list_runs(query, page_size=page_size, next_page_token=next_page_token),
            )
            return RunPage(list(page.runs), page.next_page_token)  # the caller may sort it

        async def call(client: Client) -> RunPage:
            # The service call `Client.list_workflows` makes, with its retry and deadline,
            # read by `run_info` without the SDK's decoding (the one client interceptor,
            # tracing, does not look at lists).
            response = await client.workflow_service.list_workflow_executions(
                ListWorkflowExecutionsRequest(
                    namespace=client.namespace,
                    query=query,
                    page_size=page_size,
                    next_page_token=next_page_token or b"",
                ),
                retry=True,
                timeout=self.rpc_timeout(),
            )
            runs = [run_info(info) for info in response.executions]
            return RunPage(runs, response.next_page_token or None)

        return self.run(call)

    def count(self, query: str = "") -> int:
        async def call(client: Client) -> int:
            result = await client.count_workflows(query or None, rpc_timeout=self.rpc_timeout())
            return result.count

        return self.run(call)

    def count_by_status(self, query: str = "", *, fresh_for: float = 0) -> dict[str, int]:
        """Counts grouped by ExecutionStatus in one call (`fresh_for` as for `list_runs`)."""
        if fresh_for > 0:
            return dict(
                self._read_cached(
                    ("count_by_status", query), fresh_for, lambda: self.count_by_status(query)
                )
            )
        where = f"({query}) " if query else ""

        async def call(client: Client) -> dict[str, int]:
            result = await client.count_workflows(
                f"{where}GROUP BY ExecutionStatus", rpc_timeout=self.rpc_timeout()
            )
            out: dict[str, int] = {}
            for group in result.groups:
                value = group.group_values[0] if group.group_values else "?"
                out[str(value)] = group.count
            return out

        return self.run(call)

    def describe(self, workflow_id: str, run_id: str | None = None) -> RunInfo:
        """The run's state, memo and pending activities, in one RPC."""

        async def call(client: Client) -> RunInfo:
            desc = await client.get_workflow_handle(workflow_id, run_id=run_id).describe(
                rpc_timeout=self.rpc_timeout()
            )
            pending = list(desc.raw_description.pending_activities)
            # Last failures and heartbeat details are encrypted like every payload.
            await decode_history_events(client, pending)
            pending = [
                json_format.MessageToDict(p, preserving_proto_field_name=False) for p in pending
            ]
            info = run_info(desc.raw_description.workflow_execution_info)
            return dataclasses.replace(info, memo=await desc.memo(), pending_activities=pending)

        return self.run(call)

    def result(self, workflow_id: str, run_id: str | None = None, timeout: float = 30) -> Any:
        async def call(client: Client) -> Any:
            return await client.get_workflow_handle(workflow_id, run_id=run_id).result(
                follow_runs=True
            )

        return self.run(call, timeout=timeout)

    # acting ---------------------------------------------------------------------------

    def cancel(self, workflow_id: str, run_id: str | None = None) -> None:
        async def call(client: Client) -> None:
            await client.get_workflow_handle(workflow_id, run_id=run_id).cancel(
                rpc_timeout=self.rpc_timeout()
            )

        self.run(call)

    def terminate(self, workflow_id: str, reason: str, run_id: str | None = None) -> None:
        async def call(client: Client) -> None:
            await client.get_workflow_handle(workflow_id, run_id=run_id).terminate(
                reason=reason, rpc_timeout=self.rpc_timeout()
            )

        self.run(call)

    def reset(self, workflow_id: str, run_id: str, event_id: int, reason: str) -> str:
        """Reset a run to a WorkflowTaskCompleted event; returns the new run id."""

        async def call(client: Client) -> str:
            resp = await client.workflow_service.reset_workflow_execution(
                ResetWorkflowExecutionRequest(
                    namespace=client.namespace,
                    workflow_execution={"workflow_id": workflow_id, "run_id": run_id},
                    reason=reason,
                    workflow_task_finish_event_id=event_id,
                    request_id=str(uuid.uuid4()),
                    reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_SIGNAL,
                ),
                timeout=self.rpc_timeout(),
            )
            return resp.run_id

        return self.run(call)


# --- helpers ------------------------------------------------------------------------


async def _in_caller_trace(coro: Coroutine[Any, Any, T], caller: otel_context.Context) -> T:
    """Run `coro` on the gateway loop under the caller's OpenTelemetry context, so the
    tracing interceptor's spans join the console request's trace (the loop thread has its
    own context otherwise)."""
    token = otel_context.attach(caller)
    try:
        return await coro
    finally:
        otel_context.detach(token)


def _rpc_name(fn: Any) -> str:
    """`TemporalGateway.start.<locals>.call` -> `start`: the operation that made the call."""
    parts = getattr(fn, "__qualname__", "").split(".")
    if "<locals>" in parts:
        return parts[parts.index("<locals>") - 1]
    return parts[-1] or "unknown"
