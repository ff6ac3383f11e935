"""The Reconciliation page: money that left, compared with what we think left.

Shows, for ops, what the payout reconciliation and the payout sweep found: a live
comparison of the provider's transfers with payouts and the `external:payouts` account
(read only: nothing is settled from a page view), the payouts waiting for the provider's
word (`reconciling`, hold kept), and the open flags the reconciliation and the sweep raised,
each with its evidence. Database only: no Temporal call, so it loads when Temporal is down.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import select

from dashboard.permissions import require
from estuary.db import db
from estuary.models import OpsFlag, Payout
from estuary.services import payout_reconciliation

bp = Blueprint("reconciliation", __name__, url_prefix="/reconciliation")

LIMIT = 200


@bp.get("/")
@require("view")
def index():
    report = payout_reconciliation.reconcile(settle=False, flag=False)
    # A page view never writes: drop anything the comparison touched in our session.
    db.session.rollback()
    in_doubt = list(
        db.session.scalars(
            select(Payout)
            .where(Payout.status.in_(("reconciling", "processing")))
            .order_by(Payout.id)
            .limit(LIMIT)
        )
    )
    flags = list(
        db.session.scalars(
            select(OpsFlag)
            .where(OpsFlag.kind.in_(payout_reconciliation.FLAG_KINDS))
            .order_by(OpsFlag.resolved_at.is_not(None), OpsFlag.raised_at.desc())
            .limit(LIMIT)
        )
    )
    return render_template(
        "reconciliation/index.html",
        report=report,
        in_doubt=in_doubt,
        flags=flags,
    )
