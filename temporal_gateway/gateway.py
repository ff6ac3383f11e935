"""The dashboard's synchronous gateway to Temporal.

Flask views and `flask` commands are synchronous; the Temporal client is asyncio. Each
process owns one `TemporalGateway`: one event loop on a daemon thread, one `Client`
created on that loop, and sync methods that submit coroutines to it and wait with a
timeout. Temporal errors come back as the typed `GatewayError`s below, which views and
commands turn into clear messages.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import gc
import logging
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf import json_format
from opentelemetry import context as otel_context
from temporalio.api.enums.v1 import (
    EventType,
    ResetReapplyType,
    TaskQueueType,
    VersionDrainageStatus,
    WorkerDeploymentVersionStatus,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeWorkerDeploymentRequest,
    GetSystemInfoRequest,
    GetWorkflowExecutionHistoryRequest,
    GetWorkflowExecutionHistoryReverseRequest,
    ResetWorkflowExecutionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from estuary.contracts import catalogue as registry
from estuary.contracts import policies
from estuary.contracts.search_attributes import (
    ENTITY_ID,
    ENTITY_TYPE,
    ESTUARY_DOMAIN,
    TRIGGERED_BY,
    run_attributes,
)
from temporal_gateway.client import TemporalUnreachable, connect
from temporal_gateway.codec import decode_in_place
from temporal_gateway.metrics import record_temporal_call

log = logging.getLogger("estuary.gateway")
T = TypeVar("T")

STATUS_NAMES = {
    WorkflowExecutionStatus.RUNNING: "Running",
    WorkflowExecutionStatus.COMPLETED: "Completed",
    WorkflowExecutionStatus.FAILED: "Failed",
    WorkflowExecutionStatus.CANCELED: "Canceled",
    WorkflowExecutionStatus.TERMINATED: "Terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "ContinuedAsNew",
    WorkflowExecutionStatus.TIMED_OUT: "TimedOut",
}
CLOSED_FAILED_STATUSES = ("Failed", "TimedOut", "Canceled", "Terminated")


# --- errors -------------------------------------------------------------------------


class GatewayError(Exception):
    """Base of everything the gateway raises; `message` is fit to show a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TemporalUnavailable(GatewayError):
    pass


class RunNotFound(GatewayError):
    pass


class AlreadyStarted(GatewayError):
    """A run with this business id is running, or completed and may not run again."""

    def __init__(self, message: str, workflow_id: str, run_id: str | None, status: str) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.status = status


class UpdateRejected(GatewayError):
    """The workflow's validator (or handler) refused the update; `message` says why."""


class QueryFailed(GatewayError):
    pass


class NoWorkerAnswered(GatewayError):
    """An update or query got no answer in time: the domain's worker is down or busy.

    Not a failure: the server keeps an update and applies it when a worker returns, so
    the outcome is unknown ("pending delivery")."""


# --- results ------------------------------------------------------------------------


@dataclass(frozen=True)
class StartedRun:
    workflow_id: str
    run_id: str
    workflow_type: str
    # True when a run with this business id was already running and no new one started.
    existing: bool = False


@dataclass(frozen=True)
class RunInfo:
    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    task_queue: str
    start_time: datetime | None
    close_time: datetime | None
    execution_time: datetime | None
    history_length: int
    domain: str | None
    entity_type: str | None
    entity_id: str | None
    triggered_by: str | None
    memo: dict[str, Any] = field(default_factory=dict)
    parent_workflow_id: str | None = None
    # Filled by `describe` only (the same RPC): the run's pending activities as JSON dicts.
    pending_activities: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_running(self) -> bool:
        return self.status == "Running"


@dataclass(frozen=True)
class RunPage:
    runs: list[RunInfo]
    next_page_token: bytes | None


@dataclass(frozen=True)
class HistoryPage:
    events: list[dict[str, Any]]
    next_page_token: bytes | None


@dataclass(frozen=True)
class Poller:
    identity: str
    last_access_time: datetime | None
    kind: str  # "workflow" or "activity"


@dataclass(frozen=True)
class DeploymentVersion:
    build_id: str
    status: str  # CURRENT, RAMPING, DRAINING, DRAINED, INACTIVE
    drainage: str  # DRAINING / DRAINED once no longer current ("" before)


@dataclass(frozen=True)
class DeploymentInfo:
    name: str
    current_build_id: str | None
    ramping_build_id: str | None
    ramping_percentage: float
    versions: list[DeploymentVersion]


# --- the gateway --------------------------------------------------------------------


