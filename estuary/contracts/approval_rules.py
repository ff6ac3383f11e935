"""Payout approval rules, written once: tiers, the boundaries, reason codes, the wording.

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

from collections.abc import Callable

# Why a payout was rejected, and why a money workflow is terminated, cancelled or retried.
REASON_CODES: tuple[str, ...] = (
    "duplicate",
    "suspected_fraud",
    "payee_details_invalid",
    "requested_by_practitioner",
    "other",
)
# The reason codes each kind of money action accepts ("other" always needs a text).
REASON_CODES_BY_ACTION: dict[str, tuple[str, ...]] = {
    "reject_payout": REASON_CODES,
    "terminate": REASON_CODES,
    "cancel": REASON_CODES,
    "retry": REASON_CODES,
    "reset": REASON_CODES,
}
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
