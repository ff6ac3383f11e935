"""Log lines carry request id and actor (console) or workflow id, run id, activity and
attempt (workers), as JSON objects with LOG_FORMAT=json or as a [..] suffix in text."""

from __future__ import annotations

import io
import logging
import os
import threading
import time

import pytest

from config import Config, ProductionConfig, TestingConfig
from estuary.logs import EstuaryLogHandler, defer_records_of_this_thread
from estuary_ops import create_app
from tests.conftest import json_lines
from tests.console.read_support import login


def test_console_request_line_has_request_id_and_actor(app, log_output):
    client = login(app, "viewer", email="watcher@test.local")
    response = client.get("/notifications", headers={"X-Request-Id": "req-abcdef123"})
    assert response.status_code == 200
    records = [
        r
        for r in json_lines(log_output)
        if r["logger"] == "estuary.request" and "/notifications" in r["message"]
    ]
    assert len(records) == 1
    line = records[0]
    assert line["message"].startswith("GET /notifications -> 200 in ")
    assert (line["request_id"], line["actor"], line["level"]) == (
        "req-abcdef123",
        "watcher@test.local",
        "INFO",
    )
    assert line["workflow_id"] is None and "time" in line


def test_anonymous_request_is_logged_as_anonymous_with_a_generated_id(app, client, log_output):
    response = client.get("/healthz")
    line = next(r for r in json_lines(log_output) if r["logger"] == "estuary.request")
    assert line["actor"] == "anonymous"
    assert line["request_id"] == response.headers["X-Request-Id"] and len(line["request_id"]) == 32


def test_text_format_appends_the_context(app, caplog):
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, EstuaryLogHandler))
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    try:
        client = login(app, "viewer", email="reader@test.local")
        client.get("/notifications", headers={"X-Request-Id": "req-text-0001"})
    finally:
        handler.setStream(old)
    line = next(x for x in buffer.getvalue().splitlines() if "GET /notifications" in x)
    assert " INFO estuary.request: GET /notifications -> 200 in " in line
    assert line.endswith("[request_id=req-text-0001 actor=reader@test.local]")


def test_unknown_log_format_is_refused_by_name(database_url):
    with pytest.raises(RuntimeError, match="LOG_FORMAT must be one of text, json, got 'xml'"):
        create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=database_url, LOG_FORMAT="xml")


@pytest.mark.skipif("LOG_FORMAT" in os.environ, reason="LOG_FORMAT set in the environment")
def test_production_logs_json_by_default():
    assert (Config.LOG_FORMAT, ProductionConfig.LOG_FORMAT) == ("text", "json")


def test_a_path_with_line_breaks_cannot_forge_a_log_line(app, client):
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, EstuaryLogHandler))
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    try:
        client.get("/x%0A2026-12-01 00:00:00 INFO estuary.audit: admin approved everything")
    finally:
        handler.setStream(old)
    lines = [x for x in buffer.getvalue().splitlines() if "estuary" in x]
    assert len(lines) == 1
    assert "/x\\n2026-12-01 00:00:00 INFO estuary.audit" in lines[0]


def _in_marked_thread(fn) -> threading.Thread:
    """Run `fn` in a thread marked as a workflow-task thread (as the workers' are)."""

    def run() -> None:
        defer_records_of_this_thread()
        fn()

    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_workflow_thread_logs_without_waiting_for_the_handler_lock(app):
    """The lock is busy (another thread writing): a workflow-task thread's log call returns
    at once, holding nothing, and its line is written once the lock is free."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, EstuaryLogHandler))
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    returned = threading.Event()
    try:
        with handler.lock:
            t = _in_marked_thread(
                lambda: (
                    logging.getLogger("estuary.test").warning("from a workflow"),
                    returned.set(),
                )
            )
            assert returned.wait(5), "the workflow thread waited for the handler lock"
            t.join(5)
            assert "from a workflow" not in buffer.getvalue()
        # A line from any other thread first writes what workflow threads queued.
        logging.getLogger("estuary.test").warning("from elsewhere")
        lines = [x for x in buffer.getvalue().splitlines() if "estuary.test" in x]
    finally:
        handler.setStream(old)
    assert [x.split(": ", 1)[1] for x in lines] == ["from a workflow", "from elsewhere"]


def test_lines_queued_by_workflow_threads_are_written_without_other_logging(app):
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, EstuaryLogHandler))
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    try:
        _in_marked_thread(lambda: logging.getLogger("estuary.test").warning("alone")).join(5)
        deadline = time.monotonic() + 5
        while "alone" not in buffer.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        handler.setStream(old)
    assert "WARNING estuary.test: alone" in buffer.getvalue()
