"""The runs search box: what staff type (`booking 14`, `practitioner 6`, `payout 4`, `#14`,
a name, an email, a workflow id or its beginning) turned into visibility terms.

Two steps. `parse_search` reads the text alone (no database, no Temporal) and says what
it understood, or raises `SearchNotUnderstood` with a message that shows how to write a
search. `resolve_search` then asks the app database for what the text names but Temporal
cannot know: the runs of a practitioner include those of their subscriptions, background
checks and packages (each run carries only its own EntityType + EntityId); `payout 4` is
the payout's workflow id; a name or an email is the practitioners and clients it matches.

Nothing a person types reaches a visibility query as text: only entity types we name,
ids that are digits (or identifiers matching `visibility.ID_RE`), and workflow ids or
prefixes that match it too. Names and emails only ever go to the database, as bound
parameters, and come back as ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sqlalchemy import func, select

from estuary.db import db
from estuary.models import (
    BackgroundCheck,
    Booking,
    Client,
    PackagePurchase,
    Payout,
    Practitioner,
    Subscription,
)

ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_TEXT = 200
# Bounds on what one search may expand to, so a common name cannot build a huge query.
MAX_PEOPLE = 10
MAX_TERMS = 60

HOW_TO = (
    "Search by what you know: booking 14, practitioner 6, payout 4, subscription 3, "
    "package 2, #14 (any record with that number), a name (Maya Okafor), an email, or a "
    "workflow id or its beginning (bookings-lifecycle-14)."
)

# What staff call each kind of record -> the EntityType its runs carry.
KINDS = {
    "booking": "booking",
    "bookings": "booking",
    "practitioner": "practitioner",
    "practitioners": "practitioner",
    "payout": "payout",
    "payouts": "payout",
    "subscription": "subscription",
    "subscriptions": "subscription",
    "package": "package_purchase",
    "packages": "package_purchase",
    "purchase": "package_purchase",
    "package purchase": "package_purchase",
    "package_purchase": "package_purchase",
    "background check": "background_check",
    "background_check": "background_check",
    "check": "background_check",
}
KIND_WORDS = {
    "booking": "booking",
    "practitioner": "practitioner",
    "payout": "payout",
    "subscription": "subscription",
    "package_purchase": "package",
    "background_check": "background check",
}
_KIND_RE = re.compile(
    r"^(?P<kind>"
    + "|".join(sorted((re.escape(k) for k in KINDS), key=len, reverse=True))
    + r")(?:\s*[:#]\s*|\s+)#?\s*(?P<ident>\S+)$",
    re.IGNORECASE,
)
_NUMBER_RE = re.compile(r"^#?\s*(?P<n>[0-9]{1,12})$")
_EMAIL_RE = re.compile(r"^[^@\s'\"\\]{1,64}@[A-Za-z0-9.-]{1,190}$")
# A person's name: letters first, then letters, spaces, apostrophes, dots and hyphens.
_APOSTROPHES = "'\u2019"
_NAME_RE = re.compile(rf"^[^\W\d_][^\W\d_ .{_APOSTROPHES}-]*(?:[ .{_APOSTROPHES}-]+[^\W\d_]+)*\.?$")


class SearchNotUnderstood(ValueError):
    """The search text is none of the forms the box understands; the message says how."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RunSearch:
    """What the search box asked for, as values that are each safe in a visibility query.

    A run matches when it matches any of the terms: one of `entities` (EntityType and
    EntityId), `any_entity_id` as the id of any entity, one of `workflow_ids`, or a
    workflow id starting with `workflow_id_prefix`. `name` and `email` (and `payout_id`)
    are for `resolve_search` to turn into terms; they never reach Temporal.
    """

    text: str
    entities: tuple[tuple[str, str], ...] = ()
    any_entity_id: str = ""
    workflow_ids: tuple[str, ...] = ()
    workflow_id_prefix: str = ""
    payout_id: int | None = None
    name: str = ""
    email: str = ""
    # What was understood, in staff words (shown above the results).
    summary: str = ""
    resolved: bool = False

    @property
    def has_terms(self) -> bool:
        return bool(
            self.entities or self.any_entity_id or self.workflow_ids or self.workflow_id_prefix
        )


