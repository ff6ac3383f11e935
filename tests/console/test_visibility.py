"""Visibility filters: only validated values reach a query, and hostile input (quotes,
backslashes, `--`, `#`, `/* */`) is refused with a field error and no Temporal call, or
matched literally without changing the query's meaning."""

from __future__ import annotations

from datetime import datetime

import pytest

from dashboard import visibility
from dashboard.visibility import RunFilters, build_query, parse_filters, quote
from tests.conftest import gateway_for, unique_prefix
from tests.console.read_support import (
    counting_gateway_for,
    eventually,
    get,
    login,
    start_read_test,
)
from tests.console.read_workflows import ReadTestInput, read_test_worker

HOSTILE = [
    "x' OR '1'='1",
    "x\\' OR 1=1",
    'x" OR "1"="1',
    "x'' OR ''='",
    "1 -- comment",
    "1' --",
    "1 # comment",
    "1 /* c */",
    "/*",
    "*/",
    "a b",
    "a\nb",
    "a\x00b",
    "a\\b",
    "’ OR ‘1’=‘1",  # typographic quotes  # noqa: RUF001
    "x" * 129,
    "ExecutionStatus='Running'",
    "a)OR(b",
]


@pytest.mark.parametrize("field", ["entity_id", "entity_type"])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_identifiers_are_field_errors(field, value):
    filters, errors = parse_filters({field: value})
    assert field in errors
    assert getattr(filters, field) == ""  # the bad value is not kept


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_search_text_never_reaches_a_query(value):
    """Search text is either not understood (a message saying how to search) or read as
    a name, which only the app database sees; no query ever carries it."""
    filters, errors = parse_filters({"q": value})
    if "q" in errors:
        assert "Search by what you know" in errors["q"] or "longer than" in errors["q"]
        assert filters.search is None
        return
    assert filters.search is not None and filters.search.name
    assert not filters.search.has_terms
    with pytest.raises(visibility.UnsafeValue):
        build_query(filters)


@pytest.mark.parametrize(
    "field,value",
    [
        ("domain", "payments' OR '1'='1"),
        ("domain", "nosuchdomain"),
        ("status", "Running' OR 1=1 --"),
        ("status", "running"),
        ("workflow_type", "X' OR WorkflowType != '"),
        ("page_size", "1000000"),
        ("page_size", "25 OR 1=1"),
        ("sort", "StartTime DESC, 1"),
        ("started_after", "2026-01-01T00:00' OR '1'='1"),
        ("started_after", "yesterday"),
        ("started_before", "2026-01-01 /* x */"),
        ("closed_after", "2026-13-45T99:99"),
    ],
)
def test_enums_and_times_refuse_anything_else(field, value):
    _filters, errors = parse_filters({field: value})
    assert field in errors


def test_times_are_parsed_and_reformatted_in_utc():
    filters, errors = parse_filters(
        {"started_after": "2026-11-27T10:30+02:00", "started_before": "2026-11-28T00:00"}
    )
    assert not errors
    query = build_query(filters)
    assert "StartTime >= '2026-11-27T08:30:00Z'" in query
    assert "StartTime < '2026-11-28T00:00:00Z'" in query


def test_started_before_must_follow_started_after():
    _f, errors = parse_filters(
        {"started_after": "2026-11-28T00:00", "started_before": "2026-11-27T00:00"}
    )
    assert "started_before" in errors


def test_every_filter_builds_one_quoted_clause():
    filters, errors = parse_filters(
        {
            "domain": "payments",
            "status": "Failed",
            "entity_type": "payout",
            "entity_id": "42",
            "started_after": "2026-11-01T00:00",
        }
    )
    assert not errors
    assert build_query(filters, scope="TaskQueue STARTS_WITH 'p-'") == (
        "(TaskQueue STARTS_WITH 'p-') AND EstuaryDomain = 'payments' AND "
        "ExecutionStatus = 'Failed' AND EntityType = 'payout' AND EntityId = '42' AND "
        "StartTime >= '2026-11-01T00:00:00Z'"
    )
    assert build_query(filters, include_status=False).count("ExecutionStatus") == 0
    assert build_query(filters, order=True).endswith("ORDER BY StartTime DESC")


