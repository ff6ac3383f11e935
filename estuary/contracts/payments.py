"""Inputs and results of the payments workflows and activities (no side effects).

Money is integer cents everywhere (`*_cents: int`). Fields carry the metadata that
`estuary.contracts.inputs.parse_input` and the console read (help, money, bounds, patterns).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from estuary.contracts.approval_rules import REASON_CODES as REASON_CODES
from estuary.contracts.approval_rules import ReasonCode as ReasonCode
from estuary.contracts.checks import ACTOR_HELP, is_cents, is_id, money_problem
from estuary.contracts.field_types import resolve_field_types

# The progressive package payout's contracts live in their own module; importable
# from here as before.
from estuary.contracts.package_payouts import PACKAGE_EXPIRY_POLICIES as PACKAGE_EXPIRY_POLICIES
from estuary.contracts.package_payouts import LoadPackageInput as LoadPackageInput
from estuary.contracts.package_payouts import PackageExpiryPolicy as PackageExpiryPolicy
from estuary.contracts.package_payouts import PackageExpiryResult as PackageExpiryResult
from estuary.contracts.package_payouts import PackagePayoutInput as PackagePayoutInput
from estuary.contracts.package_payouts import PackagePayoutResult as PackagePayoutResult
from estuary.contracts.package_payouts import PackageReleaseResult as PackageReleaseResult
from estuary.contracts.package_payouts import PackageState as PackageState
from estuary.contracts.package_payouts import (
    ReleasePackageSessionInput as ReleasePackageSessionInput,
)
from estuary.contracts.package_payouts import SessionCompletedSignal as SessionCompletedSignal
from estuary.contracts.package_payouts import SettleExpiredPackageInput as SettleExpiredPackageInput
from estuary.contracts.package_payouts import (
    package_payout_workflow_id as package_payout_workflow_id,
)

TASK_QUEUE = "payments"
# Child workflows of batches are started in chunks of at most this many.
BATCH_CHUNK_SIZE = 100
PaymentMethod = Literal["bank_transfer", "instant_transfer"]
PAYMENT_METHODS: tuple[str, ...] = typing.get_args(PaymentMethod)


# Workflow ids are business keys: a second trigger finds the first run instead of paying
# twice. Built here only (the single payout's start, the batch's children, the package
# payout started from a booking).
def payout_workflow_id(practitioner_id: int, day: date | str) -> str:
    """`payments-payout-{practitioner}-{yyyymmdd}`: one payout per practitioner per day
    (`day` a date, or already `yyyymmdd`)."""
    text = day.strftime("%Y%m%d") if isinstance(day, date) else day
    return f"payments-payout-{practitioner_id}-{text}"


# --- Contracts other domains call on the `payments` queue (by activity name) ------------
# These names and shapes are fixed: bookings and practitioners depend on them.


@dataclass
class PackageSessionCompletedInput:
    """`notify_package_session_completed`: signal-with-start of the purchase's
    ProgressivePackagePayoutWorkflow (`payments-package-payout-{purchase_id}`) with
    `session_completed(booking_id)`. Repeats are harmless (the workflow ignores them)."""

    package_purchase_id: int
    booking_id: int


@dataclass
class BookingCommissionInput:
    """`record_booking_commission`: commission row + ledger entries, once per booking."""

    booking_id: int


@dataclass
class BookingCommissionResult:
    booking_id: int
    commission_cents: int
    created: bool  # False when it had been recorded before
    # Added (defaults keep the contract): what the booking released to the practitioner
    # now (0 for package sessions: the progressive package payout releases those).
    net_released_cents: int = 0
    package_purchase_id: int | None = None


@dataclass
class SubscriptionChargeInput:
    """`charge_subscription`: charge one subscription period, once per idempotency key.

    A declined charge is a result (status "failed"), not an exception, so the caller's
    dunning logic decides what happens next.
    """

    subscription_id: int
    period_start: str  # ISO 8601 UTC; with subscription_id it makes the idempotency key
    amount_cents: int
    attempt: int = 1


@dataclass
class SubscriptionChargeResult:
    subscription_id: int
    charge_id: int
    status: str  # "paid" | "failed"
    failure_reason: str | None = None


# --- single payout ------------------------------------------------------------------------

_POLICY_HELP = "Filled from the app config when started; cannot be looser than the config"


@dataclass
class PractitionerPayoutInput:
    practitioner_id: int = field(metadata={"help": "The practitioner to pay"})
    amount_cents: int | None = field(
        default=None,
        metadata={"help": "Amount to pay (empty: the whole available balance)", "money": True},
    )
    requested_by: str = field(
        default="",
        metadata={
            "help": "Who requested the payout (empty: whoever triggered the run)",
            "max_length": 254,
        },
    )
    reason: str = field(default="", metadata={"help": "Why this payout", "max_length": 500})
    payment_method: PaymentMethod = field(
        default="bank_transfer", metadata={"help": "How the money is sent"}
    )
    approval_threshold_cents: int | None = field(
        default=None, metadata={"help": _POLICY_HELP, "money": True}
    )
    dual_approval_threshold_cents: int | None = field(
        default=None, metadata={"help": _POLICY_HELP, "money": True}
    )
    approval_timeout_seconds: int | None = field(
        default=None, metadata={"help": _POLICY_HELP, "min": 60, "max": 90 * 24 * 3600}
    )

    def validate(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        if not is_id(self.practitioner_id):
            problems["practitioner_id"] = "must be a positive whole number"
        if self.amount_cents is not None:
            problem = money_problem(self.amount_cents)
            if problem:
                problems["amount_cents"] = problem
        if self.payment_method not in PAYMENT_METHODS:
            problems["payment_method"] = f"must be one of: {', '.join(PAYMENT_METHODS)}"
        problems.update(_policy_problems(self))
        return problems


def _policy_problems(inp: Any) -> dict[str, str]:
    problems: dict[str, str] = {}
    for name in ("approval_threshold_cents", "dual_approval_threshold_cents"):
        value = getattr(inp, name)
        if value is not None:
            problem = money_problem(value)
            if problem:
                problems[name] = problem
    timeout = inp.approval_timeout_seconds
    if timeout is not None and (not is_cents(timeout) or not 60 <= timeout <= 90 * 24 * 3600):
        problems["approval_timeout_seconds"] = "must be between 60 and 7776000 seconds"
    low, high = inp.approval_threshold_cents, inp.dual_approval_threshold_cents
    if is_cents(low) and is_cents(high) and high < low:
        problems["dual_approval_threshold_cents"] = "must not be below the approval threshold"
    return problems


@dataclass
class ApprovePayoutDecision:
    """`approve`: an approver approves the payout they were shown (amount and payee)."""

    actor: str = field(metadata={"help": ACTOR_HELP, "max_length": 254})
    amount_cents: int = field(metadata={"help": "The amount you approve", "money": True})
    practitioner_id: int = field(metadata={"help": "The payee you approve"})
    note: str = field(default="", metadata={"help": "Optional note", "max_length": 1000})


@dataclass
class RejectPayoutDecision:
    """`reject`: an approver rejects the payout, with a reason code."""

    actor: str = field(metadata={"help": ACTOR_HELP, "max_length": 254})
    amount_cents: int = field(metadata={"help": "The amount you reject", "money": True})
    practitioner_id: int = field(metadata={"help": "The payee of the payout you reject"})
    reason_code: ReasonCode = field(metadata={"help": "Why"})
    note: str = field(
        default="", metadata={"help": "Details (required for 'other')", "max_length": 1000}
    )


@dataclass
class PayoutPolicyInput:
    """`load_payout_policy`: the approval thresholds and timeout from the app config."""

    practitioner_id: int = 0


@dataclass
class PayoutPolicy:
    approval_threshold_cents: int
    dual_approval_threshold_cents: int
    approval_timeout_seconds: int
    # How long an unknown transfer outcome keeps asking the provider before deciding.
    settle_window_seconds: int = 24 * 3600

    def for_input(self, inp: Any) -> PayoutPolicy:
        """This policy with the approval settings `inp` carries (a payout or batch input)
        taking precedence: None in the input means "the configured value"."""

        def given(value: int | None, default: int) -> int:
            return default if value is None else value

        return PayoutPolicy(
            approval_threshold_cents=given(
                inp.approval_threshold_cents, self.approval_threshold_cents
            ),
            dual_approval_threshold_cents=given(
                inp.dual_approval_threshold_cents, self.dual_approval_threshold_cents
            ),
            approval_timeout_seconds=given(
                inp.approval_timeout_seconds, self.approval_timeout_seconds
            ),
            settle_window_seconds=self.settle_window_seconds,
        )


def policy_given(inp: Any) -> bool:
    """True when the input already carries every approval setting (its starter filled
    them from the config), so a workflow need not read the policy."""
    return None not in (
        inp.approval_threshold_cents,
        inp.dual_approval_threshold_cents,
        inp.approval_timeout_seconds,
    )


@dataclass
class CreatePayoutInput:
    workflow_id: str
    practitioner_id: int
    amount_cents: int | None
    requested_by: str
    reason: str
    payment_method: str
    approval_threshold_cents: int
    dual_approval_threshold_cents: int
    approval_timeout_seconds: int | None = None
    run_id: str | None = None  # the run that owns the payout from now on


@dataclass
class PayoutRecord:
    payout_id: int
    idempotency_key: str
    practitioner_id: int
    amount_cents: int
    currency: str
    status: str
    approvals_required: int
    # Approvals already recorded (a retried run after a terminated one keeps them).
    approved_by: list[str] = field(default_factory=list)
    reused: bool = False  # True when this run picked up an unfinished payout of its id
    # The payout's own requester (four-eyes is checked against it, not the run's input).
    requested_by: str = ""
    # A rejection recorded on the payout ({"actor", "reason_code", "note", "at"}): final.
    rejection: dict | None = None
    # Earlier payouts under this id closed now because a rejection was recorded on them.
    closed_rejected: list[int] = field(default_factory=list)
    # True in every record `create_payout` returns now: `transfer_payout` marks the payout
    # processing itself, so the run goes straight to it. The workflow reads this from its
    # history, so a run decides by data instead of asking `workflow.patched()` (whose
    # marker and search-attribute upsert were two events and one more visibility write per
    # payout). Records written by older code lack the field (False): those runs ask the
    # patch, as before (workers/payments/payout_settlement.py).
    transfer_marks_processing: bool = False


@dataclass
class RecordPayoutDecisionInput:
    payout_id: int
    approver: str
    decision: str  # approve / reject
    amount_cents: int
    payee_id: int
    reason_code: str | None = None
    note: str | None = None
    # The Temporal update that carried the decision: the applied event in the audit log
    # names it, so a decision the console reported as "pending delivery" gets its outcome.
    update_id: str | None = None


@dataclass
class SetPayoutStatusInput:
    payout_id: int
    status: str  # approved / processing


@dataclass
class TransferPayoutInput:
    payout_id: int


@dataclass
class TransferPayoutResult:
    payout_id: int
    transfer_id: int
    provider_reference: str
    amount_cents: int
    status: str  # "paid", or "reconciling" while the provider is still processing it


@dataclass
class MarkReconcilingInput:
    payout_id: int
    reason: str


@dataclass
class CheckPayoutTransferInput:
    payout_id: int
    give_up: bool = False  # the settle window has passed: decide


@dataclass
class CheckPayoutTransferResult:
    payout_id: int
    outcome: str  # paid / processing / missing / not_paid / in_doubt
    provider_reference: str | None = None
    released_cents: int = 0


@dataclass
class ClosePayoutInput:
    payout_id: int
    outcome: str  # failed / rejected / expired / cancelled
    reason: str = ""


@dataclass
class ClosePayoutResult:
    payout_id: int
    # The payout's status now: the outcome asked for; paid if the provider had in fact
    # paid it; reconciling if the provider is still processing a transfer for it.
    status: str
    released_cents: int  # what went back to the available balance
    provider_reference: str | None = None


@dataclass
class NotifyPayoutInput:
    payout_id: int
    event: str  # paid / failed / rejected / expired


@dataclass
class PractitionerPayoutResult:
    payout_id: int
    practitioner_id: int
    amount_cents: int
    status: str  # paid / rejected / expired / cancelled / reconciling
    idempotency_key: str
    approvals: list[str] = field(default_factory=list)
    provider_reference: str | None = None
    reason_code: str | None = None


@dataclass
class PayoutWaitingSignal:
    """`payout_waiting` (child -> batch): this child payout now waits for its approvers."""

    workflow_id: str
    amount_cents: int


# --- batch payout ---------------------------------------------------------------------------


@dataclass
class BatchPayoutLine:
    practitioner_id: int
    amount_cents: int
    outcome: str  # would_pay / paid / waiting_for_approval / skipped / failed
    detail: str = ""
    workflow_id: str = ""


@dataclass
class BatchPayoutResult:
    dry_run: bool
    paid_count: int = 0
    paid_cents: int = 0
    waiting_for_approval_count: int = 0
    waiting_for_approval_cents: int = 0
    skipped_count: int = 0
    skipped_cents: int = 0
    failed_count: int = 0
    failed_cents: int = 0
    would_pay_count: int = 0  # dry run only
    would_pay_cents: int = 0
    # Details: the first LINE_LIMIT lines (all counts and totals above are complete).
    lines: list[BatchPayoutLine] = field(default_factory=list)
    lines_truncated: bool = False
    runs: int = 1  # how many runs (continue-as-new) the batch took


BATCH_LINE_LIMIT = 1000


@dataclass
class BatchPayoutInput:
    min_amount_cents: int = field(
        metadata={
            "help": "Pay practitioners whose available balance is at least this",
            "money": True,
        }
    )
    payment_method: PaymentMethod = field(
        default="bank_transfer", metadata={"help": "How the money is sent"}
    )
    practitioner_ids: list[int] | None = field(
        default=None,
        metadata={"help": "Only these practitioners (empty: all)", "max_items": 10_000},
    )
    dry_run: bool = field(
        default=False, metadata={"help": "List what would be paid; move no money"}
    )
    requested_by: str = field(
        default="",
        metadata={"help": "Who requested the batch (empty: the trigger)", "max_length": 254},
    )
    approval_threshold_cents: int | None = field(
        default=None, metadata={"help": _POLICY_HELP, "money": True}
    )
    dual_approval_threshold_cents: int | None = field(
        default=None, metadata={"help": _POLICY_HELP, "money": True}
    )
    approval_timeout_seconds: int | None = field(
        default=None, metadata={"help": _POLICY_HELP, "min": 60, "max": 90 * 24 * 3600}
    )
    chunk_size: int = field(
        default=BATCH_CHUNK_SIZE,
        metadata={
            "help": "Payouts in flight at once (and practitioners read per page)",
            "min": 1,
            "max": 500,
        },
    )
    items_per_run: int = field(
        default=2000,
        metadata={
            "help": "Practitioners handled per run before continuing as new",
            "min": 1,
            "max": 2000,
        },
    )
    # Continuation state, set by the workflow itself when it continues as new.
    cursor: int = field(
        default=0, metadata={"help": "Internal: last practitioner id handled", "min": 0}
    )
    payout_date: str = field(
        default="", metadata={"help": "Internal: yyyymmdd of the batch", "pattern": r"\d{8}"}
    )
    carried: BatchPayoutResult | None = field(
        default=None, metadata={"internal": True, "help": "Internal: totals carried over"}
    )

    def validate(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        problem = money_problem(self.min_amount_cents)
        if problem:
            problems["min_amount_cents"] = problem
        if self.payment_method not in PAYMENT_METHODS:
            problems["payment_method"] = f"must be one of: {', '.join(PAYMENT_METHODS)}"
        if self.practitioner_ids is not None:
            if not isinstance(self.practitioner_ids, list) or not all(
                is_id(i) for i in self.practitioner_ids
            ):
                problems["practitioner_ids"] = "must be positive whole numbers"
            elif len(self.practitioner_ids) > 10_000:
                problems["practitioner_ids"] = "at most 10000 items"
        if not is_cents(self.chunk_size) or not 1 <= self.chunk_size <= 500:
            problems["chunk_size"] = "must be between 1 and 500"
        if not is_cents(self.items_per_run) or not 1 <= self.items_per_run <= 2000:
            problems["items_per_run"] = "must be between 1 and 2000"
        if not is_cents(self.cursor) or self.cursor < 0:
            problems["cursor"] = "must not be negative"
        problems.update(_policy_problems(self))
        return problems


@dataclass
class SelectPayoutCandidatesInput:
    min_amount_cents: int
    after_practitioner_id: int
    limit: int
    practitioner_ids: list[int] | None = None
    max_scan: int = 2000
    # The batch's payout day (yyyymmdd): a practitioner whose payout under that day's id
    # is used up is skipped with the reason (None: not checked, as runs started before).
    payout_date: str | None = None


@dataclass
class PayoutCandidate:
    practitioner_id: int
    available_cents: int


@dataclass
class PayoutCandidatePage:
    candidates: list[PayoutCandidate]
    skipped: list[BatchPayoutLine]
    next_cursor: int
    exhausted: bool


def input_problems(inp: Any) -> str | None:
    """The input's own `validate()` problems as one message, or None (used by workflows to
    refuse input that did not come through `parse_input`)."""
    check = getattr(inp, "validate", None)
    problems = check() if callable(check) else {}
    if not problems:
        return None
    return "invalid input: " + "; ".join(f"{k}: {v}" for k, v in problems.items())


resolve_field_types(__name__)
