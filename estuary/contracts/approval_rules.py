"""Payout approval rules, written once: tiers, the boundaries, reason codes per action,
the wording.

Pure (standard library only): the payout workflow, the payouts service, the console's
start confirmation and approvals page, and the operations guide all read this module, so
the boundary cannot drift between them again. It imports nothing of ours, so it can move
down into a contracts layer unchanged.

The rule:
    amount <  threshold                      no approval
    threshold <= amount <= dual threshold    one approver (never the requester)
    amount >  dual threshold                 two different approvers (neither the requester)

At exactly the dual threshold one approver is enough: the second tier starts *above* it.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Literal

# Why a payout is rejected: the approver's choice, also the `reason_code` of a
# PayoutApproval row and of the workflow's `reject` update (`ReasonCode` is its type).
ReasonCode = Literal[
    "duplicate", "suspected_fraud", "payee_details_invalid", "requested_by_practitioner", "other"
]
REASON_CODES: tuple[str, ...] = typing.get_args(ReasonCode)
# The reason codes each kind of money action offers and accepts ("other" always needs a
# text). Stopping a money run (cancel, terminate) is said in the words of a rejection;
# running it again (retry, reset) says what was fixed, never why a payout was refused.
REASON_CODES_BY_ACTION: dict[str, tuple[str, ...]] = {
    "reject_payout": REASON_CODES,
    "cancel": (
        "duplicate",
        "requested_by_practitioner",
        "payee_details_invalid",
        "suspected_fraud",
        "started_in_error",
        "other",
    ),
    "terminate": (
        "duplicate",
        "suspected_fraud",
        "payee_details_invalid",
        "started_in_error",
        "stuck_run",
        "other",
    ),
    "retry": (
        "provider_outage_resolved",
        "payee_details_corrected",
        "transient_failure",
        "fix_deployed",
        "other",
    ),
    "reset": (
        "fix_deployed",
        "stuck_run",
        "wrong_step_outcome",
        "other",
    ),
    # The onboarding's own decisions (its `reject` and `extend` updates).
    "reject_onboarding": (
        "documents_not_valid",
        "background_check_concern",
        "unresponsive",
        "duplicate_account",
        "requested_by_practitioner",
        "other",
    ),
    "extend_step": (
        "practitioner_asked_for_time",
        "waiting_on_provider",
        "documents_in_the_post",
        "ops_backlog",
        "other",
    ),
}


def reason_codes_for(action: str) -> tuple[str, ...]:
    """The reason codes `action` (a key of REASON_CODES_BY_ACTION) offers."""
    try:
        return REASON_CODES_BY_ACTION[action]
    except KeyError:
        raise ValueError(
            f"no reason codes for {action!r}; one of: {', '.join(REASON_CODES_BY_ACTION)}"
        ) from None


# Requesters that name nobody: a payout asked for by one of these cannot start, because
# four-eyes would have nobody to compare an approver with.
ANONYMOUS_REQUESTERS = frozenset({"", "unknown", "anonymous", "-"})


def approvals_needed(amount_cents: int, threshold_cents: int, dual_threshold_cents: int) -> int:
    """0 below the threshold; 1 from the threshold up to and including the dual
    threshold; 2 above the dual threshold."""
    if amount_cents < threshold_cents:
        return 0
    if amount_cents > dual_threshold_cents:
        return 2
    return 1


def requirement_text(amount_cents: int, threshold_cents: int, dual_threshold_cents: int) -> str:
    """What a payout of this amount needs, in the words the start confirmation shows."""
    needed = approvals_needed(amount_cents, threshold_cents, dual_threshold_cents)
    if needed == 0:
        return "no approval (below the threshold)"
    if needed == 1:
        return "one approver (not you)"
    return "two different approvers (neither may be you)"


def policy_text(
    threshold_cents: int, dual_threshold_cents: int, money: Callable[[int], str]
) -> str:
    """The whole rule in one sentence (approvals page, docs), amounts formatted by `money`."""
    return (
        f"Payouts of {money(threshold_cents)} or more need an approver; payouts above "
        f"{money(dual_threshold_cents)} need two different approvers. Nobody approves "
        "their own request."
    )


def requester_problem(requester: str | None) -> str | None:
    """Why a payout cannot be requested by `requester`, or None."""
    who = (requester or "").strip()
    if who.casefold() in ANONYMOUS_REQUESTERS:
        return (
            "the payout names no requester: a payout needs a known requester so that "
            "nobody approves their own request"
        )
    return None


def same_person(a: str | None, b: str | None) -> bool:
    return bool(a and b) and a.strip().casefold() == b.strip().casefold()
