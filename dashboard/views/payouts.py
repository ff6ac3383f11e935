"""`/payouts`: the payout list (status, practitioner) with approvals counted, and each
payout's page (approvals, transfers, ops flags, its run). Shared helpers:
`dashboard.domain_pages`."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import select

from dashboard.domain_pages import (
    counts_by,
    flags,
    get_or_404,
    list_page,
    list_params,
    names,
    paged,
    rows_where,
    workflow_runs,
)
from dashboard.permissions import require
from estuary.db import db
from estuary.models import PAYOUT_STATUSES, Payout, PayoutApproval, Practitioner, Transfer

bp = Blueprint("payouts", __name__, url_prefix="/payouts")


@bp.get("")
@require("view")
def index():
    p = list_params(request.args, {"status": PAYOUT_STATUSES, "practitioner_id": "id"})
    rows: list[Payout] = []
    more = False
    if not p.errors:
        query = select(Payout).order_by(Payout.created_at.desc(), Payout.id.desc())
        if p.get("status"):
            query = query.where(Payout.status == p.get("status"))
        if p.get("practitioner_id"):
            query = query.where(Payout.practitioner_id == p.get("practitioner_id"))
        rows, more = paged(query, p.page)
    ids = [r.id for r in rows]
    approvals = counts_by(
        PayoutApproval.payout_id,
        PayoutApproval.id,
        PayoutApproval.payout_id.in_(ids),
        PayoutApproval.decision == "approve",
    )
    return list_page(
        "domains/payouts.html",
        p,
        rows,
        more,
        approvals=approvals,
        statuses=PAYOUT_STATUSES,
        practitioner_names=names(Practitioner, {r.practitioner_id for r in rows}),
    )


@bp.get("/<int:payout_id>")
@require("view")
def detail(payout_id: int):
    payout = get_or_404(Payout, payout_id, "payout")
    approvals = rows_where(
        PayoutApproval,
        PayoutApproval.payout_id == payout.id,
        order_by=PayoutApproval.created_at,
    )
    transfers = rows_where(Transfer, Transfer.payout_id == payout.id, order_by=Transfer.created_at)
    return render_template(
        "domains/payout.html",
        payout=payout,
        practitioner=db.session.get(Practitioner, payout.practitioner_id),
        approvals=approvals,
        transfers=transfers,
        flags=flags("payout", payout.id),
        runs=workflow_runs([payout.workflow_id]),
    )