def parse_search(raw: str) -> RunSearch:
    """Understand the search text, or raise SearchNotUnderstood saying how to write one."""
    text = " ".join(str(raw or "").split())
    if not text:
        raise SearchNotUnderstood("Type something to search for. " + HOW_TO)
    if len(text) > MAX_TEXT:
        raise SearchNotUnderstood(f"That is longer than {MAX_TEXT} characters. " + HOW_TO)

    number = _NUMBER_RE.fullmatch(text)
    if number:
        return _number_search(text, str(int(number["n"])))
    kind_match = _KIND_RE.fullmatch(text)
    if kind_match:
        return _kind_search(text, KINDS[kind_match["kind"].lower()], kind_match["ident"])
    if "@" in text:
        if not _EMAIL_RE.fullmatch(text):
            raise SearchNotUnderstood(f"{text!r} is not an email address. " + HOW_TO)
        return RunSearch(text=text, email=text.lower(), summary=f"the person with email {text}")
    return _word_search(text)


def _number_search(text: str, n: str) -> RunSearch:
    """`#14` or `14`: every record with that number."""
    return RunSearch(
        text=text,
        any_entity_id=n,
        payout_id=int(n),
        summary=f"every record numbered {n} (booking, practitioner, payout, ...)",
    )


def _kind_search(text: str, kind: str, ident: str) -> RunSearch:
    """`booking 14`, `payout 4`, `background check bc-1`: one record of a named kind."""
    ident = ident.lstrip("#")
    word = KIND_WORDS[kind]
    if kind == "background_check":
        if not ID_RE.fullmatch(ident):
            raise SearchNotUnderstood(f"{ident!r} is not a background check reference. " + HOW_TO)
        return RunSearch(
            text=text,
            entities=(("background_check", ident),),
            summary=f"background check {ident}",
        )
    if not ident.isdigit() or len(ident) > 12 or int(ident) < 1:
        raise SearchNotUnderstood(
            f"A {word} is found by its number, e.g. {word} 14; {ident!r} is not one."
        )
    n = str(int(ident))
    if kind == "payout":
        return RunSearch(text=text, payout_id=int(n), summary=f"payout {n}")
    return RunSearch(text=text, entities=((kind, n),), summary=f"{word} {n}")


def _word_search(text: str) -> RunSearch:
    """A name, a workflow id or its beginning, or (a single word) either."""
    looks_like_name = bool(_NAME_RE.fullmatch(text))
    looks_like_id = bool(ID_RE.fullmatch(text))
    if looks_like_id and not looks_like_name:
        return RunSearch(
            text=text,
            workflow_ids=(text,),
            workflow_id_prefix=text,
            summary=f"workflow ids starting with {text}",
        )
    if looks_like_name:
        # A single word may also be the start of a workflow id (`bookings`, `payments`).
        return RunSearch(
            text=text,
            name=text,
            workflow_id_prefix=text if looks_like_id else "",
            summary=f"people named like {text!r}",
        )
    raise SearchNotUnderstood(f"{text!r} was not understood. " + HOW_TO)


# --- the database's part ------------------------------------------------------------------


def _practitioner_entities(practitioner_ids: list[int]) -> list[tuple[str, str]]:
    """A practitioner's own runs and those of what belongs to them."""
    if not practitioner_ids:
        return []
    terms = [("practitioner", str(p)) for p in practitioner_ids]
    for sub_id in db.session.scalars(
        select(Subscription.id).where(Subscription.practitioner_id.in_(practitioner_ids))
    ):
        terms.append(("subscription", str(sub_id)))
    for reference in db.session.scalars(
        select(BackgroundCheck.reference).where(
            BackgroundCheck.practitioner_id.in_(practitioner_ids)
        )
    ):
        if ID_RE.fullmatch(reference):
            terms.append(("background_check", reference))
    for purchase_id in db.session.scalars(
        select(PackagePurchase.id).where(PackagePurchase.practitioner_id.in_(practitioner_ids))
    ):
        terms.append(("package_purchase", str(purchase_id)))
    return terms


