"""`flask trigger-payment-workflows ...` and `flask ledger check`, with bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from estuary.contracts.payments import (
    BatchPayoutResult,
    CommissionCalculationResult,
    PractitionerPayoutResult,
)
from estuary.db import db
from estuary.models import LedgerEntry, LedgerTransaction, Payout
from tests.conftest import gateway_for, running_workers
from tests.payments.helpers import wait_for_stage


class StartSpy:
    """Wraps the gateway's start to prove bad input never reaches Temporal."""

    def __init__(self, gateway) -> None:
        self.calls: list[tuple] = []
        self._start = gateway.start
        gateway.start = self

    def __call__(self, *args, **kwargs):
        self.calls.append(args)
        return self._start(*args, **kwargs)


def today() -> str:
    return datetime.now(UTC).strftime("%Y%m%d")


async def test_payout_command_starts_once_and_never_twice(app, runner, money, time_env):
    pid = money.practitioner(balance=5_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        gateway_for(app, time_env, prefix)
        out = runner.invoke(
            args=["trigger-payment-workflows", "payout", str(pid), "--amount", "12.50"]
        )
        assert out.exit_code == 0, out.output
        workflow_id = f"payments-payout-{pid}-{today()}"
        assert f"Started PractitionerPayoutWorkflow: {workflow_id}" in out.output
        result = await time_env.client.get_workflow_handle(
            workflow_id, result_type=PractitionerPayoutResult
        ).result()
        again = runner.invoke(
            args=["trigger-payment-workflows", "payout", str(pid), "--amount", "1.00"]
        )
    assert (result.status, result.amount_cents) == ("paid", 1_250)
    assert result.approvals == []
    assert again.exit_code == 1 and "already ran (Completed)" in again.output
    assert money.available(pid) == 3_750 and money.transfers() == 1 and money.ledger_ok()


async def test_batch_dry_run_and_commission_and_package_commands(app, runner, money, time_env):
    rich = money.practitioner(balance=2_000)
    money.practitioner(balance=999)
    purchase = money.purchase(
        rich, sessions=2, total=3_000, net=2_500, now=await time_env.get_current_time()
    )
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        gateway_for(app, time_env, prefix)
        dry = runner.invoke(
            args=["trigger-payment-workflows", "batch_payout", "--min-amount", "10.0", "--dry-run"]
        )
        assert dry.exit_code == 0, dry.output
        dry_id = dry.output.split(": ")[1].split(" ")[0]
        assert dry_id.startswith("payments-batch-payout-dry-run-")
        plan = await time_env.client.get_workflow_handle(
            dry_id, result_type=BatchPayoutResult
        ).result()
        commissions = runner.invoke(
            args=[
                "trigger-payment-workflows",
                "commissions",
                "--from",
                "2026-01-01",
                "--to",
                "2026-01-31",
            ]
        )
        assert commissions.exit_code == 0, commissions.output
        assert "payments-commissions-2026-01-01-2026-01-31" in commissions.output
        period = await time_env.client.get_workflow_handle(
            "payments-commissions-2026-01-01-2026-01-31",
            result_type=CommissionCalculationResult,
        ).result()
        package = runner.invoke(args=["trigger-payment-workflows", "package_payout", str(purchase)])
        assert package.exit_code == 0, package.output
        assert f"payments-package-payout-{purchase}" in package.output
        second = runner.invoke(args=["trigger-payment-workflows", "package_payout", str(purchase)])
        assert "Already running" in second.output
        progress = await wait_for_stage(
            time_env.client.get_workflow_handle(f"payments-package-payout-{purchase}"),
            "waiting for sessions",
        )
        await time_env.client.get_workflow_handle(f"payments-package-payout-{purchase}").terminate(
            "test over"
        )
    assert plan.dry_run and plan.would_pay_count == 1 and plan.would_pay_cents == 2_000
    assert [line.practitioner_id for line in plan.lines] == [rich]
    assert money.count(Payout) == 0 and money.available(rich) == 2_000
    assert period.bookings_examined == 0
    assert progress["sessions_total"] == 2


BAD_COMMANDS = [
    (["payout", "0"], "PRACTITIONER_ID"),
    (["payout", "-3"], "PRACTITIONER_ID"),
    (["payout", "abc"], "PRACTITIONER_ID"),
    (["payout", "1.5"], "PRACTITIONER_ID"),
    (["payout", "1e309"], "PRACTITIONER_ID"),
    (["payout", "{pid}", "--amount", "0"], "--amount: must be greater than zero"),
    (["payout", "{pid}", "--amount", "-1"], "--amount"),
    (["payout", "{pid}", "--amount", "NaN"], "--amount: 'NaN' is not an amount"),
    (["payout", "{pid}", "--amount", "1e309"], "--amount: '1e309' is not an amount"),
    (["payout", "{pid}", "--amount", "10.005"], "--amount: 10.005 has more than two decimal"),
    (["payout", "{pid}", "--amount", "ten"], "--amount"),
    (["payout", "{pid}", "--amount", "50.01"], "more than the available balance"),
    (["payout", "{pid}", "--method", "bitcoin"], "--method"),
    (["payout", "999999"], "practitioner 999999 does not exist"),
    (["payout", "{nodest}"], "has no payout destination"),
    (["payout", "{empty}"], "has nothing available"),
    (["batch_payout", "--min-amount", "0"], "--min-amount: must be greater than zero"),
    (["batch_payout", "--min-amount", "-5"], "--min-amount"),
    (["batch_payout", "--min-amount", "NaN"], "--min-amount"),
    (["batch_payout", "--min-amount", "1e309"], "--min-amount"),
    (["batch_payout", "--min-amount", "10.005"], "--min-amount"),
    (["batch_payout", "--min-amount", "10", "--method", "cash"], "--method"),
    (["batch_payout", "--min-amount", "10", "--practitioner-ids", "1,x"], "--practitioner-ids"),
    (
        ["batch_payout", "--min-amount", "10", "--practitioner-ids", "{pid},999999"],
        "unknown practitioner(s) 999999",
    ),
    (["package_payout", "0"], "PURCHASE_ID"),
    (["package_payout", "-1"], "PURCHASE_ID"),
    (["package_payout", "NaN"], "PURCHASE_ID"),
    (["package_payout", "1e309"], "PURCHASE_ID"),
    (["package_payout", "10.005"], "PURCHASE_ID"),
    (["package_payout", "999999"], "package purchase 999999 does not exist"),
    (["commissions", "--from", "2026-13-01", "--to", "2026-12-31"], "--from"),
    (["commissions", "--from", "NaN", "--to", "2026-12-31"], "--from"),
    (["commissions", "--from", "2026-12-31", "--to", "2026-12-01"], "--to: must not be before"),
    (["commissions", "--from", "2026-01-01", "--to", "1e309"], "--to"),
]


@pytest.mark.parametrize(("args", "message"), BAD_COMMANDS)
async def test_bad_command_input_starts_nothing_and_writes_nothing(
    app, runner, money, time_env, args, message
):
    ids = {
        "pid": money.practitioner(balance=5_000),
        "nodest": money.practitioner(balance=5_000, destination=None),
        "empty": money.practitioner(balance=0),
    }
    spy = StartSpy(gateway_for(app, time_env))
    before = money.ledger_transactions()

    out = runner.invoke(args=["trigger-payment-workflows", *[a.format(**ids) for a in args]])

    assert out.exit_code != 0
    assert message in out.output
    assert spy.calls == []
    assert money.count(Payout) == 0 and money.ledger_transactions() == before


def test_ledger_check_command(app, runner, money):
    money.practitioner(balance=1_000)
    ok = runner.invoke(args=["ledger", "check"])
    assert ok.exit_code == 0 and "balanced" in ok.output and "transactions: 1" in ok.output
    with app.app_context():
        txn = LedgerTransaction(key="broken", kind="test")
        txn.entries = [LedgerEntry(account="a", amount_cents=5)]
        db.session.add(txn)
        db.session.commit()
    broken = runner.invoke(args=["ledger", "check"])
    assert broken.exit_code == 1
    assert "NOT BALANCED" in broken.output and "broken" in broken.output
