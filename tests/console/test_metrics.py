"""The console's /metrics: who may scrape, request latency by endpoint, gateway calls by
RPC and outcome, and the business gauges read from the database at scrape time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from estuary.db import db
from estuary.models import OpsFlag, Payout, Practitioner
from estuary.models.base import utcnow
from estuary.services.gauges import RECONCILIATION_FLAG_KINDS
from temporal_gateway.gateway import TemporalUnavailable
from tests.conftest import gateway_for
from tests.console.read_support import unreachable_gateway

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = {"REMOTE_ADDR": "192.0.2.10"}  # a documentation address; never contacted


def sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in the scrape"
    return float(match.group(1))


def seed_money(app) -> None:
    with app.app_context():
        p = Practitioner(id=4242, name="Metrics Person", email="m@test.local", status="active")
        db.session.add(p)
        db.session.flush()
        for i, (status, cents) in enumerate(
            [("pending_approval", 60_000), ("pending_approval", 75_000), ("paid", 10_000)]
        ):
            db.session.add(
                Payout(
                    practitioner_id=p.id,
                    amount_cents=cents,
                    status=status,
                    idempotency_key=f"metrics-{i}",
                    workflow_id=f"payments-payout-4242-{i}",
                    requested_by="ops@test.local",
                )
            )
        for i, resolved in enumerate([None, None, utcnow()]):
            db.session.add(
                OpsFlag(
                    key=f"recon-{i}",
                    kind=RECONCILIATION_FLAG_KINDS[0],
                    entity_type="payout",
                    entity_id=i,
                    message="ledger and provider disagree",
                    resolved_at=resolved,
                )
            )
        db.session.add(
            OpsFlag(
                key="other",
                kind="unresolved_session",
                entity_type="booking",
                entity_id=1,
                message="not a reconciliation flag",
            )
        )
        db.session.commit()


def test_loopback_scrape_has_business_gauges_from_the_database(app, client):
    seed_money(app)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert sample(text, "estuary_payouts_awaiting_approval") == 2
    assert sample(text, "estuary_payouts_awaiting_approval_cents") == 135_000
    assert sample(text, "estuary_reconciliation_mismatches") == 2
    assert sample(text, "estuary_database_gauges_up") == 1


def test_scrape_answers_without_the_database_gauges_when_the_database_fails(
    app, client, monkeypatch
):
    from sqlalchemy.exc import OperationalError

    from estuary.services import gauges

    def locked():
        raise OperationalError("SELECT count(*) FROM payout", {}, Exception("database is locked"))

    monkeypatch.setattr(gauges, "payouts_awaiting_approval", locked)
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert sample(text, "estuary_database_gauges_up") == 0
    assert "estuary_payouts_awaiting_approval" not in text
    assert "estuary_console_request_duration_seconds" in text


def test_scrape_from_another_address_needs_the_token(app, client):
    response = client.get("/metrics", environ_base=OUTSIDE)
    assert response.status_code == 403
    assert "loopback" in response.get_json()["error"]
    assert "estuary_" not in response.get_data(as_text=True)

    app.config["METRICS_TOKEN"] = "s3cret-metrics-token"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        refused = client.get("/metrics", headers=headers, environ_base=OUTSIDE)
        assert refused.status_code == 403
        assert "METRICS_TOKEN" in refused.get_json()["error"]
    # With a token configured, loopback alone is not enough either.
    assert client.get("/metrics").status_code == 403
    allowed = client.get(
        "/metrics",
        headers={"Authorization": "Bearer s3cret-metrics-token"},
        environ_base=OUTSIDE,
    )
    assert allowed.status_code == 200
    assert "estuary_payouts_awaiting_approval" in allowed.get_data(as_text=True)


def _requests(endpoint: str, status: str) -> float:
    labels = {"endpoint": endpoint, "method": "GET", "status": status}
    return REGISTRY.get_sample_value("estuary_console_request_duration_seconds_count", labels) or 0


def test_request_latency_by_endpoint(app, client):
    before_health = _requests("health.healthz", "200")
    before_missing = _requests("unmatched", "404")
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no/such/page")
    assert _requests("health.healthz", "200") == before_health + 2
    assert _requests("unmatched", "404") == before_missing + 1
    text = client.get("/metrics").get_data(as_text=True)
    assert 'estuary_console_request_duration_seconds_bucket{endpoint="health.healthz"' in text


def _calls(rpc: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "estuary_console_temporal_calls_total", {"rpc": rpc, "outcome": outcome}
        )
        or 0
    )


async def test_temporal_calls_by_rpc_and_outcome(app, time_env):
    before_ok = _calls("check", "ok")
    gw = gateway_for(app, time_env)
    gw.check()
    gw.check()
    assert _calls("check", "ok") == before_ok + 2

    before_down = _calls("list_runs", "TemporalUnavailable")
    down = unreachable_gateway(app)
    with pytest.raises(TemporalUnavailable):
        down.list_runs()
    assert _calls("list_runs", "TemporalUnavailable") == before_down + 1


_PROCESS = """
import sys
from config import TestingConfig
from estuary_ops import create_app

app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=sys.argv[1])
client = app.test_client()
if sys.argv[2] == "serve":
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
else:
    sys.stdout.write(client.get("/metrics").get_data(as_text=True))
"""


def test_multiprocess_mode_adds_up_every_process(app, database_url, tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR (gunicorn workers), a scrape answered by one process
    reports the requests every process served."""
    seed_money(app)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"}
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-c", _PROCESS, database_url, "serve"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=60,
        )
    scrape = subprocess.run(
        [sys.executable, "-c", _PROCESS, database_url, "scrape"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert (
        sample(
            scrape,
            'estuary_console_request_duration_seconds_count{endpoint="health.healthz",'
            'method="GET",status="200"}',
        )
        == 6
    )
    assert sample(scrape, "estuary_payouts_awaiting_approval") == 2
