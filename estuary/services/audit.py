"""The audit trail: one append-only event per staff or command-line action, chained and
signed, with its head anchored outside the database.

Each event has a dense sequence number (`seq`) and an HMAC-SHA-256 (`hash`) under
`AUDIT_KEY` over its content, its `seq` and the previous event's MAC. Without the key an
edit cannot be re-signed; a deleted row leaves a gap in `seq`; `prev_hash` is unique, so
two writers can never both extend the same event (the loser retries on the new head).
Deleting the newest rows leaves no gap and someone holding the key could re-sign a
rewritten chain, so the head (seq, MAC) is also appended, signed, to an anchor file
(`AUDIT_ANCHOR_PATH`) by the maintenance schedule every few minutes and by every
`flask audit verify`; `verify()` compares the log with every anchored head.

Key rotation: rows carry the fingerprint (`key_id`) of the key that signed them. Put the
new key in `AUDIT_KEY` and the old one in `AUDIT_PREVIOUS_KEYS`; older rows keep
verifying under the old key. Rows written before the keyed chain existed have an empty
`key_id` and an unkeyed SHA-256; they are accepted only before the first keyed row.

`record()` writes in the caller's session and commits: a view's domain change and its
audit event commit together; on a failure path the view rolls back first, then records.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import hmac
import json
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app, g, has_request_context, request
from flask_login import current_user
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from estuary.db import db
from estuary.models import AuditEvent
from estuary.models.base import utcnow

GENESIS = "0" * 64
# "pending": sent, but not confirmed (no worker answered in time); the real outcome is a
# later event naming the same update id.
OUTCOMES = ("success", "denied", "error", "invalid", "pending")
# A parameter is kept as "[redacted]" when its name contains one of these ...
SECRET_WORDS = re.compile(
    r"password|passwd|passphrase|secret|token|credential|authori[sz]ation|csrf|apikey",
    re.IGNORECASE,
)
# ... or has one of these as a word of it (`api_key`, `otp_code`, `privateKey`), so
# lookalikes such as `keys` or `passed` stay readable.
SECRET_PARTS = frozenset({"key", "otp", "totp", "pin", "pass", "pwd", "pw"})
MAX_PARAM_LENGTH = 200  # characters kept of one value
MAX_PARAM_NAME_LENGTH = 64
MAX_PARAMS = 40  # fields kept of one event
CLI_CLIENT = "cli"
CLI_ROLE = "cli"
WORKER_CLIENT = "worker"


def cli_actor() -> str:
    """Who runs a command: the OS user and host (`user@host`)."""
    try:
        user = getpass.getuser()
    except Exception:  # no user database entry in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname() or 'unknown-host'}"


def is_secret_name(name: str) -> bool:
    if SECRET_WORDS.search(name):
        return True
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    return any(part in SECRET_PARTS for part in re.split(r"[^a-z0-9]+", words))


def redact(params: dict[str, Any] | None) -> dict[str, Any]:
    """Drop secrets and bound the size of what is kept forever: at most MAX_PARAMS
    fields, names and values clipped to stated lengths."""
    out: dict[str, Any] = {}
    items = list((params or {}).items())
    for key, value in items[:MAX_PARAMS]:
        name = str(key)[:MAX_PARAM_NAME_LENGTH]
        if is_secret_name(name):
            out[name] = "[redacted]"
        elif isinstance(value, str) and len(value) > MAX_PARAM_LENGTH:
            out[name] = value[:MAX_PARAM_LENGTH] + "…"
        elif isinstance(value, list | tuple) and len(json.dumps(value, default=str)) > 1000:
            out[name] = f"[{len(value)} items]"
        else:
            out[name] = value
    if len(items) > MAX_PARAMS:
        out["_omitted_fields"] = len(items) - MAX_PARAMS
    return out


# --- keys and MACs ------------------------------------------------------------------------


def key_id(key: str) -> str:
    """A short fingerprint that names a key without revealing it."""
    return hashlib.sha256(b"estuary-audit-key-id:" + key.encode()).hexdigest()[:12]


def _keys() -> dict[str, str]:
    """Every key that may have signed a row: the current one and the retired ones."""
    config = current_app.config
    current = config.get("AUDIT_KEY")
    if not current:
        raise RuntimeError("AUDIT_KEY is not set")
    keys = [current, *config.get("AUDIT_PREVIOUS_KEYS", [])]
    return {key_id(k): k for k in keys}


def _current_key() -> tuple[str, str]:
    key = current_app.config["AUDIT_KEY"]
    if not key:
        raise RuntimeError("AUDIT_KEY is not set")
    return key_id(key), key


def _body(event: AuditEvent, *, keyed: bool) -> bytes:
    fields: dict[str, Any] = {
        "occurred_at": event.occurred_at.isoformat(),
        "actor": event.actor,
        "role": event.role,
        "action": event.action,
        "target": event.target,
        "params": event.params_json,
        "reason": event.reason,
        "outcome": event.outcome,
        "detail": event.detail,
        "client_addr": event.client_addr,
        "request_id": event.request_id,
        "prev_hash": event.prev_hash,
    }
    if keyed:
        fields["seq"] = event.seq
        fields["key_id"] = event.key_id
    return json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()


def _digest(event: AuditEvent) -> str:
    """The unkeyed SHA-256 of rows written before the keyed chain (anyone can compute it,
    which is why new rows are signed with `_mac`)."""
    return hashlib.sha256(_body(event, keyed=False)).hexdigest()


def _mac(event: AuditEvent, key: str) -> str:
    return hmac.new(key.encode(), _body(event, keyed=True), hashlib.sha256).hexdigest()


# --- writing --------------------------------------------------------------------------------


def record(
    *,
    action: str,
    target: str = "",
    outcome: str = "success",
    params: dict[str, Any] | None = None,
    reason: str = "",
    detail: str = "",
    actor: str | None = None,
    role: str | None = None,
) -> AuditEvent:
    """Append one event (and commit the session).

    In a request the actor is the signed-in user and the client their address; in a
    worker's activity (`g.audit_origin`) the client is `worker`; otherwise (a `flask`
    command) the actor is `user@host` and the client `cli`.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    in_request = has_request_context()
    if actor is None:
        if in_request:
            authenticated = current_user.is_authenticated
            actor = current_user.email if authenticated else "anonymous"
            role = current_user.role if authenticated else "-"
        elif g.get("audit_origin") == WORKER_CLIENT:
            actor, role = WORKER_CLIENT, WORKER_CLIENT
        else:
            actor, role = cli_actor(), CLI_ROLE
    if in_request:
        client_addr = request.remote_addr or ""
    else:
        client_addr = WORKER_CLIENT if g.get("audit_origin") == WORKER_CLIENT else CLI_CLIENT
    request_id = getattr(g, "request_id", "") if in_request else ""
    params_json = json.dumps(redact(params), sort_keys=True, default=str)
    signing_id, key = _current_key()
    for _ in range(10):
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SELECT pg_advisory_xact_lock(727274)"))
        head = db.session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        event = AuditEvent(
            seq=(head.seq + 1) if head else 1,
            key_id=signing_id,
            occurred_at=utcnow(),
            actor=actor[:254],
            role=(role or "-")[:20],
            action=action[:80],
            target=target[:300],
            params_json=params_json,
            reason=reason[:1000],
            outcome=outcome,
            detail=detail[:1000],
            client_addr=client_addr[:64],
            request_id=request_id[:64],
            prev_hash=head.hash if head else GENESIS,
        )
        event.hash = _mac(event, key)
        try:
            with db.session.begin_nested():
                db.session.add(event)
        except IntegrityError:
            continue  # another writer extended the chain first: retry on the new head
        db.session.commit()
        if in_request:
            g.audit_recorded = True
        return event
    raise RuntimeError("could not append to the audit chain after 10 tries")


