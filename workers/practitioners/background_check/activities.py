"""The local background-check provider's activity (BackgroundCheckProviderWorkflow):
thin calls into estuary.services.

Sync, each in its own app context (see workers/practitioners/activities.py)."""

from __future__ import annotations

from estuary.contracts.practitioners import (
    BackgroundCheckProviderResult,
    LocalBackgroundCheckInput,
)
from estuary.services import background_checks
from workers.temporal.base_activities import read_activity


@read_activity
def run_local_background_check(inp: LocalBackgroundCheckInput) -> BackgroundCheckProviderResult:
    return BackgroundCheckProviderResult(
        reference=inp.reference, passed=background_checks.local_verdict(inp.reference)
    )
