"""`/notifications`: the notification outbox (what the local email/SMS adapter wrote),
filtered by channel, template and entity. Shared helpers: `dashboard.domain_pages`."""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import Blueprint, request
from sqlalchemy import select

from dashboard.domain_pages import list_page, list_params, paged
from dashboard.permissions import require
from estuary.db import db
from estuary.models import Notification
from estuary.services.notifications import CHANNELS

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@dataclass(frozen=True)
class OutboxRow:
    notification: Notification
    payload: str


@bp.get("")
@require("view")
def index():
    p = list_params(
        request.args,
        {
            "channel": CHANNELS,
            "template": "template",
            "entity_type": "template",
            "entity_id": "id",
        },
    )
    rows: list[Notification] = []
    more = False
    if not p.errors:
        query = select(Notification).order_by(
            Notification.created_at.desc(), Notification.id.desc()
        )
        for name in ("channel", "template", "entity_type", "entity_id"):
            if p.get(name) is not None:
                query = query.where(getattr(Notification, name) == p.get(name))
        rows, more = paged(query, p.page)
    outbox = []
    for n in rows:
        try:
            payload = json.dumps(json.loads(n.payload_json or "{}"), indent=2, sort_keys=True)
        except ValueError:
            payload = n.payload_json or ""
        outbox.append(OutboxRow(n, payload))
    templates = list(
        db.session.scalars(select(Notification.template).distinct().order_by(Notification.template))
    )
    return list_page(
        "domains/notifications.html",
        p,
        outbox,
        more,
        channels=CHANNELS,
        templates=templates,
    )
