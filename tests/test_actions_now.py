"""Which handlers apply at a moment of a run (the console offers only these): the
onboarding's by step, the booking lifecycle's by stage and session time."""

from datetime import UTC, datetime, timedelta

from estuary.contracts.bookings import lifecycle_actions
from estuary.contracts.onboarding_actions import onboarding_actions, pending_modules

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


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


def test_the_lifecycle_offers_what_its_stage_and_the_clock_allow():
    ahead = (NOW + timedelta(days=3)).isoformat()
    past = (NOW - timedelta(hours=1)).isoformat()
    assert lifecycle_actions({"stage": "awaiting_session", "start_at": ahead}, NOW) == (
        "cancel",
        "reschedule",
    )
    started = lifecycle_actions({"stage": "awaiting_session", "start_at": past}, NOW)
    assert started == ("cancel", "mark_completed", "mark_no_show")
    assert lifecycle_actions({"stage": "unresolved", "start_at": past}, NOW)[1:] == (
        "mark_completed",
        "mark_no_show",
    )
    feedback = {"stage": "awaiting_feedback", "outcome": "completed", "start_at": past}
    assert lifecycle_actions(feedback, NOW) == ("feedback_received",)
    for stage in ("starting", "cancelled", "rescheduled", "completed", "no_show"):
        assert lifecycle_actions({"stage": stage, "start_at": ahead}, NOW) == (), stage
