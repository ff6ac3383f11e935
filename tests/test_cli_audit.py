"""The command line leaves the same audit trail as the console: every state-changing
`flask` command writes one event (actor user@host, role and client `cli`, its arguments,
the workflow it reached, the outcome), read-only commands write none, and fields only
the server fills (who asked, thresholds) cannot be typed on the command line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from estuary.models import Payout
from estuary.services import audit
from temporal_gateway.access import set_gateway
from temporal_gateway.gateway import StartedRun, TemporalGateway
from tests.console.write_support import audit_events, count_rows, seed_practitioner
from workers.temporal.cli import cli_actor


class RecordingGateway:
    """Stands in for the Temporal gateway: records what would have been sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict]] = []

    def start(self, workflow_name: str, payload: Any, **kwargs: Any) -> StartedRun:
        self.calls.append((workflow_name, payload, kwargs))
        return StartedRun(f"{workflow_name}-id", "run-id", workflow_name)

    def signal(self, workflow_id: str, name: str, arg: Any = None) -> None:
        self.calls.append((name, arg, {"workflow_id": workflow_id}))

    def update(self, workflow_id: str, name: str, arg: Any = None) -> Any:
        self.calls.append((name, arg, {"workflow_id": workflow_id}))
        return {}

    def close(self) -> None:
        pass


@pytest.fixture
def recorder(app) -> RecordingGateway:
    gw = RecordingGateway()
    set_gateway(app, gw)  # type: ignore[arg-type]
    return gw


def _only_event(app) -> Any:
    events = audit_events(app)
    assert len(events) == 1, [(e.action, e.outcome) for e in events]
    return events[0]


def test_cli_actor_is_user_at_host():
    user, _, host = cli_actor().partition("@")
    assert user and host and ":" not in user


def test_a_payout_started_from_the_cli_is_audited_like_a_console_action(app, runner, recorder):
    pid = seed_practitioner(app, balance_cents=80_000)
    result = runner.invoke(
        args=["trigger-payment-workflows", "payout", str(pid), "--amount", "12.50",
              "--reason", "asked by phone"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (name, payload, kwargs), = recorder.calls  # fmt: skip
    assert name == "PractitionerPayoutWorkflow"
    assert payload.requested_by == cli_actor() and kwargs["triggered_by"] == cli_actor()
    event = _only_event(app)
    assert event.action == "cli.trigger-payment-workflows.payout"
    assert (event.actor, event.role, event.client_addr) == (cli_actor(), "cli", "cli")
    assert event.outcome == "success"
    assert event.target.startswith(f"workflow:payments-payout-{pid}-")
    assert event.reason == "asked by phone"
    params = json.loads(event.params_json)
    assert params["command"] == "trigger-payment-workflows payout"
    assert params["amount"] == "12.50" and params["practitioner_id"] == str(pid)
    with app.app_context():
        assert audit.verify(anchor=False).ok


def test_batch_runs_and_onboarding_starts_are_audited(app, runner, recorder):
    seed_practitioner(app, balance_cents=80_000)
    pid = seed_practitioner(app, status="pending")
    assert runner.invoke(
        args=["trigger-payment-workflows", "batch_payout", "--min-amount", "10.0", "--dry-run"]
    ).exit_code == 0  # fmt: skip
    assert runner.invoke(
        args=["trigger-practitioner-workflows", "onboarding", str(pid)]
    ).exit_code == 0  # fmt: skip
    events = audit_events(app)
    assert [(e.action, e.outcome) for e in events] == [
        ("cli.trigger-payment-workflows.batch_payout", "success"),
        ("cli.trigger-practitioner-workflows.onboarding", "success"),
    ]
    assert events[1].target == f"workflow:practitioners-onboarding-{pid}"
    assert all(e.actor == cli_actor() for e in events)


def test_a_refused_command_is_audited_as_invalid_and_sends_nothing(app, runner, recorder):
    pid = seed_practitioner(app, balance_cents=80_000)
    result = runner.invoke(
        args=[
            "trigger-payment-workflows",
            "payout",
            str(pid),
            "--amount",
            "\uff11\uff10",
        ]  # full-width 10
    )
    assert result.exit_code != 0 and "--amount" in result.output
    assert recorder.calls == [] and count_rows(app, Payout) == 0
    event = _only_event(app)
    assert event.outcome == "invalid" and "--amount" in event.detail


def test_a_temporal_failure_is_audited_as_an_error(app, runner):
    set_gateway(app, TemporalGateway({**app.config, "TEMPORAL_ADDRESS": "127.0.0.1:9",
                                      "TEMPORAL_CONNECT_TIMEOUT": 1}))  # fmt: skip
    result = runner.invoke(
        args=["trigger-workflows", "--domain", "payments", "--workflow",
              "LedgerReconciliationWorkflow"]
    )  # fmt: skip
    assert result.exit_code != 0
    event = _only_event(app)
    assert event.action == "cli.trigger-workflows" and event.outcome == "error"
    assert event.target.startswith("workflow:payments-ledger-check-")
    assert "not reachable" in event.detail


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--kwargs", "requested_by=someone@else"], "requested_by"),
        (["--kwargs", "approval_threshold_cents=1"], "approval_threshold_cents"),
        (["--kwargs", "dual_approval_threshold_cents=999999"], "dual_approval_threshold_cents"),
        (["--kwargs", "approval_timeout_seconds=60"], "approval_timeout_seconds"),
    ],
)
def test_server_filled_fields_are_refused_from_kwargs(app, runner, recorder, args, field):
    pid = seed_practitioner(app, balance_cents=80_000)
    result = runner.invoke(
        args=["trigger-workflows", "--domain", "payments", "--workflow",
              "PractitionerPayoutWorkflow", "--args", str(pid), *args]
    )  # fmt: skip
    assert result.exit_code != 0
    assert f"{field}: is filled in by the server" in result.output
    assert recorder.calls == [] and count_rows(app, Payout) == 0
    assert _only_event(app).outcome == "invalid"


def test_trigger_workflows_fills_who_asked(app, runner, recorder):
    pid = seed_practitioner(app, balance_cents=80_000)
    result = runner.invoke(
        args=["trigger-workflows", "--domain", "payments", "--workflow",
              "PractitionerPayoutWorkflow", "--args", str(pid)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert recorder.calls[0][1].requested_by == cli_actor()


def test_the_actor_of_a_signal_cannot_be_typed(app, runner, recorder):
    pid = seed_practitioner(app)
    result = runner.invoke(
        args=["trigger-practitioner-workflows", "signal", str(pid), "profile_completed",
              "--field", "actor=someone@else"]
    )  # fmt: skip
    assert result.exit_code != 0 and "actor: is filled in by the server" in result.output
    assert recorder.calls == []


def test_users_create_is_audited_without_the_password(app, runner):
    result = runner.invoke(
        args=["users", "create", "--email", "new@test.local", "--role", "viewer",
              "--password", "a long secret password"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    event = _only_event(app)
    assert event.action == "cli.users.create" and event.outcome == "success"
    assert event.target.startswith("staff:")
    assert "a long secret password" not in event.params_json
    assert json.loads(event.params_json)["password"] == "[redacted]"


def test_read_only_commands_write_no_audit_event(app, runner):
    for args in (["list-workflows"], ["ledger", "check"], ["audit", "verify"]):
        assert runner.invoke(args=args).exit_code == 0, args
    assert audit_events(app) == []