class TemporalGateway:
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
            return future.result(limit)
        except TimeoutError:
            future.cancel()
            raise TemporalUnavailable(
                f"Temporal did not answer within {limit:.0f} s "
                f"({self.config.get('TEMPORAL_ADDRESS')})"
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
        method or view that defined `fn`) with outcome `ok` or the error's class name.
        """

        async def call() -> Any:
            client = await self._get_client()
            try:
                return await fn(client)
            except RPCError as exc:
                raise _map_rpc_error(exc) from exc

        started = time.perf_counter()
        outcome = "ok"
        try:
            return self._submit(call(), timeout)
        except BaseException as exc:
            outcome = type(exc).__name__
            raise
        finally:
            record_temporal_call(rpc or _rpc_name(fn), outcome, time.perf_counter() - started)

    def close(self) -> None:
        """Drop the client on its own loop, then stop the loop thread. Idempotent."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None:

            async def release() -> None:
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
        return f"{self.prefix}{domain}"

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
                desc = await client.get_workflow_handle(wid).describe(
                    rpc_timeout=self.rpc_timeout()
                )
                status = STATUS_NAMES.get(desc.status, str(desc.status)) if desc.status else "?"
                if status == "Running":
                    return StartedRun(wid, desc.run_id, workflow_name, existing=True)
                raise AlreadyStarted(
                    f"{wid} already ran ({status}); a {'money ' if wf.spec.money else ''}"
                    "workflow that completed cannot be started again under the same id",
                    wid,
                    desc.run_id,
                    status,
                ) from None

        return self.run(call)

    # reading --------------------------------------------------------------------------

    def list_runs(
        self, query: str = "", *, page_size: int = 25, next_page_token: bytes | None = None
    ) -> RunPage:
        """One page of runs matching a visibility query built by `dashboard.visibility`."""

        async def call(client: Client) -> RunPage:
            it = client.list_workflows(
                query or None,
                page_size=page_size,
                next_page_token=next_page_token,
                rpc_timeout=self.rpc_timeout(),
            )
            await it.fetch_next_page()
            runs = [_run_info(e) for e in (it.current_page or [])]
            return RunPage(runs, it.next_page_token)

        return self.run(call)

    def count(self, query: str = "") -> int:
        async def call(client: Client) -> int:
            result = await client.count_workflows(query or None, rpc_timeout=self.rpc_timeout())
            return result.count

        return self.run(call)

    def count_by_status(self, query: str = "") -> dict[str, int]:
        """Counts grouped by ExecutionStatus in one call."""
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
            info = _run_info(desc)
            return dataclasses.replace(info, memo=await desc.memo(), pending_activities=pending)

        return self.run(call)

    def history_events(
        self,
        workflow_id: str,
        run_id: str,
        *,
        next_page_token: bytes = b"",
        page_size: int = 1000,
    ) -> tuple[list[Any], bytes]:
        """One page of history events (protobuf, payloads decoded) and the next page's token."""

        async def call(client: Client) -> tuple[list[Any], bytes]:
            response = await client.workflow_service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(
                    namespace=client.namespace,
                    execution={"workflow_id": workflow_id, "run_id": run_id},
                    maximum_page_size=page_size,
                    next_page_token=next_page_token,
                ),
                timeout=self.rpc_timeout(),
            )
            events = list(response.history.events)
            await decode_history_events(client, events)
            return events, response.next_page_token

        return self.run(call)

    def newest_history_events(
        self, workflow_id: str, run_id: str, *, after_event_id: int, expected: int
    ) -> list[Any] | None:
        """The events after `after_event_id`, oldest first, read newest first from the end.

        A run's live view knows from `describe` how many events it has not seen (`expected`),
        so one reverse page usually holds them all. None when the server has no reverse
        history (the time-skipping test server): the caller reads forward instead.
        """

        async def call(client: Client) -> list[Any] | None:
            found: list[Any] = []
            token = b""
            while True:
                try:
                    response = await client.workflow_service.get_workflow_execution_history_reverse(
                        GetWorkflowExecutionHistoryReverseRequest(
                            namespace=client.namespace,
                            execution={"workflow_id": workflow_id, "run_id": run_id},
                            maximum_page_size=max(1, min(expected, 1000)),
                            next_page_token=token,
                        ),
                        timeout=self.rpc_timeout(),
                    )
                except RPCError as exc:
                    if exc.status == RPCStatusCode.UNIMPLEMENTED:
                        return None
                    raise
                batch = list(response.history.events)
                found.extend(e for e in batch if e.event_id > after_event_id)
                token = response.next_page_token
                if not token or not batch or batch[-1].event_id <= after_event_id + 1:
                    break
            found.sort(key=lambda e: e.event_id)
            await decode_history_events(client, found)
            return found

        return self.run(call)

    def history_page(
        self,
        workflow_id: str,
        run_id: str | None = None,
        *,
        page_size: int = 1000,
        next_page_token: bytes | None = None,
    ) -> HistoryPage:
        """One page of raw history events as JSON-ready dicts."""

        async def call(client: Client) -> HistoryPage:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            it = handle.fetch_history_events(
                page_size=page_size,
                next_page_token=next_page_token,
                rpc_timeout=self.rpc_timeout(),
            )
            await it.fetch_next_page()
            page = list(it.current_page or [])
            await decode_history_events(client, page)
            events = [json_format.MessageToDict(e) for e in page]
            return HistoryPage(events, it.next_page_token)

        return self.run(call, timeout=self.timeout * 3)

    def query(
        self,
        workflow_id: str,
        name: str,
        run_id: str | None = None,
        *,
        timeout_seconds: float | None = None,
    ) -> Any:
        """A query's answer; `timeout_seconds` shortens the wait (e.g. for a page's panel)."""
        rpc_timeout = timedelta(seconds=timeout_seconds) if timeout_seconds else None

        async def call(client: Client) -> Any:
            try:
                return await client.get_workflow_handle(workflow_id, run_id=run_id).query(
                    name, rpc_timeout=rpc_timeout or self.rpc_timeout()
                )
            except WorkflowQueryFailedError as exc:
                raise QueryFailed(f"query {name!r} failed: {exc}") from exc

        return self.run(call, timeout=timeout_seconds)

    def result(self, workflow_id: str, run_id: str | None = None, timeout: float = 30) -> Any:
        async def call(client: Client) -> Any:
            return await client.get_workflow_handle(workflow_id, run_id=run_id).result(
                follow_runs=True
            )

        return self.run(call, timeout=timeout)

    # acting ---------------------------------------------------------------------------

    def signal(self, workflow_id: str, name: str, arg: Any = None) -> None:
        async def call(client: Client) -> None:
            handle = client.get_workflow_handle(workflow_id)
            if arg is None:
                await handle.signal(name, rpc_timeout=self.rpc_timeout())
            else:
                await handle.signal(name, arg, rpc_timeout=self.rpc_timeout())

        self.run(call)

    def update(
        self, workflow_id: str, name: str, arg: Any = None, *, update_id: str | None = None
    ) -> Any:
        """Send an update and wait for its result; a refusal raises UpdateRejected.

        `update_id` names the update (Temporal deduplicates by it): the caller audits it,
        so an update that could not be confirmed (NoWorkerAnswered) can be matched with
        the outcome the workflow records later."""

        async def call(client: Client) -> Any:
            handle = client.get_workflow_handle(workflow_id)
            try:
                if arg is None:
                    return await handle.execute_update(
                        name, id=update_id, rpc_timeout=self.rpc_timeout()
                    )
                return await handle.execute_update(
                    name, arg, id=update_id, rpc_timeout=self.rpc_timeout()
                )
            except WorkflowUpdateFailedError as exc:
                cause = exc.cause
                message = getattr(cause, "message", None) or str(cause or exc)
                raise UpdateRejected(message) from exc
            except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
                raise NoWorkerAnswered(
                    f"No worker answered {name!r} within {self.timeout:.0f} s: check that the "
                    "domain's worker is running (Workers page). The request may still be "
                    "applied when a worker picks it up, so check the run before sending it again."
                ) from exc

        # Leave room past the update's own RPC timeout, so "nobody answered" (pending
        # delivery) is reported as such and not as "Temporal is unreachable".
        return self.run(call, timeout=self.timeout * 2)

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

    # worker deployments -------------------------------------------------------------

    def describe_deployment(self, deployment_name: str) -> DeploymentInfo:
        """A Worker Deployment's current/ramping version and every version's status."""

        async def call(client: Client) -> DeploymentInfo:
            resp = await client.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(
                    namespace=client.namespace, deployment_name=deployment_name
                ),
                timeout=self.rpc_timeout(),
            )
            info = resp.worker_deployment_info
            routing = info.routing_config
            versions = [
                DeploymentVersion(
                    build_id=v.deployment_version.build_id,
                    status=_enum_suffix(
                        WorkerDeploymentVersionStatus,
                        v.status,
                        "WORKER_DEPLOYMENT_VERSION_STATUS_",
                    ),
                    drainage=_enum_suffix(
                        VersionDrainageStatus, v.drainage_status, "VERSION_DRAINAGE_STATUS_"
                    ),
                )
                for v in info.version_summaries
            ]
            return DeploymentInfo(
                name=info.name,
                current_build_id=routing.current_deployment_version.build_id or None,
                ramping_build_id=routing.ramping_deployment_version.build_id or None,
                ramping_percentage=routing.ramping_version_percentage,
                versions=versions,
            )

        try:
            return self.run(call)
        except RunNotFound:
            raise RunNotFound(
                f"no worker deployment {deployment_name!r}: it appears when its first "
                "versioned worker polls"
            ) from None

    def set_current_version(self, deployment_name: str, build_id: str) -> None:
        """Make `build_id` the deployment's current version: new runs (and auto-upgrade
        runs at their next task) go to its workers. Refused while none of them polls."""

        async def call(client: Client) -> None:
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace,
                    deployment_name=deployment_name,
                    build_id=build_id,
                    identity=self.identity,
                ),
                timeout=self.rpc_timeout(),
            )

        self.run(call)

    def task_queue_pollers(self, task_queue: str) -> list[Poller]:
        """Workers polling a task queue (workflow and activity pollers)."""

        async def call(client: Client) -> list[Poller]:
            out: list[Poller] = []
            for kind, tq_type in (
                ("workflow", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
                ("activity", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
            ):
                resp = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=client.namespace,
                        task_queue=TaskQueue(name=task_queue),
                        task_queue_type=tq_type,
                    ),
                    timeout=self.rpc_timeout(),
                )
                for p in resp.pollers:
                    last = (
                        p.last_access_time.ToDatetime(UTC)
                        if p.HasField("last_access_time")
                        else None
                    )
                    out.append(Poller(p.identity, last, kind))
            return out

        return self.run(call)