# --- the anchor -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    line: int
    at: str
    seq: int
    mac: str
    sig: str


class AnchorError(Exception):
    """The anchor file is not what this log's keys wrote: replaced, edited or cut."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"anchor file line {line}: {problem}")


def anchor_path() -> Path | None:
    raw = current_app.config.get("AUDIT_ANCHOR_PATH")
    return Path(raw) if raw else None


def _anchor_sig(entry: dict[str, Any], key: str) -> str:
    body = json.dumps({k: v for k, v in entry.items() if k != "sig"}, sort_keys=True)
    return hmac.new(key.encode(), b"anchor:" + body.encode(), hashlib.sha256).hexdigest()


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchored head in the file, checked: each line signed by a known key and
    chained to the line before it. Raises AnchorError naming the first bad line."""
    if not path.exists():
        return []
    keys = _keys()
    anchors: list[Anchor] = []
    prev = GENESIS
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                entry = json.loads(line)
                seq, mac, sig = int(entry["seq"]), str(entry["mac"]), str(entry["sig"])
                signer = keys.get(str(entry["key_id"]))
                linked = entry["prev"] == prev and int(entry["n"]) == number
            except (ValueError, KeyError, TypeError):
                raise AnchorError(number, "not an anchor entry (edited or replaced)") from None
            if signer is None or not hmac.compare_digest(sig, _anchor_sig(entry, signer)):
                raise AnchorError(number, "not signed by a known audit key (replaced or edited)")
            if not linked:
                raise AnchorError(number, "does not follow the line before it (lines removed)")
            anchors.append(Anchor(number, str(entry.get("at", "")), seq, mac, sig))
            prev = sig
    return anchors


