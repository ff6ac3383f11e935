"""`/bookings`: the booking list (status, practitioner, client, needing attention,
upcoming) and each booking's page (reminders sent, feedback, package, rescheduling,
ops flags, recent runs). Shared helpers: `dashboard.domain_pages`."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import Select, or_, select

from dashboard.domain_pages import (
    counts_by,
    entity_runs,
    flags,
    get_or_404,
    list_page,
    list_params,
    names,
    paged,
    rows_where,
)
from dashboard.permissions import require
from estuary.db import db
from estuary.models import (
    BOOKING_STATUSES,
    Booking,
    Client,
    Feedback,
    Notification,
    OpsFlag,
    PackagePurchase,
    Practitioner,
    Service,
)
from estuary.models.base import utcnow

bp = Blueprint("bookings", __name__, url_prefix="/bookings")


def _unresolved_booking_ids() -> Select:
    return select(OpsFlag.entity_id).where(
        OpsFlag.entity_type == "booking",
        OpsFlag.kind == "unresolved_session",
        OpsFlag.resolved_at.is_(None),
    )


@bp.get("")
@require("view")
def index():
    p = list_params(
        request.args,
        {
            "status": BOOKING_STATUSES,
            "practitioner_id": "id",
            "client_id": "id",
            "attention": "flag",
            "upcoming": "flag",
        },
    )
    rows: list[Booking] = []
    more = False
    if not p.errors:
        query = select(Booking)
        if p.get("status"):
            query = query.where(Booking.status == p.get("status"))
        if p.get("practitioner_id"):
            query = query.where(Booking.practitioner_id == p.get("practitioner_id"))
        if p.get("client_id"):
            query = query.where(Booking.client_id == p.get("client_id"))
        if p.get("attention"):
            query = query.where(
                or_(Booking.needs_attention.is_(True), Booking.id.in_(_unresolved_booking_ids()))
            )
        if p.get("upcoming"):
            query = query.where(Booking.start_at >= utcnow(), Booking.status == "confirmed")
            query = query.order_by(Booking.start_at, Booking.id)
        else:
            query = query.order_by(Booking.start_at.desc(), Booking.id.desc())
        rows, more = paged(query, p.page)
    ids = [b.id for b in rows]
    sent = counts_by(
        Notification.entity_id,
        Notification.id,
        Notification.entity_type == "booking",
        Notification.entity_id.in_(ids),
    )
    return list_page(
        "domains/bookings.html",
        p,
        rows,
        more,
        sent=sent,
        statuses=BOOKING_STATUSES,
        practitioner_names=names(Practitioner, {b.practitioner_id for b in rows}),
        client_names=names(Client, {b.client_id for b in rows}),
    )


@bp.get("/<int:booking_id>")
@require("view")
def detail(booking_id: int):
    booking = get_or_404(Booking, booking_id, "booking")
    notifications = rows_where(
        Notification,
        Notification.entity_type == "booking",
        Notification.entity_id == booking.id,
        order_by=Notification.created_at,
    )
    feedback = db.session.scalar(select(Feedback).where(Feedback.booking_id == booking.id))
    purchase = (
        db.session.get(PackagePurchase, booking.package_purchase_id)
        if booking.package_purchase_id
        else None
    )
    moved_to = db.session.scalar(select(Booking).where(Booking.rescheduled_from_id == booking.id))
    return render_template(
        "domains/booking.html",
        booking=booking,
        practitioner=db.session.get(Practitioner, booking.practitioner_id),
        client=db.session.get(Client, booking.client_id),
        service=db.session.get(Service, booking.service_id),
        purchase=purchase,
        moved_to=moved_to,
        notifications=notifications,
        reminders=[n for n in notifications if "reminder" in n.template],
        feedback=feedback,
        flags=flags("booking", booking.id),
        runs=entity_runs("booking", booking.id),
    )