def _client_entities(client_ids: list[int]) -> list[tuple[str, str]]:
    """A client's bookings and packages (clients have no runs of their own)."""
    if not client_ids:
        return []
    terms = [
        ("booking", str(b))
        for b in db.session.scalars(
            select(Booking.id)
            .where(Booking.client_id.in_(client_ids))
            .order_by(Booking.id.desc())
            .limit(MAX_TERMS)
        )
    ]
    terms += [
        ("package_purchase", str(p))
        for p in db.session.scalars(
            select(PackagePurchase.id).where(PackagePurchase.client_id.in_(client_ids))
        )
    ]
    return terms


def _names(rows: list[tuple[int, str]], word: str) -> str:
    return ", ".join(f"{word} {i} · {name}" for i, name in rows)


def resolve_search(search: RunSearch) -> tuple[RunSearch, str | None]:
    """Add the terms only the app database knows; return the search and, when it names
    nothing at all, the message to show instead of asking Temporal."""
    if search.resolved:
        return search, None
    entities = list(search.entities)
    workflow_ids = list(search.workflow_ids)
    summary = search.summary
    problem: str | None = None

    practitioner_ids = [int(i) for t, i in entities if t == "practitioner"]
    if practitioner_ids:
        rows: list[tuple[int, str]] = list(
            db.session.execute(
                select(Practitioner.id, Practitioner.name).where(
                    Practitioner.id.in_(practitioner_ids)
                )
            )
        )
        if rows:
            summary = _names(rows, "practitioner") + ", with their subscriptions, "
            summary += "background checks and packages"
        entities += _practitioner_entities(practitioner_ids)

    if search.payout_id is not None:
        found = db.session.scalar(select(Payout.workflow_id).where(Payout.id == search.payout_id))
        if found and ID_RE.fullmatch(found):
            workflow_ids.append(found)
        elif not search.any_entity_id:
            problem = f"There is no payout {search.payout_id}."

    if search.name or search.email:
        people_entities, people_summary, people_problem = _people_matching(search)
        entities += people_entities
        summary = people_summary or summary
        problem = people_problem or problem

    unique_entities = tuple(dict.fromkeys(entities))[:MAX_TERMS]
    unique_ids = tuple(dict.fromkeys(w for w in workflow_ids if ID_RE.fullmatch(w)))[:MAX_TERMS]
    resolved = replace(
        search,
        entities=unique_entities,
        workflow_ids=unique_ids,
        summary=summary,
        resolved=True,
    )
    if problem is None and not resolved.has_terms:
        problem = f"{search.text!r} names no record. " + HOW_TO
    return resolved, problem


def _people_matching(search: RunSearch) -> tuple[list[tuple[str, str]], str | None, str | None]:
    """The practitioners and clients a name or an email names: their entities, the words
    that say whom the search found, or the message when it found nobody."""
    if search.email:
        p_where = func.lower(Practitioner.email) == search.email
        c_where = func.lower(Client.email) == search.email
    else:
        pattern = "%" + search.name.lower().replace("%", "").replace("_", "") + "%"
        p_where = func.lower(Practitioner.name).like(pattern)
        c_where = func.lower(Client.name).like(pattern)
    people = list(
        db.session.execute(
            select(Practitioner.id, Practitioner.name)
            .where(p_where)
            .order_by(Practitioner.id)
            .limit(MAX_PEOPLE)
        )
    )
    clients = list(
        db.session.execute(
            select(Client.id, Client.name).where(c_where).order_by(Client.id).limit(MAX_PEOPLE)
        )
    )
    entities = _practitioner_entities([i for i, _ in people])
    entities += _client_entities([i for i, _ in clients])
    found_words = [w for w in (_names(people, "practitioner"), _names(clients, "client")) if w]
    if found_words:
        return entities, "; ".join(found_words), None
    if not search.workflow_id_prefix:
        problem = (
            f"No practitioner or client has {'the email' if search.email else 'a name like'} "
            f"{search.text!r}. " + HOW_TO
        )
        return entities, None, problem
    return entities, f"workflow ids starting with {search.text} (no person has that name)", None
