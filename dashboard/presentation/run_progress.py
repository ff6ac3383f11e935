"""A run's progress and result as the run page draws them, per workflow type, never as
JSON: onboarding as a checklist of its six steps, a package payout and a batch payout as
progress bars, a dry run as a table of whom it would pay, a booking lifecycle as the
timeline of its reminders and follow-ups, any other type as labelled fields
(`dashboard.presentation.run_values`). How a closed run ended in business words is
`dashboard.presentation.run_outcomes`; `run_page` gathers title, outcome, progress, result
and input for the run page, and `register_template_globals` gives the templates what lists
need (`run_labels`, `payout_title`, `run_id_title`, `value_fields`).

`VIEWS` is the per-type table; `runs/_progress.html` renders what it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dashboard import times
from dashboard.presentation.run_outcomes import TONE_CLASSES, Outcome, outcome, run_labels
from dashboard.presentation.run_titles import (
    Names,
    id_title,
    id_titles,
    module_titles,
    onboarding_step_text,
    payout_row_title,
    run_title,
    run_titles,
    step_words,
    type_words,
)
from dashboard.presentation.run_values import (
    Field,
    count_and_cents,
    currency,
    entity_link,
    fields_of,
    humanise_key,
    naming,
    parse_json_text,
    words,
)
from estuary.contracts.money import format_money
from estuary.contracts.practitioners import ONBOARDING_STEPS

# Progress keys every view shows in its own way (the head of the card).
_COMMON = ("stage", "step", "steps_done", "waiting_for", "waiting_until", "status")


@dataclass
class Segment:
    label: str
    count: int
    tone: str  # ok / run / warn / bad / idle
    amount: str = ""  # formatted money, when the part has one

    @property
    def fill(self) -> str:
        return TONE_FILLS.get(self.tone, TONE_FILLS["idle"])

    def percent(self, total: int) -> float:
        return round(100 * self.count / total, 1) if total else 0.0


@dataclass
class ChecklistItem:
    label: str
    state: str  # done / current / waiting / stalled / failed
    state_label: str
    detail: str = ""
    due: Any = None  # a time, for the `dt` filter
    done_at: Any = None


@dataclass
class TimelineItem:
    label: str
    state: str
    at: Any = None  # when due / when it happened
    sent_at: Any = None
    detail: str = ""


@dataclass
class RunView:
    """What a progress or result card shows."""

    kind: str  # onboarding / bars / lifecycle / batch_lines / fields
    stage: str = ""
    waiting_for: str = ""
    waiting_until: Any = None
    steps_done: list[str] = field(default_factory=list)
    checklist: list[ChecklistItem] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    total: int = 0
    total_label: str = ""
    amounts: list[Field] = field(default_factory=list)
    events: list[TimelineItem] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    lines_note: str = ""
    lines_total: str = ""
    sections: list[tuple[str, list[Field]]] = field(default_factory=list)
    fields: list[Field] = field(default_factory=list)

    def bar_parts(self) -> list[tuple[Segment, float, float, str]]:
        """(segment, x, width, fill) of each non-empty segment, in percent of the total."""
        out = []
        x = 0.0
        for s in self.segments:
            width = s.percent(self.total)
            if width:
                out.append((s, x, width, s.fill))
                x += width
        return out


# The bar's colours (SVG fill attributes: the console's CSP allows no inline style).
TONE_FILLS = {
    "ok": "#1a7f37",
    "run": "#0969da",
    "warn": "#9a6700",
    "bad": "#cf222e",
    "idle": "#c4cad3",
}


def _head(view: RunView, progress: Mapping[str, Any]) -> RunView:
    view.stage = words(progress.get("stage") or progress.get("step") or "")
    view.waiting_for = words(progress.get("waiting_for") or "")
    view.waiting_until = progress.get("waiting_until")
    done = progress.get("steps_done")
    if isinstance(done, list):
        view.steps_done = [words(s) for s in done]
    elif isinstance(done, str):
        view.steps_done = [done]
    return view


# --- onboarding ---------------------------------------------------------------------------

_STEP_STATES = {
    "done": ("done", "done"),
    "waiting": ("current", "in progress"),
    "stalled": ("stalled", "stalled: past its deadline"),
    "rejected": ("failed", "rejected"),
    "pending": ("waiting", "not started"),
}


_TRAINING_WAIT = "training_module_completed signal for "


def _training_named(training: Mapping[str, Any], titles: Mapping[str, str]) -> dict[str, Any]:
    """The onboarding's training section with each module code as its catalogue title."""

    def title(code: Any) -> Any:
        return titles.get(code, code) if isinstance(code, str) else code

    out = dict(training)
    for key in ("assigned", "completed"):
        if isinstance(out.get(key), list):
            out[key] = [title(c) for c in out[key]]
    if isinstance(out.get("completions"), list):
        out["completions"] = [
            {**c, "module": title(c.get("module"))} if isinstance(c, Mapping) else c
            for c in out["completions"]
        ]
    return out


