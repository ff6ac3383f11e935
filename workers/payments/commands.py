"""`flask trigger-payment-workflows ...` (the guide's domain trigger command) and
`flask ledger check`.

Every argument is parsed (amounts as Decimal, then integer cents; ids as positive
integers) and checked against the database BEFORE anything reaches Temporal, so bad input
gets a clear message naming the argument and starts nothing, writes nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from estuary.contracts.commissions import (
    CommissionCalculationInput,
)
from estuary.contracts.inputs import InputError, parse_id, parse_input
from estuary.contracts.money import format_money
from estuary.contracts.payments import (
    PAYMENT_METHODS,
    BatchPayoutInput,
    PackagePayoutInput,
    PractitionerPayoutInput,
)
from estuary.db import db
from estuary.models import PackagePurchase, Practitioner
from estuary.services import ledger, payout_checks, payout_policy, payout_reconciliation
from estuary.services.command_audit import cli_actor
from estuary.services.errors import BusinessRuleError
from workers.temporal.command_support import start_and_report

trigger_payments = AppGroup(
    "trigger-payment-workflows", help="Start payments workflows (payouts, packages, commissions)."
)


def with_payout_policy(inp: Any, config: Any = None) -> Any:
    """Fill the approval thresholds and timeout the starting side owes the workflow
    (workflows cannot read config) from the app config; values already set are kept, but
    never looser than the config."""
    config = config or current_app.config
    filled = payout_policy.filled_from_config(inp, config)
    return dataclasses.replace(
        inp,
        approval_threshold_cents=filled.approval_threshold_cents,
        dual_approval_threshold_cents=filled.dual_approval_threshold_cents,
        approval_timeout_seconds=filled.approval_timeout_seconds,
    )


def _parse(input_type: type, values: dict[str, Any], labels: dict[str, str]) -> Any:
    """parse_input, with field names shown as the command's argument names."""
    try:
        return parse_input(input_type, {k: v for k, v in values.items() if v is not None})
    except InputError as exc:
        raise click.ClickException(
            "; ".join(f"{labels.get(k, k)}: {v}" for k, v in exc.errors.items())
        ) from None


def _practitioner(practitioner_id: int) -> Practitioner:
    practitioner = db.session.get(Practitioner, practitioner_id)
    if practitioner is None:
        raise click.ClickException(
            f"PRACTITIONER_ID: practitioner {practitioner_id} does not exist"
        )
    return practitioner


def _id_argument(text: str, label: str) -> int:
    try:
        return parse_id(text)
    except ValueError as exc:
        raise click.ClickException(f"{label}: {exc}") from None


# Each command is its whole body: click passes the options by name, so there is no second
# function repeating the parameter list.

_reason = click.option("--reason", default="", help="Why (kept in the run's memo)")
_wait = click.option("--wait", is_flag=True, help="Follow the run until it ends")
_method = click.option(
    "--method", default="bank_transfer", help=f"Payment method ({', '.join(PAYMENT_METHODS)})"
)


@trigger_payments.command("batch_payout")
@click.option("--min-amount", required=True, help="Minimum available balance, e.g. 10.00")
@click.option("--dry-run", is_flag=True, help="List what would be paid; move nothing")
@_method
@click.option("--practitioner-ids", default=None, help="Only these ids (comma separated)")
@_reason
@_wait
def batch_payout_command(
    min_amount: str,
    *,
    dry_run: bool,
    method: str,
    practitioner_ids: str | None,
    reason: str,
    wait: bool,
) -> None:
    """Pay every practitioner whose available balance is at least --min-amount."""
    inp = _parse(
        BatchPayoutInput,
        {
            "min_amount_cents": min_amount,
            "payment_method": method,
            "practitioner_ids": practitioner_ids,
            "dry_run": "yes" if dry_run else "no",
            "requested_by": cli_actor(),
        },
        {
            "min_amount_cents": "--min-amount",
            "payment_method": "--method",
            "practitioner_ids": "--practitioner-ids",
        },
    )
    if inp.practitioner_ids is not None:
        if not inp.practitioner_ids:
            raise click.ClickException("--practitioner-ids: give at least one id")
        known = set(
            db.session.scalars(
                db.select(Practitioner.id).where(Practitioner.id.in_(inp.practitioner_ids))
            )
        )
        unknown = sorted(set(inp.practitioner_ids) - known)
        if unknown:
            raise click.ClickException(
                "--practitioner-ids: unknown practitioner(s) " + ", ".join(map(str, unknown))
            )
    chunk = int(current_app.config.get("PAYOUT_BATCH_CHUNK_SIZE") or inp.chunk_size)
    inp = dataclasses.replace(inp, chunk_size=max(1, min(chunk, 500)))
    if not inp.dry_run:
        try:
            inp = with_payout_policy(inp)
        except BusinessRuleError as exc:
            raise click.ClickException(exc.message) from None
    start_and_report("BatchPractitionerPayoutWorkflow", inp, reason=reason, wait=wait)


