"""Log lines carry request id and actor (console) or workflow id, run id, activity and
attempt (workers), as JSON objects with LOG_FORMAT=json or as a [..] suffix in text."""

from __future__ import annotations

import io
import logging
import os

import pytest

from config import Config, ProductionConfig, TestingConfig
from estuary.logs import EstuaryLogHandler
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