def _training_codes(training: Any) -> list[Any]:
    if not isinstance(training, Mapping):
        return []
    codes = [*(training.get("assigned") or []), *(training.get("completed") or [])]
    codes += [c.get("module") for c in training.get("completions") or [] if isinstance(c, Mapping)]
    return codes


def _waiting_words(waiting_for: Any, titles: Mapping[str, str]) -> str:
    """What a step waits for in words; the modules still to complete by their titles."""
    text = str(waiting_for)
    if text.startswith(_TRAINING_WAIT):
        missing = [m.strip() for m in text[len(_TRAINING_WAIT) :].split(",") if m.strip()]
        return "modules completed: " + ", ".join(titles.get(m, m) for m in missing)
    return words(text)


def _onboarding(progress: Mapping[str, Any], names: Names) -> RunView:
    view = _head(RunView("onboarding"), progress)
    current = progress.get("current_step")
    if current in ONBOARDING_STEPS:
        view.stage = onboarding_step_text(current)
    steps = progress.get("steps") if isinstance(progress.get("steps"), Mapping) else {}
    training = progress.get("training")
    titles = module_titles(_training_codes(training))
    if progress.get("waiting_for"):
        view.waiting_for = _waiting_words(progress["waiting_for"], titles)
    for name in ONBOARDING_STEPS:
        step = steps.get(name) if isinstance(steps.get(name), Mapping) else {}
        state, label = _STEP_STATES.get(str(step.get("state")), ("waiting", "not started"))
        if name == current and state == "waiting":
            state, label = "current", "in progress"
        detail = ""
        if step.get("waiting_for") and state in ("current", "stalled"):
            who = step.get("waiting_on")
            detail = f"waiting for {_waiting_words(step['waiting_for'], titles)}" + (
                f" ({who})" if who else ""
            )
        reminders = step.get("reminders_sent") or []
        if reminders:
            detail += ("; " if detail else "") + f"{len(reminders)} reminder(s) sent"
        extensions = step.get("extensions") or []
        if extensions:
            detail += ("; " if detail else "") + f"extended {len(extensions)} time(s)"
        view.checklist.append(
            ChecklistItem(
                f"{ONBOARDING_STEPS.index(name) + 1}. {step_words(name).capitalize()}",
                state,
                label,
                detail,
                due=step.get("deadline") if state != "done" else None,
                done_at=step.get("completed_at"),
            )
        )
    for key in ("documents", "background_check", "training", "subscription", "rejection"):
        value = progress.get(key)
        if key == "training" and isinstance(value, Mapping):
            value = _training_named(value, titles)
        if isinstance(value, Mapping) and value:
            view.sections.append((humanise_key(key), fields_of(value)))
    if progress.get("services"):
        view.sections.append(("Services", fields_of({"services": progress["services"]})))
    if isinstance(progress.get("settings"), Mapping):
        settings = dict(progress["settings"])
        if isinstance(settings.get("reminder_days"), list):
            settings["reminder_days"] = ", ".join(str(d) for d in settings["reminder_days"])
        view.sections.append(("Settings", fields_of(settings)))
    view.fields = fields_of(
        progress,
        skip=(
            *_COMMON,
            "current_step",
            "steps",
            "documents",
            "background_check",
            "training",
            "subscription",
            "services",
            "rejection",
            "settings",
        ),
    )
    return view


