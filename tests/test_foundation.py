"""Foundation: config, health endpoints, commands and their bad input, migrations."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import config
from estuary.models import StaffUser
from estuary_ops import create_app
from temporal_gateway.access import gateway
from temporal_gateway.gateway import TemporalGateway, TemporalUnavailable, run_ui_url
from tests.conftest import gateway_for, running_workers
from workers.temporal import registry
from workers.temporal.cli import cli_actor

ROOT = Path(__file__).resolve().parent.parent


def test_production_refuses_to_start_without_secret(monkeypatch):
    monkeypatch.setenv("ESTUARY_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
        create_app()
    # the other production refusals: tests/test_config_security.py


def test_unknown_environment_is_refused(monkeypatch):
    monkeypatch.setenv("ESTUARY_ENV", "staging")
    with pytest.raises(RuntimeError, match="ESTUARY_ENV"):
        config.config_for_environment()


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_says_why_when_temporal_is_down(app, client):
    # Nothing listens on port 9: the answer must come quickly and name the problem.
    app.extensions["temporal"] = TemporalGateway(
        {**app.config, "TEMPORAL_ADDRESS": "127.0.0.1:9", "TEMPORAL_CONNECT_TIMEOUT": 2}
    )
    started = time.monotonic()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "not reachable" in response.json["problems"]["temporal"]
    assert "database" not in response.json["problems"]
    assert time.monotonic() - started < 8


async def test_readyz_ok_with_temporal(app, local_env):
    gateway_for(app, local_env)
    import asyncio

    response = await asyncio.to_thread(app.test_client().get, "/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "temporal": "ok"}


def test_registry_discovers_every_domain():
    domains = registry.domains()
    assert "payments" in domains
    for d in domains.values():
        for wf in d.workflows.values():
            assert wf.spec.domain == d.name
            assert wf.spec.description
        assert d.activities, f"{d.name} has no activities"


def test_list_workflows_command(runner):
    result = runner.invoke(args=["list-workflows"])
    assert result.exit_code == 0, result.output
    assert "payments (task queue payments)" in result.output
    assert "LedgerReconciliationWorkflow" in result.output
    result = runner.invoke(args=["list-workflows", "--domain", "nope"])
    assert result.exit_code != 0
    assert "unknown domain 'nope'" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--domain", "nope", "--workflow", "X"], "unknown domain 'nope'"),
        (["--domain", "payments", "--workflow", "Nope"], "unknown workflow 'Nope'"),
        (
            [
                "--domain",
                "payments",
                "--workflow",
                "LedgerReconciliationWorkflow",
                "--args",
                "a",
                "--args",
                "b",
            ],
            "expected at most 1",
        ),
        (
            [
                "--domain",
                "payments",
                "--workflow",
                "LedgerReconciliationWorkflow",
                "--kwargs",
                "novalue",
            ],
            "is not key=value",
        ),
        (
            [
                "--domain",
                "payments",
                "--workflow",
                "LedgerReconciliationWorkflow",
                "--kwargs",
                "bogus=1",
            ],
            "unknown field",
        ),
        (
            [
                "--domain",
                "payments",
                "--workflow",
                "LedgerReconciliationWorkflow",
                "--kwargs",
                "requested_by=" + "x" * 300,
            ],
            "requested_by: is filled in by the server",
        ),
    ],
)
def test_trigger_workflows_bad_input(app, runner, args, message):
    # The gateway points nowhere: a bad input must fail before any Temporal call.
    app.extensions["temporal"] = TemporalGateway({**app.config, "TEMPORAL_ADDRESS": "127.0.0.1:9"})
    result = runner.invoke(args=["trigger-workflows", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "not reachable" not in result.output


@pytest.mark.parametrize(
    ("workflow", "domain"),
    [("PractitionerOnboardingWorkflow", "practitioners"), ("BookingLifecycleWorkflow", "bookings")],
)
def test_trigger_workflows_unknown_entity_starts_nothing(app, runner, workflow, domain):
    app.extensions["temporal"] = TemporalGateway({**app.config, "TEMPORAL_ADDRESS": "127.0.0.1:9"})
    result = runner.invoke(
        args=["trigger-workflows", "--domain", domain, "--workflow", workflow, "--args", "999"]
    )
    assert result.exit_code != 0
    assert "with id 999" in result.output
    assert "not reachable" not in result.output


def test_trigger_workflows_when_temporal_is_down(app, runner):
    app.extensions["temporal"] = TemporalGateway(
        {**app.config, "TEMPORAL_ADDRESS": "127.0.0.1:9", "TEMPORAL_CONNECT_TIMEOUT": 2}
    )
    started = time.monotonic()
    result = runner.invoke(
        args=[
            "trigger-workflows",
            "--domain",
            "payments",
            "--workflow",
            "LedgerReconciliationWorkflow",
        ]
    )
    assert result.exit_code != 0
    assert "not reachable" in result.output
    assert time.monotonic() - started < 8


def test_start_worker_unknown_domain(runner):
    result = runner.invoke(args=["start-worker", "--domains", "nope"])
    assert result.exit_code != 0
    assert "unknown domain 'nope'" in result.output


async def test_trigger_runs_the_proof_workflow_end_to_end(app, local_env):
    """CLI -> gateway -> Temporal -> worker -> activity (app context, DB) -> result."""
    import asyncio

    async with running_workers(local_env.client, app, ["payments"]) as prefix:
        gateway_for(app, local_env, prefix)
        runner = app.test_cli_runner()
        result = await asyncio.to_thread(
            runner.invoke,
            args=[
                "trigger-workflows",
                "--domain",
                "payments",
                "--workflow",
                "LedgerReconciliationWorkflow",
                "--wait",
                "--reason",
                "smoke",
            ],
        )
    assert result.exit_code == 0, result.output
    assert "Started LedgerReconciliationWorkflow: payments-ledger-check-" in result.output
    assert "/namespaces/default/workflows/payments-ledger-check-" in result.output
    assert '"balanced": true' in result.output
    wid = result.output.split("Started LedgerReconciliationWorkflow: ")[1].split()[0]
    info = await asyncio.to_thread(gateway(app).describe, wid)
    assert info.status == "Completed"
    assert info.domain == "payments" and info.triggered_by == cli_actor()
    assert info.memo["reason"] == "smoke"


def test_users_create_command(app, runner):
    result = runner.invoke(
        args=["users", "create", "--email", "New@Example.com", "--role", "approver"]
    )
    assert result.exit_code == 0, result.output
    assert "Created new@example.com (approver)" in result.output
    bad = runner.invoke(args=["users", "create", "--email", "new@example.com", "--role", "admin"])
    assert bad.exit_code != 0 and "already has an account" in bad.output
    bad = runner.invoke(args=["users", "create", "--email", "x@y.z", "--role", "root"])
    assert bad.exit_code != 0
    bad = runner.invoke(
        args=["users", "create", "--email", "s@y.z", "--role", "viewer", "--password", "short"]
    )
    assert bad.exit_code != 0 and "at least 12" in bad.output
    with app.app_context():
        from estuary.db import db

        assert db.session.query(StaffUser).count() == 1


def test_seed_demo_is_idempotent(app, runner):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "admin@estuary.local / " in first.output
    second = runner.invoke(args=["seed-demo"])
    assert "already present" in second.output
    with app.app_context():
        from estuary.services import ledger

        assert ledger.check().ok


def test_run_ui_url_encodes_ids():
    url = run_ui_url(
        {"TEMPORAL_UI_URL": "http://ui:8233/", "TEMPORAL_NAMESPACE": "ns/x"}, "a b/c", "r?1"
    )
    assert url == "http://ui:8233/namespaces/ns%2Fx/workflows/a%20b%2Fc/r%3F1/history"


def test_gateway_unreachable_is_typed(app):
    gw = TemporalGateway(
        {**app.config, "TEMPORAL_ADDRESS": "127.0.0.1:9", "TEMPORAL_CONNECT_TIMEOUT": 1}
    )
    with pytest.raises(TemporalUnavailable):
        gw.count()
    gw.close()


def test_migrations_match_the_models(tmp_path):
    """`flask db upgrade` on an empty database leaves nothing for autogenerate to add."""
    env = {
        "PATH": str(Path(sys.executable).parent),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
        "ESTUARY_VAR_DIR": str(tmp_path),
        "FLASK_APP": "estuary_ops",
        "HOME": str(tmp_path),
    }
    flask = str(Path(sys.executable).parent / "flask")
    up = subprocess.run([flask, "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    check = subprocess.run(
        [flask, "db", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
