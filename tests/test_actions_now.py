"""Which handlers apply at a moment of a run (the console offers only these): the
onboarding's by step, the booking lifecycle's by the stage it reports."""

from datetime import UTC, datetime, timedelta

from estuary.contracts.bookings import lifecycle_actions
from estuary.contracts.onboarding_actions import onboarding_actions, pending_modules


def _onboarding(step: str, **more) -> dict:
    return {"status": "in_progress", "current_step": step, "rejection": None, **more}


def test_onboarding_offers_the_current_steps_update_then_extend_and_reject():
    assert onboarding_actions(_onboarding("profile")) == ("complete_profile", "extend", "reject")
    waiting = _onboarding("documents", documents={"state": "awaiting_submission"})
    assert onboarding_actions(waiting)[0] == "submit_documents"
    review = _onboarding("documents", documents={"state": "in_review"})
    assert onboarding_actions(review)[0] == "review_documents"
    no_check = _onboarding("background_check", background_check=None)
    assert onboarding_actions(no_check) == ("extend", "reject")
    check = _onboarding("background_check", background_check={"reference": "BC-1"})
    assert onboarding_actions(check)[0] == "record_background_check"
    training = {"assigned": ["a", "b"], "completed": ["a"]}
    assert onboarding_actions(_onboarding("training", training=training))[0] == (
        "complete_training_module"
    )
    assert pending_modules(_onboarding("training", training=training)) == ["b"]
    charging = _onboarding("subscription", subscription={"charge_status": "charging"})
    assert onboarding_actions(charging) == ("extend", "reject")
    assert onboarding_actions(_onboarding("services"))[0] == "configure_service"


def test_a_finished_or_rejecting_onboarding_offers_nothing():
    assert onboarding_actions({"status": "completed"}) == ()
    assert onboarding_actions(_onboarding("training", rejection={"reason": "x"})) == ()
    assert onboarding_actions(None) == ()


def test_the_lifecycle_offers_what_its_reported_stage_allows_whatever_the_clock():
    # The start time is the workflow's business, not the console's: a session whose start
    # is past on the console's clock but not yet on the workflow's (a time-skipping or
    # lagging worker) still offers reschedule, and one the workflow says has started
    # offers the outcomes even while the console's clock says it is ahead.
    ahead = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for start in (ahead, past):
        assert lifecycle_actions({"stage": "awaiting_session", "start_at": start}) == (
            "cancel",
            "reschedule",
        )
        for stage in ("awaiting_outcome", "unresolved"):
            assert lifecycle_actions({"stage": stage, "start_at": start}) == (
                "cancel",
                "mark_completed",
                "mark_no_show",
            ), (stage, start)
    feedback = {"stage": "awaiting_feedback", "outcome": "completed", "start_at": past}
    assert lifecycle_actions(feedback) == ("feedback_received",)
    for stage in ("starting", "confirming", "cancelled", "rescheduled", "completed", "no_show"):
        assert lifecycle_actions({"stage": stage, "start_at": past}) == (), stage
    completing = {"stage": "completing", "outcome": "completed", "start_at": past}
    assert lifecycle_actions(completing) == ()
    assert lifecycle_actions(None) == () and lifecycle_actions({"stage": "nope"}) == ()
