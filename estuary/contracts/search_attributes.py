"""The custom search attributes every run carries; the console filters on them."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

ESTUARY_DOMAIN = SearchAttributeKey.for_keyword("EstuaryDomain")
ENTITY_TYPE = SearchAttributeKey.for_keyword("EntityType")
ENTITY_ID = SearchAttributeKey.for_keyword("EntityId")
TRIGGERED_BY = SearchAttributeKey.for_keyword("TriggeredBy")

ALL_KEYS = (ESTUARY_DOMAIN, ENTITY_TYPE, ENTITY_ID, TRIGGERED_BY)


def run_attributes(
    domain: str, entity_type: str, entity_id: str | int, triggered_by: str
) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(ESTUARY_DOMAIN, domain),
            SearchAttributePair(ENTITY_TYPE, entity_type),
            SearchAttributePair(ENTITY_ID, str(entity_id)),
            SearchAttributePair(TRIGGERED_BY, triggered_by),
        ]
    )


def dev_server_flags() -> list[str]:
    """`--search-attribute` flags registering every key on `temporal server start-dev`."""
    flags: list[str] = []
    for key in ALL_KEYS:
        flags += ["--search-attribute", f"{key.name}=Keyword"]
    return flags