@trigger_payments.command("package_payout")
@click.argument("purchase_id")
@_reason
@_wait
def package_payout_command(purchase_id: str, *, reason: str, wait: bool) -> None:
    """Start (or show) the progressive payout of one package purchase."""
    purchase_id = _id_argument(purchase_id, "PURCHASE_ID")
    if db.session.get(PackagePurchase, purchase_id) is None:
        raise click.ClickException(f"PURCHASE_ID: package purchase {purchase_id} does not exist")
    policy = str(current_app.config.get("PACKAGE_EXPIRY_POLICY") or "release_remaining")
    inp = _parse(
        PackagePayoutInput,
        {"package_purchase_id": str(purchase_id), "expiry_policy": policy},
        {"package_purchase_id": "PURCHASE_ID", "expiry_policy": "PACKAGE_EXPIRY_POLICY"},
    )
    start_and_report("ProgressivePackagePayoutWorkflow", inp, reason=reason, wait=wait)


@trigger_payments.command("payout")
@click.argument("practitioner_id")
@click.option("--amount", default=None, help="Amount, e.g. 12.50 (default: whole balance)")
@_method
@_reason
@_wait
def payout_command(
    practitioner_id: str, *, amount: str | None, method: str, reason: str, wait: bool
) -> None:
    """Pay one practitioner (approval needed at or above the threshold)."""
    practitioner_id = _id_argument(practitioner_id, "PRACTITIONER_ID")
    inp = _parse(
        PractitionerPayoutInput,
        {
            "practitioner_id": str(practitioner_id),
            "amount_cents": amount,
            "requested_by": cli_actor(),
            "reason": reason,
            "payment_method": method,
        },
        {
            "practitioner_id": "PRACTITIONER_ID",
            "amount_cents": "--amount",
            "reason": "--reason",
            "payment_method": "--method",
        },
    )
    practitioner = _practitioner(practitioner_id)
    # The checks of the workflow's first step and the console's confirmation, written once
    # (today's payout already taken is Temporal's answer here: "already ran (Completed)").
    currency = current_app.config.get("CURRENCY", "USD")
    wanted, available, problem = payout_checks.payable_amount(
        practitioner, inp.amount_cents, currency
    )
    if problem is not None and problem.code == "above_balance":
        raise click.ClickException(
            f"--amount: {format_money(wanted, currency)} is more than the available "
            f"balance of {format_money(available, currency)}"
        )
    if problem is not None:
        raise click.ClickException(f"PRACTITIONER_ID: {problem.message}")
    try:
        inp = with_payout_policy(inp)
    except BusinessRuleError as exc:
        raise click.ClickException(exc.message) from None
    start_and_report("PractitionerPayoutWorkflow", inp, reason=reason, wait=wait)


@trigger_payments.command("commissions")
@click.option("--from", "period_from", required=True, help="First day, e.g. 2026-11-01")
@click.option("--to", "period_to", required=True, help="Last day (inclusive), e.g. 2026-11-30")
@_reason
@_wait
def commissions_command(period_from: str, period_to: str, *, reason: str, wait: bool) -> None:
    """Record the commission of every completed booking in a period (once per booking)."""
    inp = _parse(
        CommissionCalculationInput,
        {"period_start": period_from, "period_end": period_to},
        {"period_start": "--from", "period_end": "--to"},
    )
    start_and_report("CommissionCalculationWorkflow", inp, reason=reason, wait=wait)


ledger_cli = AppGroup("ledger", help="The double-entry ledger.")


def ledger_check_lines() -> tuple[bool, list[str]]:
    result = ledger.check()
    lines = [
        f"transactions: {result.transactions}",
        f"entries: {result.entries}",
        f"sum of all entries: {result.total_cents} cents",
    ]
    if result.unbalanced_keys:
        lines.append("unbalanced transactions: " + ", ".join(result.unbalanced_keys))
    lines.append("balanced" if result.ok else "NOT BALANCED")
    # A balanced ledger can still be wrong about money that left: compare it with the
    # provider's transfers and the payouts (read only: nothing is settled or flagged).
    report = payout_reconciliation.reconcile(settle=False)
    db.session.rollback()
    lines.append(
        f"provider transfers: {report.transfers} ({report.provider_paid_cents} cents paid, "
        f"{report.provider_processing_cents} processing); external:payouts "
        f"{report.ledger_external_payouts_cents} cents; payouts checked: "
        f"{report.payouts_checked}"
    )
    for finding in report.findings:
        lines.append(f"{finding.kind}: {finding.message}")
    lines.append("payouts match the provider" if report.ok else "PAYOUTS DO NOT MATCH THE PROVIDER")
    return result.ok and report.ok, lines


@ledger_cli.command("check")
def ledger_check_command() -> None:
    """Check that every ledger transaction sums to zero, and that payouts, the provider's
    transfers and the external:payouts account agree (exit status 1 if not)."""
    ok, lines = ledger_check_lines()
    for line in lines:
        click.echo(line)
    if not ok:
        raise click.exceptions.Exit(1)


COMMANDS = [trigger_payments, ledger_cli]