# --- payouts ------------------------------------------------------------------------------


def _money(cents: Any) -> str:
    return format_money(cents, currency()) if isinstance(cents, int) else ""


def _package(progress: Mapping[str, Any], names: Names) -> RunView:
    view = _head(RunView("bars"), progress)
    done = progress.get("sessions_done") or 0
    total = progress.get("sessions_total") or 0
    if isinstance(done, int) and isinstance(total, int):
        view.total = max(total, done)
        view.total_label = f"{done} of {total} session parts released"
        view.segments = [
            Segment("released", done, "ok", _money(progress.get("released_cents"))),
            Segment(
                "to release", max(total - done, 0), "idle", _money(progress.get("remaining_cents"))
            ),
        ]
    view.fields = fields_of(progress, skip=(*_COMMON, "sessions_done", "sessions_total"))
    return view


_BATCH_PARTS = (
    ("paid", "paid", "ok"),
    ("in_flight", "in flight", "run"),
    ("waiting_for_approval", "waiting for approval", "warn"),
    ("failed", "failed", "bad"),
    ("skipped", "skipped", "idle"),
    ("would_pay", "would be paid", "ok"),
)


def _batch_segments(view: RunView, values: Mapping[str, Any]) -> None:
    always = ("would_pay",) if values.get("dry_run") else ("paid", "failed")
    for key, label, tone in _BATCH_PARTS:
        count, cents = count_and_cents(values, key)
        if count or key in always:
            view.segments.append(Segment(label, count, tone, _money(cents)))
    view.total = sum(s.count for s in view.segments)
    view.total_label = f"{view.total} practitioner{'' if view.total == 1 else 's'} handled so far"


def _batch(progress: Mapping[str, Any], names: Names) -> RunView:
    view = _head(RunView("bars"), progress)
    _batch_segments(view, progress)
    if progress.get("dry_run"):
        view.total_label = f"Dry run: {view.total} practitioners looked at so far; no money moves"
    view.fields = fields_of(
        progress,
        skip=(*_COMMON, *(k for k, _l, _t in _BATCH_PARTS), "dry_run", "cursor", "run"),
    )
    return view


_LINE_OUTCOMES = {
    "would_pay": "would be paid",
    "paid": "paid",
    "waiting_for_approval": "waiting for approval",
    "skipped": "skipped",
    "failed": "failed",
}


