"""Contracts of the payments domain's upkeep workflows: the ledger check, the payout
sweep (payouts whose run is gone, decisions that were never delivered) and the payout
reconciliation against the provider. Standard library only, like every contract module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from estuary.contracts.field_types import resolve_field_types

# --- ledger check (the first proof workflow) ----------------------------------------------


@dataclass
class LedgerReconciliationInput:
    requested_by: str = field(
        default="schedule", metadata={"help": "Who asked for the check", "max_length": 254}
    )


@dataclass
class LedgerReconciliationResult:
    transactions: int
    entries: int
    unbalanced_keys: list[str]
    total_cents: int
    balanced: bool


# --- the payout sweep and the reconciliation -------------------------------------------------


@dataclass
class PayoutSweepInput:
    requested_by: str = field(
        default="schedule", metadata={"help": "Who asked for the sweep", "max_length": 254}
    )
    min_closed_seconds: int = field(
        default=300,
        metadata={
            "help": "Only runs closed at least this long ago (a rerun may be starting)",
            "min": 0,
            "max": 7 * 24 * 3600,
        },
    )

    def validate(self) -> dict[str, str]:
        value = self.min_closed_seconds
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 7 * 24 * 3600:
            return {"min_closed_seconds": "must be between 0 and 604800 seconds"}
        return {}


@dataclass
class OpenPayoutsInput:
    after_payout_id: int = 0
    limit: int = 200


@dataclass
class OpenPayoutRow:
    payout_id: int
    workflow_id: str
    run_id: str | None
    status: str


@dataclass
class OpenPayoutsPage:
    rows: list[OpenPayoutRow]


@dataclass
class GoneRunsInput:
    rows: list[OpenPayoutRow]
    min_closed_seconds: int = 300
    # The sweep's workflow time (ISO 8601): close times are Temporal's clock, so the age
    # of a closed run is measured against Temporal's clock too.
    now: str = ""


@dataclass
class GoneRun:
    payout_id: int
    run_id: str | None  # the payout's owning run as read (compare-and-set at settling)
    run_state: str  # Terminated / TimedOut / Failed / Canceled / Completed / not found


@dataclass
class GoneRunsResult:
    gone: list[GoneRun]


@dataclass
class SettleOrphanInput:
    payout_id: int
    run_id: str | None
    run_state: str


@dataclass
class PayoutSweepResult:
    examined: int = 0
    running: int = 0
    paid: int = 0
    released: int = 0
    reconciling: int = 0
    skipped: int = 0
    lines: list[str] = field(default_factory=list)
    decisions_resolved: int = 0  # pending-delivery decisions whose refusal was audited


@dataclass
class PendingDecisionRow:
    update_id: str
    workflow_id: str
    target: str
    actor: str
    decision: str


@dataclass
class PendingDecisionsPage:
    rows: list[PendingDecisionRow]


@dataclass
class DecisionOutcome:
    row: PendingDecisionRow
    outcome: str  # refused (applied ones are audited by the decision activity itself)
    message: str


@dataclass
class DecisionOutcomes:
    outcomes: list[DecisionOutcome]


@dataclass
class PayoutReconciliationInput:
    requested_by: str = field(
        default="schedule", metadata={"help": "Who asked for the check", "max_length": 254}
    )
    settle: bool = field(
        default=True,
        metadata={"help": "Settle what the provider proves paid (off: only report)"},
    )


@dataclass
class PayoutReconciliationResult:
    transfers: int
    payouts_checked: int
    provider_paid_cents: int
    provider_processing_cents: int
    ledger_external_payouts_cents: int
    settled: int
    findings: list[str] = field(default_factory=list)  # "kind: message"
    ok: bool = True


resolve_field_types(__name__)
