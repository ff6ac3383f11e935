"""The gateway's errors: what a console page or a command is told when Temporal says no,
says nothing, or cannot be reached. Each carries a `message` fit to show a person."""

from __future__ import annotations

from temporalio.service import RPCError, RPCStatusCode


class GatewayError(Exception):
    """Base of everything the gateway raises; `message` is fit to show a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TemporalUnavailable(GatewayError):
    """Temporal cannot be reached (or did not answer in time); pages show the banner."""


class TemporalTimedOut(TemporalUnavailable):
    """A call got no answer within its deadline while the server still answers a probe:
    the server is up, this call was slow (a query nobody's worker picks up, a heavy
    visibility count). Not a reason to open the circuit breaker."""


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


def map_rpc_error(exc: RPCError) -> GatewayError:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return RunNotFound(exc.message or "not found")
    if exc.status == RPCStatusCode.UNAVAILABLE:
        return TemporalUnavailable(f"Temporal is unavailable: {exc.message}")
    # A call's own deadline: the server's DEADLINE_EXCEEDED, or the client's CANCELLED
    # "Timeout expired" (what a hung server gives).
    if exc.status == RPCStatusCode.DEADLINE_EXCEEDED or (
        exc.status == RPCStatusCode.CANCELLED and "timeout" in (exc.message or "").lower()
    ):
        return TemporalTimedOut(f"Temporal did not answer in time: {exc.message}")
    if exc.status == RPCStatusCode.INVALID_ARGUMENT:
        return GatewayError(f"Temporal refused the request: {exc.message}")
    return GatewayError(f"Temporal error ({exc.status.name}): {exc.message}")