def test_business_key_search_matches_entities_and_workflow_ids():
    filters, errors = parse_filters({"q": "booking:17"})
    assert not errors
    assert build_query(filters) == "((EntityType = 'booking' AND EntityId = '17'))"
    filters, errors = parse_filters({"q": "payments-payout-3"})
    assert not errors
    assert build_query(filters) == (
        "(WorkflowId IN ('payments-payout-3') OR WorkflowId STARTS_WITH 'payments-payout-3')"
    )
    filters, errors = parse_filters({"q": "#14"})
    assert not errors and build_query(filters) == "(EntityId = '14')"


def test_quote_refuses_unvalidated_text():
    for value in HOSTILE:
        with pytest.raises(visibility.UnsafeValue):
            quote(value)
    with pytest.raises(visibility.UnsafeValue):
        visibility.format_time(datetime(2026, 1, 1))  # naive
    assert quote("a--b") == "'a--b'"


def test_page_token_round_trip_and_tampering():
    token = b"\x00\xffopaque"
    assert visibility.decode_page_token(visibility.encode_page_token(token)) == token
    for bad in ["'; DROP", "a" * 5000, "abc$"]:
        with pytest.raises(ValueError):
            visibility.decode_page_token(bad)


def test_filters_round_trip_through_the_url():
    filters, _ = parse_filters(
        {"q": "42", "status": "Running", "page_size": "50", "sort": "oldest"}
    )
    again, errors = parse_filters(filters.as_params())
    assert not errors and again == filters
    assert RunFilters().as_params() == {}
    assert filters.as_params(status="") == {"q": "42", "page_size": "50", "sort": "oldest"}


# --- the page: no Temporal call with a bad value; literal matches on a real server ------


def test_runs_page_refuses_bad_filters_without_calling_temporal(app, local_env):
    gw = counting_gateway_for(app, local_env, unique_prefix())
    client = login(app)
    for field, value in [("entity_id", "1 -- x"), ("status", "Nope")]:
        response = client.get("/runs", query_string={field: value})
        assert response.status_code == 400
        html = response.get_data(as_text=True)
        assert 'data-testid="filter-errors"' in html
        assert f'data-testid="error-{field}"' in html
    # A search that is not understood is answered on the page, saying how to write one.
    response = client.get("/runs", query_string={"q": "x' OR '1'='1"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="error-q"' in html and "booking 14, practitioner 6" in html
    assert 'data-testid="search-help"' in html
    bad_token = client.get("/runs", query_string={"page": "not a token!"})
    assert bad_token.status_code == 400
    assert gw.calls == 0


@pytest.mark.live
async def test_literal_matching_never_changes_the_query(app, local_env):
    prefix = unique_prefix()
    gateway_for(app, local_env, prefix)
    client = login(app)
    async with read_test_worker(local_env.client, prefix):
        ids = {}
        for entity in ("k--1", "k", "k.1:x", "k1"):
            handle = await start_read_test(
                local_env.client, prefix, ReadTestInput(steps=0, timer_seconds=0), entity_id=entity
            )
            ids[entity] = handle.id
            await handle.result()

    def rows(entity_id: str) -> int:
        html = client.get("/runs", query_string={"entity_id": entity_id}).get_data(as_text=True)
        return html.count('data-testid="run-row"')

    await eventually(lambda: rows("k") == 1 and rows("k--1") == 1)
    assert rows("k.1:x") == 1
    assert rows("k1") == 1
    assert rows("k-") == 0  # no prefix matching, no comment swallowing the rest
    assert rows("--") == 0
    response = await get(client, "/runs?entity_id=k--1")
    html = response.get_data(as_text=True)
    assert ids["k--1"] in html and ids["k"] not in html
