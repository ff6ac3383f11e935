"""Whether the ids a workflow input names exist: one check for the console's start forms
and `flask trigger-workflows`, run before anything reaches Temporal."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select

from estuary.db import db


def _reference_models() -> dict[str, tuple[Any, str]]:
    from estuary.models import (
        Booking,
        Client,
        PackagePurchase,
        Payout,
        Practitioner,
        PractitionerDocument,
        Service,
        Subscription,
    )

    return {
        "practitioner": (Practitioner, "practitioner"),
        "booking": (Booking, "booking"),
        "package_purchase": (PackagePurchase, "package purchase"),
        "subscription": (Subscription, "subscription"),
        "client": (Client, "client"),
        "payout": (Payout, "payout"),
        "document": (PractitionerDocument, "document"),
        "service": (Service, "service"),
    }


def missing_references(instance: Any) -> dict[str, str]:
    """Field messages for id fields that name no row (`practitioner_id`, `booking_ids`...)."""
    models = _reference_models()
    problems: dict[str, str] = {}
    for f in dataclasses.fields(instance):
        stem = None
        if f.name.endswith("_ids"):
            stem = f.name[:-4]
        elif f.name.endswith("_id"):
            stem = f.name[:-3]
        if stem not in models:
            continue
        value = getattr(instance, f.name)
        ids = value if isinstance(value, list | tuple) else [value]
        ids = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
        if not ids:
            continue
        model, noun = models[stem]
        found = set(db.session.scalars(select(model.id).where(model.id.in_(set(ids)))))
        unknown = [i for i in ids if i not in found]
        if unknown:
            shown = ", ".join(str(i) for i in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            problems[f.name] = f"no {noun} with id {shown}"
    return problems
