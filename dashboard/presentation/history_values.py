"""The values a run's timeline shows, read from Temporal's protobuf history events:
decoded payloads as display text, failures with their cause chain, event times,
durations and the staff member a signal or update names.

Pure code over protobuf messages: no HTTP, no client calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Longest payload text kept per value (the page folds anything long).
MAX_PAYLOAD_CHARS = 20_000


def decode_payload(payload: Any) -> Any:
    """A Temporal payload as a Python value (JSON payloads) or a short description."""
    encoding = bytes(payload.metadata.get("encoding", b"")).decode("ascii", "replace")
    data = bytes(payload.data)
    if encoding == "binary/null":
        return None
    if encoding == "json/plain":
        try:
            return json.loads(data)
        except ValueError:
            return data[:MAX_PAYLOAD_CHARS].decode("utf-8", "replace")
    return f"<{len(data)} bytes, encoding {encoding or 'unknown'}>"


def decode_payloads(payloads: Any) -> list[Any]:
    return [decode_payload(p) for p in payloads.payloads] if payloads is not None else []


def payload_text(values: list[Any], *, compact: bool = False) -> str:
    """JSON for display (one value unwrapped), clipped to MAX_PAYLOAD_CHARS.

    `compact` keeps it on one line (signal and update arguments in the timeline)."""
    if not values:
        return ""
    value = values[0] if len(values) == 1 else values
    if compact:
        text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    else:
        text = json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    if len(text) > MAX_PAYLOAD_CHARS:
        text = text[:MAX_PAYLOAD_CHARS] + f"\n… ({len(text) - MAX_PAYLOAD_CHARS} more characters)"
    return text


@dataclass(frozen=True)
class FailureInfo:
    message: str  # the chain of messages, outermost first
    type: str  # the innermost application error type, or the failure kind
    stack_trace: str = ""
    non_retryable: bool = False


def failure_info(failure: Any) -> FailureInfo | None:
    """A Temporal Failure (with its cause chain) as text fit to show, escaped by Jinja."""
    if failure is None or not failure.ByteSize():
        return None
    messages: list[str] = []
    kind = ""
    stack = ""
    non_retryable = False
    current = failure
    depth = 0
    while current is not None and current.ByteSize() and depth < 20:
        if current.message and current.message not in messages:
            messages.append(current.message)
        which = current.WhichOneof("failure_info") or ""
        if which == "application_failure_info":
            kind = current.application_failure_info.type or "ApplicationError"
            non_retryable = current.application_failure_info.non_retryable
        elif which and not kind:
            kind = which.removesuffix("_failure_info")
        if current.stack_trace:
            stack = current.stack_trace
        current = current.cause if current.HasField("cause") else None
        depth += 1
    return FailureInfo(": ".join(messages) or "(no message)", kind, stack[:5000], non_retryable)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_time(event: Any) -> datetime:
    """When the history event happened (UTC)."""
    # Arithmetic on the Timestamp's fields: a third of the cost of Timestamp.ToDatetime.
    ts = event.event_time
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def duration_of(proto_duration: Any) -> timedelta | None:
    """A protobuf Duration as a timedelta; None when unset."""
    if proto_duration is None or not proto_duration.ByteSize():
        return None
    return proto_duration.ToTimedelta()


def actor_in(args: list[Any]) -> str | None:
    """The staff member named by a signal's or update's first argument (`actor`), if any."""
    first = args[0] if args else None
    if isinstance(first, dict):
        actor = first.get("actor")
        if isinstance(actor, str) and actor:
            return actor
    return None
