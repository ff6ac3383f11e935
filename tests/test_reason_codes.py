"""Reason codes per action kind: one definition each, and retry/reset never offer the
payout rejection codes (issue 14)."""

import typing

import pytest

from estuary.contracts import approval_rules
from estuary.contracts.approval_rules import REASON_CODES, reason_codes_for

REJECTION_ONLY = {
    "duplicate",
    "suspected_fraud",
    "payee_details_invalid",
    "requested_by_practitioner",
}


def test_the_codes_each_action_offers():
    assert reason_codes_for("reject_payout") == REASON_CODES
    assert reason_codes_for("reject_payout") == typing.get_args(approval_rules.ReasonCode)
    assert reason_codes_for("retry") == (
        "provider_outage_resolved",
        "payee_details_corrected",
        "transient_failure",
        "fix_deployed",
        "other",
    )
    assert reason_codes_for("reset") == ("fix_deployed", "stuck_run", "wrong_step_outcome", "other")
    assert "started_in_error" in reason_codes_for("cancel")
    assert "stuck_run" in reason_codes_for("terminate")


@pytest.mark.parametrize("action", ["retry", "reset"])
def test_running_again_offers_no_rejection_code(action):
    assert not REJECTION_ONLY & set(reason_codes_for(action))


@pytest.mark.parametrize("action", list(approval_rules.REASON_CODES_BY_ACTION))
def test_every_action_allows_other_and_codes_fit_the_column(action):
    codes = reason_codes_for(action)
    assert codes[-1] == "other" and len(set(codes)) == len(codes)
    assert all(len(c) <= 40 and c.isidentifier() for c in codes)


def test_an_unknown_action_is_refused_by_name():
    with pytest.raises(ValueError, match="no reason codes for 'approve'"):
        reason_codes_for("approve")
