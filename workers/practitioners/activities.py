"""Practitioners activities used by more than one workflow, and their helpers.

Sync functions (they run on the worker's thread pool), each in its own app context;
writes run in one transaction. Times that matter to the business (when a reminder went
out, when a review happened) come from the workflow (`workflow.now()`), not the wall
clock, so they are the same on replay and under time skipping.
"""

from __future__ import annotations

from datetime import datetime

from estuary.contracts.practitioners import (
    ModuleCompletionInput,
)
from estuary.services import onboarding
from workers.temporal.base_activities import as_kwargs, write_activity


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


@write_activity
def record_module_completion(inp: ModuleCompletionInput) -> bool:
    return onboarding.record_module_completion(**as_kwargs(inp))
