"""Inputs and results of the progressive package payout (`ProgressivePackagePayoutWorkflow`
and its activities): a practitioner's net earnings for a package released session by
session, and what happens to the rest when the package expires. No side effects.

Money is integer cents (`*_cents: int`). Also importable from `estuary.contracts.payments`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from estuary.contracts.checks import ACTOR_HELP, is_id
from estuary.contracts.field_types import resolve_field_types

# What happens to a package's unreleased earnings when the package expires.
PACKAGE_EXPIRY_POLICIES = ("release_remaining", "retain_by_platform", "refer_to_ops")
PackageExpiryPolicy = Literal["release_remaining", "retain_by_platform", "refer_to_ops"]


def package_payout_workflow_id(package_purchase_id: int) -> str:
    """`payments-package-payout-{package purchase}`: one release run per package."""
    return f"payments-package-payout-{package_purchase_id}"


@dataclass
class PackagePayoutInput:
    package_purchase_id: int = field(
        metadata={"help": "The package purchase whose earnings are released per session"}
    )
    expiry_policy: PackageExpiryPolicy = field(
        default="release_remaining",
        metadata={
            "help": "When the package expires with sessions unused: release_remaining pays "
            "the practitioner the rest, retain_by_platform keeps it, refer_to_ops raises an "
            "ops flag and leaves it in clearing"
        },
    )

    def validate(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        if not is_id(self.package_purchase_id):
            problems["package_purchase_id"] = "must be a positive whole number"
        if self.expiry_policy not in PACKAGE_EXPIRY_POLICIES:
            problems["expiry_policy"] = f"must be one of: {', '.join(PACKAGE_EXPIRY_POLICIES)}"
        return problems


@dataclass
class SessionCompletedSignal:
    """`session_completed`: one package session was completed (duplicates are ignored)."""

    booking_id: int = field(metadata={"help": "The completed booking (a session of the package)"})
    actor: str = field(default="bookings", metadata={"help": ACTOR_HELP, "max_length": 254})


@dataclass
class PackagePayoutResult:
    package_purchase_id: int
    outcome: str  # "completed" | "expired" | "already_settled"
    sessions_total: int
    sessions_released: int
    net_cents: int
    released_cents: int
    remaining_cents: int
    expiry_policy: str
    expiry_settlement_cents: int = 0  # what the expiry policy moved (to whom: see outcome)
    ignored_booking_ids: list[int] = field(default_factory=list)


@dataclass
class LoadPackageInput:
    package_purchase_id: int


@dataclass
class PackageState:
    package_purchase_id: int
    practitioner_id: int
    sessions_total: int
    net_cents: int
    expires_at: str  # ISO 8601 UTC
    status: str  # the purchase's status: active / completed / expired
    released_booking_ids: list[int]
    released_cents: int
    expiry_settled: bool


@dataclass
class ReleasePackageSessionInput:
    package_purchase_id: int
    booking_id: int
    workflow_id: str
    # Workflow time (ISO 8601) when the release was asked for: a session releases only if
    # it started before then (Temporal's clock, the same one the lifecycle's timers use).
    now: str = ""


@dataclass
class PackageReleaseResult:
    package_purchase_id: int
    booking_id: int
    released: bool  # False when refused (see ignored_reason) or released before
    part: int = 0
    amount_cents: int = 0
    created: bool = False
    released_cents_total: int = 0
    sessions_released: int = 0
    ignored_reason: str | None = None


@dataclass
class SettleExpiredPackageInput:
    package_purchase_id: int
    policy: str
    workflow_id: str


@dataclass
class PackageExpiryResult:
    package_purchase_id: int
    policy: str
    amount_cents: int  # the unreleased remainder the policy acted on
    outcome: str  # released_to_practitioner / retained_by_platform / referred_to_ops / nothing


resolve_field_types(__name__)
