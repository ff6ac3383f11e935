"""Inputs and results of the payments workflows and activities (no side effects)."""

from __future__ import annotations

from dataclasses import dataclass, field

TASK_QUEUE = "payments"


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
