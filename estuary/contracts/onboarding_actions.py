"""Which of the onboarding's handlers apply at a moment of the run: the console offers
only these (from the `progress` query it already has), and the workflow's update
validators refuse the same inputs when they arrive anyway (a stale page, a second tab).

The facts of each step arrive as updates (`complete_profile`, `submit_documents`, ...),
so an input the workflow would ignore is refused with its reason instead of being
"sent". The signals of the same facts stay for senders that cannot wait for an answer
(the local background-check provider, old histories); the command line sends the updates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The update that records each step's fact, in step order.
STEP_UPDATES = {
    "profile": "complete_profile",
    "documents": "submit_documents",
    "background_check": "record_background_check",
    "training": "complete_training_module",
    "subscription": "select_subscription",
    "services": "configure_service",
}
# The update each step's fact had as a signal.
SIGNAL_OF_UPDATE = {
    "complete_profile": "profile_completed",
    "submit_documents": "documents_submitted",
    "record_background_check": "background_check_result",
    "complete_training_module": "training_module_completed",
    "select_subscription": "subscription_selected",
    "configure_service": "service_configured",
}
# Onboarding signals the console still offers: none (each has its update).
CONSOLE_SIGNALS: tuple[str, ...] = ()


def modules_to_do(modules: Any) -> list[str]:
    """The assigned modules not completed yet, from a progress's `{"assigned": [...],
    "completed": [...]}` (the onboarding's `training`, a certification run's `modules`)."""
    if not isinstance(modules, Mapping):
        return []
    done = set(modules.get("completed") or ())
    return [m for m in modules.get("assigned") or () if m not in done]


def _pending_modules(progress: Mapping[str, Any]) -> list[str]:
    return modules_to_do(progress.get("training"))


def step_action(progress: Mapping[str, Any]) -> str | None:
    """The update that moves the current step on, or None while the step waits on
    someone else (a document review's submission, a first charge in flight)."""
    step = progress.get("current_step")
    if step == "documents":
        state = (progress.get("documents") or {}).get("state")
        return {"awaiting_submission": "submit_documents", "in_review": "review_documents"}.get(
            state
        )
    if step == "background_check":
        check = progress.get("background_check") or {}
        return (
            "record_background_check"
            if check.get("reference") and not check.get("result")
            else None
        )
    if step == "training":
        return "complete_training_module" if _pending_modules(progress) else None
    if step == "subscription":
        charging = (progress.get("subscription") or {}).get("charge_status") == "charging"
        return None if charging else "select_subscription"
    return STEP_UPDATES.get(step) if isinstance(step, str) else None


def onboarding_actions(progress: Any) -> tuple[str, ...]:
    """The handler names that apply now: the step's own update, extending the current
    step, rejecting the onboarding; nothing once it has finished or is being rejected."""
    if not isinstance(progress, Mapping) or progress.get("status") != "in_progress":
        return ()
    if progress.get("rejection"):
        return ()
    names: list[str] = []
    action = step_action(progress)
    if action:
        names.append(action)
    if progress.get("current_step"):
        names.append("extend")
    names.append("reject")
    return tuple(names)


def pending_modules(progress: Any) -> list[str]:
    """The assigned training modules not completed yet (the module picker's choices)."""
    return _pending_modules(progress) if isinstance(progress, Mapping) else []
