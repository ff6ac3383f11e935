"""`/workflows`: the workflow catalogue (every registered workflow by domain, from the
registry) and each workflow's start form (`dashboard.start_forms`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from flask import Blueprint, render_template, request

from dashboard import forms, start_forms
from dashboard.permissions import require
from dashboard.views.workers_page import queue_statuses
from dashboard.writes import guard, registered_workflow_or_404
from estuary.contracts import catalogue

bp = Blueprint("catalog", __name__, url_prefix="/workflows")


@dataclass(frozen=True)
class HandlerInfo:
    """A signal or update the console may send, with its argument's fields."""

    kind: str  # "signal" or "update"
    name: str
    fields: list[catalogue.InputField]


def handlers(wf: catalogue.RegisteredWorkflow) -> list[HandlerInfo]:
    out: list[HandlerInfo] = []
    for kind, pairs in (("signal", wf.spec.signals), ("update", wf.spec.updates)):
        for name, arg_type in pairs:
            fields: list[catalogue.InputField] = []
            if arg_type is not None and dataclasses.is_dataclass(arg_type):
                # `actor` is filled by the console, never typed, so it is not listed.
                fields = [f for f in catalogue.input_fields(arg_type) if f.name != "actor"]
            out.append(HandlerInfo(kind, name, fields))
    return out


@bp.get("")
@require("view")
def index():
    domains = catalogue.domains()
    return render_template(
        "catalog/index.html",
        domains=domains,
        queues=queue_statuses(),
        handlers={w.name: handlers(w) for w in catalogue.all_workflows()},
    )


@bp.route("/<name>/start", methods=["GET", "POST"])
@guard("start_workflow")
def start(name: str):
    """GET: the form, prefilled from the query string. POST: check, confirm, start."""
    wf = registered_workflow_or_404(name)
    if request.method == "GET":
        prefill = forms.submitted_values(wf.spec.input_type, request.args)
        return start_forms.render_form(wf, prefill=prefill)
    return start_forms.submit(wf)
