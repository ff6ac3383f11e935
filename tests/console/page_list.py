"""Every GET page of the console, read from the Flask url_map, so a page added later is
checked by the tests that walk them (axe-core, no horizontal scroll, Temporal down)
without anyone listing it.

A rule is either a page (filled with sample ids from seeded data) or named in
`NOT_PAGES` with the reason it is not one. A new rule with an argument no sample
provides fails `pages()` with its name, so the test that walks the pages cannot skip it
quietly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flask import Flask

# Endpoints answered with something other than a staff page.
NOT_PAGES: dict[str, str] = {
    "static": "files",
    "favicon": "an image",
    "metrics.metrics": "Prometheus text",
    "health.healthz": "a probe",
    "health.readyz": "a probe",
    "codec.encode": "the Temporal Web UI's codec (JSON)",
    "codec.decode": "the Temporal Web UI's codec (JSON)",
    "audit.export": "a CSV download",
    "runs.history_json": "a JSON download",
    "runs.live": "an htmx fragment of the runs page",
    "runs.detail_live": "an htmx fragment of the run page",
    "home.runs_chart": "an htmx fragment of the home page",
    "approvals.nav_count": "an htmx fragment: the navigation's count of waiting approvals",
    "runs.latest": "a redirect to the run's page (walked through runs.detail)",
    "auth.login": "the sign-in page (walked signed out, before any role signs in)",
}

# Query strings that make a page show more than its bare URL does (search results,
# filters), walked as pages of their own.
VARIANTS: dict[str, tuple[str, ...]] = {
    "runs.index": ("?q=practitioner+{practitioner_id}", "?status=Failed"),
    "bookings.index": ("?attention=1&upcoming=1",),
    "audit.index": ("?action=catalog.start",),
}


@dataclass(frozen=True)
class Page:
    endpoint: str
    path: str

    def __str__(self) -> str:
        return f"{self.path} ({self.endpoint})"


def get_rules(app: Flask) -> list:
    return sorted(
        (r for r in app.url_map.iter_rules() if "GET" in (r.methods or ())),
        key=lambda r: r.rule,
    )


def pages(app: Flask, samples: Iterable[Mapping[str, object]]) -> list[Page]:
    """One Page per GET rule and each distinct way the samples fill its arguments.

    `samples` are dicts of URL arguments that belong together (a workflow id with its run
    id); a rule takes every sample that has all its arguments."""
    samples = list(samples)
    found: list[Page] = []
    missing: list[str] = []
    for rule in get_rules(app):
        if rule.endpoint in NOT_PAGES:
            continue
        args = sorted(rule.arguments)
        fills: list[dict[str, object]] = []
        for sample in samples:
            fill = {a: sample[a] for a in args if a in sample}
            if len(fill) == len(args) and fill not in fills:
                fills.append(fill)
        if not fills:
            missing.append(f"{rule.rule} ({rule.endpoint}) needs {args}")
            continue
        for fill in fills:
            path = rule.build(fill, append_unknown=False)[1]
            found.append(Page(rule.endpoint, path))
            for query in VARIANTS.get(rule.endpoint, ()):
                merged = {k: v for s in samples for k, v in s.items()}
                found.append(Page(rule.endpoint, path + query.format(**merged)))
    if missing:
        raise AssertionError(
            "GET rules with no sample to fill them (add a sample, or name the endpoint in "
            "NOT_PAGES with why it is no page): " + "; ".join(missing)
        )
    return found
