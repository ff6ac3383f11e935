"""The payout approval policy as configured (thresholds, approval timeout, settle window)
and the one check that a run's own settings are not looser than it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from estuary.contracts.payments import PayoutPolicy
from estuary.services.errors import BusinessRuleError


def policy_from_config(config: Mapping[str, Any]) -> PayoutPolicy:
    return PayoutPolicy(
        approval_threshold_cents=int(config["PAYOUT_APPROVAL_THRESHOLD_CENTS"]),
        dual_approval_threshold_cents=int(config["PAYOUT_DUAL_APPROVAL_THRESHOLD_CENTS"]),
        approval_timeout_seconds=int(config["PAYOUT_APPROVAL_TIMEOUT_SECONDS"]),
        settle_window_seconds=int(config.get("PAYOUT_SETTLE_WINDOW_SECONDS", 24 * 3600)),
    )


def check_not_looser(
    config: Mapping[str, Any],
    approval_threshold_cents: int | None,
    dual_approval_threshold_cents: int | None,
    approval_timeout_seconds: int | None = None,
) -> None:
    """Refuse approval settings looser than the configured ones (an input cannot switch
    approvals off); stricter ones (lower thresholds, shorter timeout) are allowed."""
    policy = policy_from_config(config)
    for name, words, given, configured, unit in (
        (
            "approval_threshold_cents",
            "approval threshold",
            approval_threshold_cents,
            policy.approval_threshold_cents,
            "cents",
        ),
        (
            "dual_approval_threshold_cents",
            "dual approval threshold",
            dual_approval_threshold_cents,
            policy.dual_approval_threshold_cents,
            "cents",
        ),
        (
            "approval_timeout_seconds",
            "approval timeout",
            approval_timeout_seconds,
            policy.approval_timeout_seconds,
            "s",
        ),
    ):
        if given is not None and given > configured:
            shown = f"{given} s" if unit == "s" else str(given)
            raise BusinessRuleError(
                f"{words} {shown} is above the configured {configured} {unit}", field=name
            )


def filled_from_config(inp: Any, config: Mapping[str, Any]) -> PayoutPolicy:
    """The approval settings a run of `inp` gets: its own where set (never looser than
    the config: refused), the configured ones otherwise."""
    check_not_looser(
        config,
        inp.approval_threshold_cents,
        inp.dual_approval_threshold_cents,
        inp.approval_timeout_seconds,
    )
    return policy_from_config(config).for_input(inp)
