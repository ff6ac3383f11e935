"""Inputs and results of the maintenance workflow and activities (no side effects)."""

from __future__ import annotations

from dataclasses import dataclass, field

from estuary.contracts.field_types import resolve_field_types

TASK_QUEUE = "maintenance"


@dataclass
class SecurityUpkeepInput:
    requested_by: str = field(
        default="schedule", metadata={"help": "Who asked for the upkeep", "max_length": 254}
    )


@dataclass
class PruneResult:
    login_attempts: int
    sessions: int
    counters: int


@dataclass
class AnchorResult:
    """The audit chain head written to the anchor file (None: no file set or no event)."""

    seq: int | None = None
    line: int | None = None


@dataclass
class SecurityUpkeepResult:
    pruned: PruneResult
    anchored: AnchorResult


resolve_field_types(__name__)
