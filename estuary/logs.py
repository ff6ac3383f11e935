"""Log configuration for the console and the workers: text or JSON lines, each record
carrying who and what it is about.

Every record gets the fields of `CONTEXT_FIELDS`, empty when they do not apply:
`request_id` and `actor` inside a console request; `workflow_id`, `run_id`,
`workflow_type`, `activity` and `attempt` inside a workflow or an activity (taken from the
Temporal SDK's logger extras, or from the running activity for any logger used in an
activity thread). `LOG_FORMAT=json` writes one JSON object per line (python-json-logger);
`text` appends the non-empty fields to the classic line.

Records logged in a thread marked with `defer_records_of_this_thread` (the workers'
workflow-task threads) are not written by that thread: it queues them without taking any
lock, and another thread writes them (`EstuaryLogHandler`). The Temporal SDK interrupts a
workflow thread that does not yield within 2 s by raising an exception into it, at whatever
line it has reached; raised just after the thread took the handler's lock (it lands there
when the thread was waiting for the lock), the lock was never released and every later log
call of the worker blocked (docs/observability.md, "Logs from workflow threads").
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from flask import g, has_request_context
from pythonjsonlogger.json import JsonFormatter
from temporalio import activity

LOG_FORMATS = ("text", "json")
CONTEXT_FIELDS = (
    "request_id",
    "actor",
    "workflow_id",
    "run_id",
    "workflow_type",
    "activity",
    "attempt",
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"
JSON_FIELDS = ("asctime", "levelname", "name", "message", *CONTEXT_FIELDS)
# Extras the SDK attaches; their content is flattened into CONTEXT_FIELDS instead.
_SDK_EXTRAS = ("temporal_workflow", "temporal_activity", "__temporal_error_identifier")


def _request_fields() -> dict[str, Any]:
    if not has_request_context():
        return {}
    # Only a user flask-login has already loaded: loading one here would query the
    # database from inside a log call.
    user = g.get("_login_user")
    actor = getattr(user, "email", None) if getattr(user, "is_authenticated", False) else None
    return {"request_id": g.get("request_id"), "actor": actor or "anonymous"}


def _temporal_fields(record: logging.LogRecord) -> dict[str, Any]:
    wf: Mapping[str, Any] | None = getattr(record, "temporal_workflow", None)
    act: Mapping[str, Any] | None = getattr(record, "temporal_activity", None)
    if act is None and activity.in_activity():
        info = activity.info()
        act = {
            "workflow_id": info.workflow_id,
            "workflow_run_id": info.workflow_run_id,
            "workflow_type": info.workflow_type,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
        }
    if act:
        return {
            "workflow_id": act.get("workflow_id"),
            "run_id": act.get("workflow_run_id"),
            "workflow_type": act.get("workflow_type"),
            "activity": act.get("activity_type"),
            "attempt": act.get("attempt"),
        }
    if wf:
        return {
            "workflow_id": wf.get("workflow_id"),
            "run_id": wf.get("run_id"),
            "workflow_type": wf.get("workflow_type"),
            "attempt": wf.get("attempt"),
        }
    return {}


class LogContextFilter(logging.Filter):
    """Adds CONTEXT_FIELDS (and `context`, their text form) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = {name: None for name in CONTEXT_FIELDS}
        fields.update(_request_fields())
        fields.update(_temporal_fields(record))
        for name, value in fields.items():
            setattr(record, name, value)
        shown = " ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, ""))
        record.context = f" [{shown}]" if shown else ""
        return True


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(
            list(JSON_FIELDS),
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            reserved_attrs=[
                *logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys(),
                "message",
                "asctime",
                "context",
                *_SDK_EXTRAS,
            ],
            json_default=str,
        )
    return logging.Formatter(TEXT_FORMAT)


_thread_marks = threading.local()
# How often the delivery thread writes what marked threads queued, when no other thread
# logs in between (which writes it at once).
DELIVERY_INTERVAL_S = 0.05
_handlers: weakref.WeakSet[EstuaryLogHandler] = weakref.WeakSet()
_delivery_started = threading.Lock()
_delivery: threading.Thread | None = None


def defer_records_of_this_thread() -> None:
    """Mark the calling thread as one the Temporal SDK may interrupt at any line (a
    workflow-task thread: the workers' executor calls this as its initializer, before the
    thread runs any activation): records it logs through `EstuaryLogHandler` are queued
    and written by another thread. Starts the delivery thread once per process."""
    global _delivery
    _thread_marks.defer = True
    with _delivery_started:
        if _delivery is None:
            _delivery = threading.Thread(
                target=_deliver_forever, name="estuary-log-delivery", daemon=True
            )
            _delivery.start()


def records_are_deferred_here() -> bool:
    return getattr(_thread_marks, "defer", False)


def _deliver_forever() -> None:
    while True:
        time.sleep(DELIVERY_INTERVAL_S)
        for handler in list(_handlers):
            handler.deliver_deferred()


class EstuaryLogHandler(logging.StreamHandler):
    """The one handler this module installs on the root logger (found again by type).

    In a thread marked by `defer_records_of_this_thread` it takes no lock: after its
    filters (which read the thread's context) it puts the record on a `SimpleQueue`, whose
    `put` is one C call. Records are taken off that queue only under the handler's lock,
    so they are written in order: by the next other thread that logs, before its own
    record, or within `DELIVERY_INTERVAL_S` by the delivery thread. An exception raised
    into a marked thread anywhere in `handle` therefore leaves no lock held; at worst
    that one record is lost.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._deferred: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        _handlers.add(self)

    def handle(self, record: logging.LogRecord) -> Any:
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):  # Python 3.12+: a filter may replace it
            record = rv
        if not rv:
            return rv
        if records_are_deferred_here():
            self._deferred.put(record)
            return rv
        with self.lock:
            self._emit_deferred()
            self.emit(record)
        return rv

    def deliver_deferred(self) -> None:
        """Write what marked threads queued (not to be called from a marked thread)."""
        if not self._deferred.empty():
            with self.lock:
                self._emit_deferred()

    def _emit_deferred(self) -> None:
        while True:
            try:
                record = self._deferred.get_nowait()
            except queue.Empty:
                return
            self.emit(record)

    def close(self) -> None:
        self.deliver_deferred()
        super().close()


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Install (or re-configure) the root handler; other handlers (pytest's) are kept."""
    if log_format not in LOG_FORMATS:
        choices = ", ".join(LOG_FORMATS)
        raise RuntimeError(f"LOG_FORMAT must be one of {choices}, got {log_format!r}")
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, EstuaryLogHandler)), None)
    if handler is None:
        handler = EstuaryLogHandler(sys.stderr)
        handler.addFilter(LogContextFilter())
        root.addHandler(handler)
    handler.setFormatter(_formatter(log_format))
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The ids are fields (and the text line's [..] suffix); the SDK's "({info dict})"
    # message suffix would only repeat them.
    from temporalio import workflow

    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