def batch_result(result: Mapping[str, Any], names: Names) -> RunView:
    """A batch payout's (or dry run's) result: totals as bars, then one row per
    practitioner with name, amount, outcome and the reason for a skip."""
    view = RunView("batch_lines")
    _batch_segments(view, result)
    dry = bool(result.get("dry_run"))
    cur = currency()
    paying = "would_pay" if dry else "paid"
    count, cents = count_and_cents(result, paying)
    view.lines_total = (
        f"{'Would be paid' if dry else 'Paid'}: {count} · {format_money(cents or 0, currency())}"
    )
    if dry:
        view.total_label = (
            f"Dry run: would pay {count} practitioner{'' if count == 1 else 's'} "
            f"{format_money(cents or 0, cur)}; nothing was paid"
        )
    else:
        view.total_label = f"{view.total} practitioner{'' if view.total == 1 else 's'} handled"
    lines = result.get("lines") if isinstance(result.get("lines"), list) else []
    names.add_practitioners(
        line.get("practitioner_id") for line in lines if isinstance(line, Mapping)
    )
    for line in lines:
        if not isinstance(line, Mapping):
            continue
        pid = line.get("practitioner_id")
        view.lines.append(
            {
                "name": names.practitioner_name(pid),
                "href": entity_link("practitioner_id", pid),
                "amount": format_money(line.get("amount_cents"), cur)
                if isinstance(line.get("amount_cents"), int)
                else "-",
                "outcome": _LINE_OUTCOMES.get(str(line.get("outcome")), words(line.get("outcome"))),
                "tone": str(line.get("outcome") or ""),
                "detail": words(line.get("detail") or ""),
                "workflow_id": line.get("workflow_id") or "",
            }
        )
    if result.get("lines_truncated"):
        view.lines_note = (
            f"Only the first {len(view.lines)} practitioners are listed; the totals count all."
        )
    runs = result.get("runs")
    view.fields = (
        [Field("Runs", "text", f"{runs} (continued as new {runs - 1} time(s))")]
        if isinstance(runs, int) and runs > 1
        else []
    )
    return view


# --- bookings -----------------------------------------------------------------------------

_REMINDER_STATES = {
    "sent": "done",
    "pending": "waiting",
    "scheduled": "waiting",
    "skipped": "stalled",
}


def _lifecycle(progress: Mapping[str, Any], names: Names) -> RunView:
    view = _head(RunView("lifecycle"), progress)
    reminders = progress.get("reminders") if isinstance(progress.get("reminders"), Mapping) else {}
    for kind, r in reminders.items():
        if not isinstance(r, Mapping):
            continue
        state = str(r.get("state") or "")
        label = step_words(kind)
        label = label.capitalize() if "reminder" in label else f"{label} reminder"
        view.events.append(
            TimelineItem(
                label,
                _REMINDER_STATES.get(state, "waiting" if not r.get("sent_at") else "done"),
                r.get("due_at"),
                r.get("sent_at"),
                words(state) + (f": {words(r['reason'])}" if r.get("reason") else ""),
            )
        )
    seen: set[tuple[str, str]] = set()
    for sent in progress.get("sent_log") or []:
        if not isinstance(sent, Mapping) or str(sent.get("kind", "")).startswith("reminder"):
            continue
        key = (str(sent.get("kind")), str(sent.get("at")))
        if key in seen:
            continue
        seen.add(key)
        state = "already sent" if sent.get("state") == "already_sent" else ""
        view.events.append(
            TimelineItem(
                f"Sent: {step_words(sent.get('kind')) or 'notice'}",
                "done",
                sent.get("at"),
                None,
                state,
            )
        )
    for move in progress.get("moves") or []:
        if isinstance(move, Mapping):
            detail = ", ".join(
                f"{humanise_key(k).lower()} {_plain(v)}" for k, v in move.items() if k != "at"
            )
            view.events.append(TimelineItem("Moved", "done", move.get("at"), None, detail))
    nxt = progress.get("next_timer")
    if isinstance(nxt, Mapping) and nxt.get("at"):
        view.events.append(
            TimelineItem(
                f"Next: {step_words(nxt.get('kind')) or 'timer'}", "current", nxt.get("at")
            )
        )
    view.events.sort(key=lambda e: str(times.as_datetime(e.at) or ""))
    view.fields = fields_of(
        progress, skip=(*_COMMON, "reminders", "sent_log", "moves", "next_timer")
    )
    return view


def _plain(value: Any) -> str:
    if isinstance(value, str) and times.as_datetime(value) is not None and "T" in value:
        return times.format_local(value)
    return words(value)


def _fields(progress: Mapping[str, Any], names: Names) -> RunView:
    view = _head(RunView("fields"), progress)
    view.fields = fields_of(progress, skip=_COMMON)
    return view


