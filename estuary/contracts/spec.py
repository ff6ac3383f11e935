"""`WorkflowSpec` and `ScheduleDefinition`: what the catalogue knows about one workflow
and one Temporal Schedule. They are data, declared per domain in
`estuary.contracts.specs.<domain>`; the workers' registry checks its workflow classes
against them (`workers.temporal.registry`). Imports only the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from estuary.contracts.field_types import resolve_field_types

# The query every workflow answers with its progress dict (the run page asks it).
PROGRESS_QUERY = "progress"

# A signal's or update's name with its argument dataclass (None: it takes none).
Handler = tuple[str, type | None]


def timestamped_id(prefix: str) -> Callable[[Any, datetime], str]:
    """The business id of a run that may run any number of times (a check, a sweep):
    `prefix` and the starting side's clock to the second."""

    def business_id(inp: Any, now: datetime) -> str:
        return f"{prefix}-{now:%Y%m%d-%H%M%S}"

    return business_id


def for_all(inp: Any) -> str:
    """The entity of a run over everything of its kind (the ledger, every payout)."""
    return "all"


@dataclass(frozen=True)
class WorkflowSpec:
    """What the registry, the commands and the console know about one workflow."""

    name: str  # the workflow type name (`@workflow.defn` names the class after it)
    domain: str
    input_type: type
    description: str
    # Business key: the workflow id for an input (`now` is the starting side's clock).
    business_id: Callable[[Any, datetime], str]
    entity_type: str
    entity_id: Callable[[Any], str | int]
    money: bool = False
    # Signals and updates the console may send, by name, with their argument dataclass.
    signals: tuple[Handler, ...] = ()
    updates: tuple[Handler, ...] = ()
    # The handlers that apply now, from the run's `progress` answer (None: every handler
    # while the run is open). Signals named in `console_signals` only are offered.
    actions_now: Callable[[Any], tuple[str, ...]] | None = None
    # The signals the console offers (None: all of `signals`); the others stay for senders
    # that cannot wait for an answer (a child workflow, the command line).
    console_signals: tuple[str, ...] | None = None
    # Queries the console asks, by name (each takes no argument).
    queries: tuple[str, ...] = (PROGRESS_QUERY,)


@dataclass(frozen=True)
class ScheduleDefinition:
    schedule_id: str
    workflow_name: str
    # Builds the input each time a schedule is synced (not each time it fires).
    make_input: Any
    cron: str  # read in the schedule's time zone (see time_zones)
    description: str
    # Workflow id prefix; Temporal appends the fire time, so each firing is distinct.
    workflow_id_prefix: str
    # IANA zone of the cron; None: SCHEDULE_TIME_ZONE. SCHEDULE_TIME_ZONES overrides both.
    time_zone: str | None = None


resolve_field_types(__name__)