def anchor_head() -> Anchor | None:
    """Append the chain head (seq, MAC) to the anchor file, signed; None when there is no
    anchor file configured or no event yet. Skips the write when the head is already the
    last line. Appends under an exclusive lock, so the schedule and a verify never mix."""
    path = anchor_path()
    if path is None:
        return None
    head = db.session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    if head is None:
        return None
    signing_id, key = _current_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        anchors = read_anchors(path)
        last = anchors[-1] if anchors else None
        if last is not None and last.seq == head.seq and last.mac == head.hash:
            return last
        entry: dict[str, Any] = {
            "n": len(anchors) + 1,
            "at": utcnow().isoformat(),
            "seq": head.seq,
            "mac": head.hash,
            "key_id": signing_id,
            "prev": last.sig if last is not None else GENESIS,
        }
        entry["sig"] = _anchor_sig(entry, key)
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return Anchor(entry["n"], entry["at"], head.seq, head.hash, entry["sig"])


# --- verifying ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    events: int
    problem: str = ""
    event_id: int | None = None
    # The first sequence number that does not fit, and what kind of break it is:
    # edited, deleted, inserted, truncated, rewritten, unknown_key, anchor.
    seq: int | None = None
    kind: str = ""
    anchored: Anchor | None = None
    warnings: tuple[str, ...] = ()


def _events() -> Iterator[AuditEvent]:
    yield from db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).yield_per(500)


def verify(*, anchor: bool = True) -> ChainCheck:
    """Check every event in sequence order against its MAC, its predecessor and the
    anchored heads; on success anchor the current head (when `anchor`)."""
    keys = _keys()
    warnings: list[str] = []
    path = anchor_path()
    try:
        anchors = read_anchors(path) if path else []
    except AnchorError as exc:
        return ChainCheck(False, 0, str(exc), kind="anchor")
    if path is None:
        warnings.append("AUDIT_ANCHOR_PATH is not set: deleting the newest events is not detected")
    anchored = {a.seq: a for a in anchors}
    prev, expected, count, keyed_seen = GENESIS, 1, 0, False

    def broken(event: AuditEvent, seq: int, kind: str, problem: str) -> ChainCheck:
        return ChainCheck(False, count, problem, event.id, seq, kind, None, tuple(warnings))

    for event in _events():
        count += 1
        if event.seq != expected:
            if event.seq < expected:
                return broken(event, event.seq, "inserted", f"sequence number {event.seq} repeats")
            missing = f"{expected}" if event.seq == expected + 1 else f"{expected}..{event.seq - 1}"
            return broken(
                event, expected, "deleted", f"events {missing} are missing: removed from the log"
            )
        if event.prev_hash != prev:
            return broken(
                event,
                event.seq,
                "inserted",
                "does not link to the event before it: a row was inserted or replaced",
            )
        if event.key_id:
            keyed_seen = True
            key = keys.get(event.key_id)
            if key is None:
                return broken(
                    event,
                    event.seq,
                    "unknown_key",
                    f"signed with key {event.key_id}, which is neither AUDIT_KEY nor in "
                    "AUDIT_PREVIOUS_KEYS",
                )
            valid = hmac.compare_digest(_mac(event, key), event.hash)
        else:
            # unkeyed rows only exist from before the keyed chain, never after a keyed one
            valid = not keyed_seen and _digest(event) == event.hash
        if not valid:
            return broken(
                event, event.seq, "edited", "content does not match its MAC: the row was edited"
            )
        mark = anchored.get(event.seq)
        if mark is not None and not hmac.compare_digest(mark.mac, event.hash):
            return broken(
                event,
                event.seq,
                "rewritten",
                f"differs from the head anchored at {mark.at}: the chain up to here was "
                "rewritten and re-signed",
            )
        prev, expected = event.hash, expected + 1
    last_seq = expected - 1
    if anchors and max(anchored) > last_seq:
        top = anchored[max(anchored)]
        return ChainCheck(
            False,
            count,
            f"the log ends at sequence number {last_seq}, but sequence number {top.seq} "
            f"was anchored at {top.at}: the newest events were deleted",
            None,
            last_seq + 1,
            "truncated",
            None,
            tuple(warnings),
        )
    if count and not keyed_seen:
        warnings.append("every event predates the keyed chain (unkeyed digests only)")
    head = anchor_head() if anchor else None
    return ChainCheck(True, count, anchored=head, warnings=tuple(warnings))