VIEWS: dict[str, Callable[[Mapping[str, Any], Names], RunView]] = {
    "PractitionerOnboardingWorkflow": _onboarding,
    "ProgressivePackagePayoutWorkflow": _package,
    "BatchPractitionerPayoutWorkflow": _batch,
    "BookingLifecycleWorkflow": _lifecycle,
}


def progress_view(workflow_type: str, progress: Any, names: Names | None = None) -> RunView | None:
    """The progress card of a running run (None when there is no progress answer)."""
    if progress is None:
        return None
    names = names or Names()
    if not isinstance(progress, Mapping):
        return RunView("fields", fields=fields_of(progress))
    build = VIEWS.get(workflow_type, _fields)
    try:
        return build(progress, names)
    except Exception:  # an unexpected shape: labelled fields, never a broken page
        return _fields(progress, names)


def result_view(workflow_type: str, result: Any, names: Names | None = None) -> RunView | None:
    """The result card of a completed run."""
    value = parse_json_text(result)
    if value is None or value == "":
        return None
    names = names or Names()
    if workflow_type == "BatchPractitionerPayoutWorkflow" and isinstance(value, Mapping):
        try:
            return batch_result(value, names)
        except Exception:  # an unexpected shape: labelled fields below
            logging.getLogger(__name__).warning("batch result not understood", exc_info=True)
    return RunView("fields", fields=fields_of(value))


def input_fields(value: Any) -> list[Field]:
    """A run's input as labelled fields (internal continuation state left out)."""
    value = parse_json_text(value)
    if isinstance(value, Mapping):
        return fields_of(value, skip=("carried", "cursor", "resume_cursor"))
    return fields_of(value)


@dataclass
class RunPage:
    """Everything the run page says about a run in business words."""

    title: Any  # RunTitle
    outcome: Outcome | None
    progress: RunView | None
    result: RunView | None
    input: list[Field]
    entity: str = ""  # the run's entity in words ("Ines Moreau", "booking #14")


def _entity_words(run: Any, names: Names) -> str:
    if not run.entity_type or not run.entity_id:
        return ""
    if run.entity_type == "practitioner":
        return names.practitioner_name(run.entity_id)
    mark = "#" if str(run.entity_id).isdigit() else ""
    return f"{step_words(run.entity_type)} {mark}{run.entity_id}"


def run_page(run: Any, timeline: Any, progress: Any) -> RunPage:
    """The run page's title, outcome, progress, result and input for this run."""
    input_value = parse_json_text(timeline.input) if timeline is not None else None
    result_value = parse_json_text(timeline.result) if timeline is not None else None
    ids = [
        v.get("practitioner_id")
        for v in (input_value, progress, result_value)
        if isinstance(v, Mapping) and isinstance(v.get("practitioner_id"), int)
    ]
    names = Names.load([run], ids)
    title = run_title(run, names, input=input_value, progress=progress, result=result_value)
    with naming(names):
        return RunPage(
            title=title,
            outcome=outcome(run, names, result_value),
            progress=progress_view(run.workflow_type, progress, names),
            result=result_view(run.workflow_type, result_value, names)
            if run.status == "Completed"
            else None,
            input=input_fields(input_value) if timeline is not None else [],
            entity=_entity_words(run, names),
        )


def register_template_globals(app: Any) -> None:
    from dashboard.presentation import timeline_html
    from dashboard.presentation.run_rows import run_rows

    app.add_template_global(run_labels, "run_labels")
    app.add_template_global(run_rows, "run_rows")
    app.add_template_filter(type_words, "type_words")
    app.add_template_global(TONE_CLASSES, "outcome_classes")
    app.add_template_global(fields_of, "value_fields")
    app.add_template_global(payout_row_title, "payout_title")
    app.add_template_global(id_title, "run_id_title")
    app.add_template_global(run_titles, "run_titles")
    app.add_template_global(module_titles, "module_titles")
    app.add_template_global(id_titles, "run_id_titles")
    app.add_template_global(onboarding_step_text, "onboarding_step")
    timeline_html.register(app)