# --- helpers ------------------------------------------------------------------------


async def decode_history_events(client: Client, events: list[Any]) -> None:
    """Decrypt the payloads of raw history events (or other raw messages, such as pending
    activities) in place with the client's codec.

    Raw messages are what the console shows (timeline, event JSON, downloads, pending
    activities); the SDK only decodes values it converts itself, so without this staff
    would see ciphertext.
    """
    await decode_in_place(events, client.data_converter.payload_codec)


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


def _map_rpc_error(exc: RPCError) -> GatewayError:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return RunNotFound(exc.message or "not found")
    if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return TemporalUnavailable(f"Temporal is unavailable: {exc.message}")
    if exc.status == RPCStatusCode.INVALID_ARGUMENT:
        return GatewayError(f"Temporal refused the request: {exc.message}")
    return GatewayError(f"Temporal error ({exc.status.name}): {exc.message}")


def _enum_suffix(enum: Any, value: int, prefix: str) -> str:
    """`WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED` -> `DRAINED`; unspecified -> ``."""
    name = enum.Name(value) if value in enum.values() else ""
    return "" if name.endswith("UNSPECIFIED") else name.removeprefix(prefix)


def _run_info(e: Any) -> RunInfo:
    sa = e.typed_search_attributes
    parent = getattr(e, "parent_id", None)
    return RunInfo(
        workflow_id=e.id,
        run_id=e.run_id,
        workflow_type=e.workflow_type,
        status=STATUS_NAMES.get(e.status, "Unknown") if e.status else "Unknown",
        task_queue=e.task_queue,
        start_time=e.start_time,
        close_time=e.close_time,
        execution_time=e.execution_time,
        history_length=e.history_length,
        domain=sa.get(ESTUARY_DOMAIN),
        entity_type=sa.get(ENTITY_TYPE),
        entity_id=sa.get(ENTITY_ID),
        triggered_by=sa.get(TRIGGERED_BY),
        parent_workflow_id=parent,
    )


def event_type_name(event: Mapping[str, Any]) -> str:
    """`EVENT_TYPE_ACTIVITY_TASK_SCHEDULED` -> `ActivityTaskScheduled` for display."""
    raw = event.get("eventType", "")
    if isinstance(raw, int):
        raw = EventType.Name(raw)
    return "".join(p.capitalize() for p in raw.removeprefix("EVENT_TYPE_").split("_"))


def failure_message(exc: BaseException) -> str:
    """The innermost application message of a Temporal failure chain."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, ApplicationError):
        return exc.message
    return str(exc)


def run_ui_url(config: Mapping[str, Any], workflow_id: str, run_id: str | None = None) -> str:
    """The same run in the Temporal Web UI."""
    from urllib.parse import quote

    base = str(config.get("TEMPORAL_UI_URL", "")).rstrip("/")
    ns = quote(str(config.get("TEMPORAL_NAMESPACE", "default")), safe="")
    url = f"{base}/namespaces/{ns}/workflows/{quote(workflow_id, safe='')}"
    if run_id:
        url += f"/{quote(run_id, safe='')}/history"
    return url
