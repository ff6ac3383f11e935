"""What a payout is checked against before it starts, written once.

The payout workflow's first step (`payouts.create_payout`, its `create_payout` activity)
and the console's confirmation page (`dashboard.start_forms`) both call `payable_amount`;
the page and the batch's candidate selection also call `used_up` and
`day_used_up_problem`, and the
page gathers everything in `check_payout`, so a confirmation says what the run would do and
why it would fail or be refused, before anything starts:

- a payout destination (without one the transfer cannot be sent);
- an amount that can be paid now (the whole available balance when none is given,
  never more than it, never nothing);
- today's payout for the practitioner: the workflow id is one per practitioner per day
  (`payments.payout_workflow_id`), and a money workflow id whose run completed cannot run
  again (`policies.MONEY_ID_REUSE`, ALLOW_DUPLICATE_FAILED_ONLY: only a failed, cancelled,
  terminated or timed-out run lets the id start again). A payout under way today is no
  problem: starting again finds that run and starts nothing new;
- how many approvals it needs (`approval_rules.approvals_needed` with the configured
  policy, `payout_policy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from sqlalchemy import select

from estuary.contracts import approval_rules
from estuary.contracts.money import format_money
from estuary.contracts.payments import payout_workflow_id
from estuary.db import db
from estuary.models import Payout, Practitioner
from estuary.services import ledger, payout_policy
from estuary.services.errors import BusinessRuleError

# A payout row in one of these under today's id means today's id is used up: its run
# completed (paid, rejected, expired) or left money whose fate the provider has not told
# yet (reconciling). Under way: its run is still going, a new start shows that run.
DAY_USED_UP = ("paid", "rejected", "expired", "reconciling")
UNDER_WAY = ("pending_approval", "approved", "processing")
# Temporal statuses of a run under today's id that forbid another run under it.
RUN_STATUSES_USING_UP_THE_DAY = ("Completed", "ContinuedAsNew")

_DAY_WORDS = {
    "paid": "was already paid today",
    "rejected": "had a payout rejected today",
    "expired": "had a payout expire unapproved today",
    "reconciling": "has a payout from today whose outcome the provider has not confirmed yet",
}


@dataclass(frozen=True)
class Problem:
    """Why a payout cannot go ahead: `code` for tests and templates, `field` the input it is
    about, `message` in words (the workflow's failure and the page's sentence)."""

    code: str
    field: str
    message: str


class Payee(Protocol):
    """What a payout's checks read of its practitioner: a `Practitioner`, or a row of its
    table with these columns."""

    id: int
    name: str
    payout_destination: str | None


def who(practitioner: Payee) -> str:
    return f"{practitioner.name} (practitioner {practitioner.id})"


def payable_amount(
    practitioner: Payee, amount_cents: int | None, currency: str
) -> tuple[int, int, Problem | None]:
    """(amount to pay, available balance, problem or None) for a payout of `amount_cents`
    (None: the whole available balance) to `practitioner` now."""
    available = ledger.balance(ledger.available_account(practitioner.id))
    amount = available if amount_cents is None else amount_cents
    if not practitioner.payout_destination:
        return (
            amount,
            available,
            Problem(
                "no_destination",
                "practitioner_id",
                f"{who(practitioner)} has no payout destination",
            ),
        )
    if not isinstance(amount, int) or amount <= 0:
        return (
            amount,
            available,
            Problem(
                "nothing_available",
                "amount_cents",
                f"{who(practitioner)} has nothing available to pay out",
            ),
        )
    if amount > available:
        return (
            amount,
            available,
            Problem(
                "above_balance",
                "amount_cents",
                f"{format_money(amount, currency)} is more than practitioner "
                f"{practitioner.id}'s available balance of {format_money(available, currency)}",
            ),
        )
    return amount, available, None


def todays_payout(workflow_id: str) -> Payout | None:
    """The latest payout made under `workflow_id` (today's id of a practitioner), if any."""
    return db.session.scalar(
        select(Payout).where(Payout.workflow_id == workflow_id).order_by(Payout.id.desc()).limit(1)
    )


def used_up(workflow_ids: list[str]) -> dict[str, Payout]:
    """The payouts that use up each of these ids (one query for a batch's page)."""
    if not workflow_ids:
        return {}
    rows = db.session.scalars(
        select(Payout)
        .where(Payout.workflow_id.in_(workflow_ids), Payout.status.in_(DAY_USED_UP))
        .order_by(Payout.id)
    )
    return {p.workflow_id: p for p in rows}


def day_used_up_problem(
    practitioner: Practitioner, payout: Payout | None, run_status: str | None = None
) -> Problem | None:
    """Why no new payout can start today for `practitioner`: `payout` the one that used up
    today's id (`used_up`), `run_status` the status of the run holding the id when the
    caller could ask Temporal."""
    if payout is not None and payout.status in DAY_USED_UP:
        return Problem(
            "day_used_up",
            "practitioner_id",
            f"{who(practitioner)} {_DAY_WORDS[payout.status]} (payout {payout.id}, "
            f"{format_money(payout.amount_cents, payout.currency)}); the next payout for them "
            "can start tomorrow",
        )
    if run_status in RUN_STATUSES_USING_UP_THE_DAY:
        return Problem(
            "day_used_up",
            "practitioner_id",
            f"today's payout run for {who(practitioner)} already ran ({run_status}); the next "
            "payout for them can start tomorrow",
        )
    return None


def under_way_today(workflow_id: str, run_status: str | None = None) -> Payout | None:
    """Today's payout while its run still goes on (a new start finds it), else None."""
    payout = todays_payout(workflow_id)
    if payout is not None and payout.status in UNDER_WAY and run_status in (None, "Running"):
        return payout
    return None


@dataclass
class PayoutCheck:
    """Everything the confirmation of one payout says."""

    practitioner_id: int
    practitioner: Practitioner | None
    workflow_id: str
    currency: str
    available_cents: int = 0
    amount_cents: int = 0
    whole_balance: bool = True
    approvals_required: int = 0
    problems: list[Problem] = field(default_factory=list)
    under_way: Payout | None = None
    # Today's run is running (a new start finds it and starts nothing): the balance it
    # held is not a problem of this start.
    running_today: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def codes(self) -> list[str]:
        return [p.code for p in self.problems]


def check_payout(
    practitioner_id: int,
    amount_cents: int | None,
    *,
    config: Mapping[str, Any],
    day: date | str,
    run_status: str | None = None,
    policy_input: Any = None,
) -> PayoutCheck:
    """The pre-checks of one payout started now (`day` its payout day), with the approval
    tier from the configured policy (or `policy_input`'s stricter settings)."""
    currency = str(config.get("CURRENCY", "USD"))
    workflow_id = payout_workflow_id(practitioner_id, day)
    practitioner = db.session.get(Practitioner, practitioner_id)
    check = PayoutCheck(practitioner_id, practitioner, workflow_id, currency)
    if practitioner is None:
        check.problems.append(
            Problem(
                "unknown_practitioner",
                "practitioner_id",
                f"practitioner {practitioner_id} does not exist",
            )
        )
        return check
    amount, available, problem = payable_amount(practitioner, amount_cents, currency)
    check.amount_cents = amount if isinstance(amount, int) else 0
    check.available_cents = available
    check.whole_balance = amount_cents is None
    day_problem = day_used_up_problem(
        practitioner, used_up([workflow_id]).get(workflow_id), run_status
    )
    if day_problem is not None:
        check.problems.append(day_problem)
    else:
        check.under_way = under_way_today(workflow_id, run_status)
        check.running_today = run_status == "Running" or check.under_way is not None
    if check.under_way is not None:
        # Starting again finds that run: what it pays is what it was asked for.
        check.amount_cents = check.under_way.amount_cents
    elif problem is not None and not check.running_today:
        check.problems.append(problem)
    policy = payout_policy.policy_from_config(config)
    if policy_input is not None:
        try:
            policy = payout_policy.filled_from_config(policy_input, config)
        except BusinessRuleError as exc:
            check.problems.append(Problem("looser_policy", exc.field or "", exc.message))
    check.approvals_required = approval_rules.approvals_needed(
        check.amount_cents, policy.approval_threshold_cents, policy.dual_approval_threshold_cents
    )
    return check
