"""Demo data for `make run` / `flask seed-demo`: a small marketplace with money in it."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select

from estuary.db import db
from estuary.models import (
    Booking,
    Client,
    Package,
    PackagePurchase,
    Practitioner,
    PractitionerDocument,
    Service,
    StaffUser,
    Subscription,
    TrainingModule,
)
from estuary.models.base import utcnow
from estuary.services import ledger

DEMO_PRACTITIONERS = [
    # name, status, tier, available balance in cents
    # (`make run` then starts workflows for them: workers/temporal/demo_runs.py)
    ("Maya Okafor", "active", "premium", 184_250),
    ("Tomas Lindqvist", "active", "pro", 62_000),
    ("Aiko Tanaka", "active", "basic", 9_500),
    ("Rafael Duarte", "active", "pro", 725_000),
    ("Ines Moreau", "onboarding", "basic", 0),
    ("Kwame Mensah", "pending", "basic", 0),
]
ONBOARDING_MODULES = [
    ("safety-101", "Client safety and boundaries"),
    ("privacy-101", "Privacy and records"),
    ("platform-101", "Using the Estuary platform"),
]
CERT_MODULES = [
    ("trauma-1", "Trauma-informed practice I", "trauma-informed"),
    ("trauma-2", "Trauma-informed practice II", "trauma-informed"),
]
# The demo practitioners `make run` starts workflows for (workers/temporal/demo_runs.py).
MAYA, AIKO, RAFAEL, INES = "Maya Okafor", "Aiko Tanaka", "Rafael Duarte", "Ines Moreau"
# Sessions of Maya's package that already happened (their parts get released).
PACKAGE_SESSIONS_DONE = 2
DEMO_STAFF = [
    ("operator@estuary.local", "Olu Operator", "operator"),
    ("approver@estuary.local", "Ada Approver", "approver"),
    ("approver2@estuary.local", "Bea Approver", "approver"),
    ("viewer@estuary.local", "Vic Viewer", "viewer"),
]


def seed_demo(admin_email: str = "admin@estuary.local") -> dict[str, str] | None:
    """Create demo data once; return {email: password} for the staff created, or None.

    Long on purpose: a script of demo rows read top to bottom; splitting it would scatter
    the story."""
    if db.session.scalar(select(StaffUser.id).limit(1)) is not None:
        return None
    now = utcnow().replace(microsecond=0)
    passwords: dict[str, str] = {}
    for email, name, role in [(admin_email, "Admin", "admin"), *DEMO_STAFF]:
        password = secrets.token_urlsafe(12)
        user = StaffUser(email=email, name=name, role=role)
        user.set_password(password)
        db.session.add(user)
        passwords[email] = password

    for code, title in ONBOARDING_MODULES:
        db.session.add(TrainingModule(code=code, title=title, certification="onboarding"))
    for code, title, cert in CERT_MODULES:
        db.session.add(TrainingModule(code=code, title=title, certification=cert))

    clients = [
        Client(name=n, email=f"{n.split()[0].lower()}@example.com")
        for n in ("Sam Rivera", "Priya Nair", "Leo Park", "Zoe Adams")
    ]
    db.session.add_all(clients)

    practitioners = []
    for i, (name, status, tier, balance) in enumerate(DEMO_PRACTITIONERS, start=1):
        p = Practitioner(
            name=name,
            email=f"{name.split()[0].lower()}@practitioners.example.com",
            status=status,
            tier=tier,
            profile_complete=status == "active",
            accepts_bookings=status == "active",
            # Aiko gives her payout details only after her first payout failed for
            # want of them (the demo's failed run to retry).
            payout_destination=(
                f"acct_demo_{i:04d}" if status == "active" and name != AIKO else None
            ),
            activated_at=now - timedelta(days=90) if status == "active" else None,
        )
        db.session.add(p)
        practitioners.append((p, balance))
    db.session.flush()

    for p, balance in practitioners:
        service = Service(
            practitioner_id=p.id, name="Therapeutic massage", duration_minutes=60, price_cents=9_000
        )
        db.session.add(service)
        db.session.flush()
        if p.status == "active":
            db.session.add(
                Subscription(
                    practitioner_id=p.id,
                    tier=p.tier,
                    price_cents={"basic": 2_900, "pro": 5_900, "premium": 9_900}[p.tier],
                    current_period_start=now - timedelta(days=20),
                    current_period_end=now + timedelta(days=10),
                )
            )
            db.session.add(
                PractitionerDocument(
                    practitioner_id=p.id,
                    kind="licence",
                    status="approved",
                    expires_on=(now + timedelta(days=200)).date(),
                )
            )
        if p.status == "onboarding":
            db.session.add(PractitionerDocument(practitioner_id=p.id, kind="licence"))
        if balance:
            # Past earnings: client money came in and was released to the practitioner.
            ledger.post(
                f"demo:earnings:{p.id}",
                "earning",
                [
                    ledger.Leg(ledger.EXTERNAL_CLIENT_PAYMENTS, -balance),
                    ledger.Leg(ledger.available_account(p.id), balance),
                ],
                description="Demo: earnings before the console existed",
            )
        if p.status != "active":
            continue
        package = Package(
            service_id=service.id, name="Five-session pack", session_count=5, price_cents=40_000
        )
        db.session.add(package)
        db.session.flush()
        client = clients[p.id % len(clients)]
        purchase = PackagePurchase(
            package_id=package.id,
            client_id=client.id,
            practitioner_id=p.id,
            sessions_total=5,
            total_cents=40_000,
            net_cents=34_000,
            purchased_at=now - timedelta(days=3),
            expires_at=now + timedelta(days=177),
        )
        db.session.add(purchase)
        db.session.flush()
        ledger.post(
            f"demo:package:{purchase.id}",
            "client_payment",
            [
                ledger.Leg(ledger.EXTERNAL_CLIENT_PAYMENTS, -40_000),
                ledger.Leg(ledger.PLATFORM_CLEARING, 40_000),
            ],
            description=f"Demo: package purchase {purchase.id}",
        )
        for days_ahead, hour in ((3, 10), (1, 15), (0, 0)):
            start = now + timedelta(days=days_ahead, hours=hour + 2)
            db.session.add(
                Booking(
                    client_id=client.id,
                    practitioner_id=p.id,
                    service_id=service.id,
                    package_purchase_id=purchase.id if days_ahead == 3 else None,
                    start_at=start,
                    end_at=start + timedelta(minutes=60),
                    price_cents=9_000,
                )
            )
        if p.name == MAYA:
            for days_ago in range(PACKAGE_SESSIONS_DONE, 0, -1):
                done = now - timedelta(days=days_ago, hours=3)
                db.session.add(
                    Booking(
                        client_id=client.id,
                        practitioner_id=p.id,
                        service_id=service.id,
                        package_purchase_id=purchase.id,
                        start_at=done,
                        end_at=done + timedelta(minutes=60),
                        price_cents=9_000,
                        status="completed",
                        completed_at=done + timedelta(minutes=60),
                    )
                )
        past = now - timedelta(days=2)
        db.session.add(
            Booking(
                client_id=client.id,
                practitioner_id=p.id,
                service_id=service.id,
                start_at=past,
                end_at=past + timedelta(minutes=60),
                price_cents=9_000,
                status="completed",
                completed_at=past + timedelta(minutes=60),
            )
        )
    db.session.flush()
    # Single sessions are paid up front: the client's money waits in clearing until the
    # session completes and the commission step releases the practitioner's share.
    for booking in db.session.scalars(
        select(Booking).where(Booking.package_purchase_id.is_(None)).order_by(Booking.id)
    ):
        ledger.post(
            f"demo:booking-payment:{booking.id}",
            "client_payment",
            [
                ledger.Leg(ledger.EXTERNAL_CLIENT_PAYMENTS, -booking.price_cents),
                ledger.Leg(ledger.PLATFORM_CLEARING, booking.price_cents),
            ],
            description=f"Demo: payment for booking {booking.id}",
        )
    db.session.commit()
    return passwords
