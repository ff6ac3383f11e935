"""WORKER_METRICS_ADDRESS: off when empty; a malformed or taken address stops
`flask start-worker` with a message naming the setting, before it connects or writes."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import func, select

from estuary.db import db
from estuary.models import WorkerHeartbeat
from temporal_gateway.telemetry import TelemetrySettingError, parse_metrics_address, worker_runtime


def test_metrics_are_off_without_an_address():
    assert worker_runtime({"WORKER_METRICS_ADDRESS": ""}) is None


@pytest.mark.parametrize(
    "good", ["127.0.0.1:9464", "0.0.0.0:0", "worker-1.internal:9000", "[::1]:9464"]
)
def test_good_addresses(good):
    assert parse_metrics_address(good) == good


@pytest.mark.parametrize("bad", ["9464", "127.0.0.1", "127.0.0.1:99999", "host:port", "a b:1"])
def test_bad_addresses_name_the_setting(bad):
    with pytest.raises(TelemetrySettingError, match="WORKER_METRICS_ADDRESS must look like"):
        parse_metrics_address(bad)


def _heartbeats(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(WorkerHeartbeat.id)))


def test_start_worker_with_a_malformed_address_says_so(app, runner):
    app.config["WORKER_METRICS_ADDRESS"] = "localhost"
    result = runner.invoke(args=["start-worker", "--domains", "payments"])
    assert result.exit_code != 0
    assert "WORKER_METRICS_ADDRESS must look like host:port, got 'localhost'" in result.output
    assert _heartbeats(app) == 0


def test_start_worker_with_a_taken_port_says_so(app, runner):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app.config["WORKER_METRICS_ADDRESS"] = f"127.0.0.1:{port}"
        result = runner.invoke(args=["start-worker", "--domains", "payments"])
    assert result.exit_code != 0
    assert f"WORKER_METRICS_ADDRESS=127.0.0.1:{port}" in result.output
    assert "in use" in result.output
    assert _heartbeats(app) == 0
