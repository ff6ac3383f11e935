"""Calling a run's own handlers through the gateway: queries, signals and updates, with
the errors staff need to tell apart (a refused update, a failed query, no worker
answering in time).

`HandlerCalls` is a part of `TemporalGateway` (`temporal_gateway.gateway`): its methods
use the gateway's `run`, so they share its loop, circuit breaker, errors and metrics.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)

from temporal_gateway.errors import NoWorkerAnswered, QueryFailed, TemporalTimedOut, UpdateRejected
from temporal_gateway.gateway_part import GatewayPart


class HandlerCalls(GatewayPart):
    """The query, signal and update methods of `TemporalGateway`."""

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

        try:
            return self.run(call, timeout=timeout_seconds)
        except TemporalTimedOut as exc:
            # The server answered the probe: it is the workflow's worker that did not.
            raise NoWorkerAnswered(
                f"No worker answered the {name!r} query in time: check that the domain's "
                "worker is running (Workers page)."
            ) from exc

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
