"""Every state-changing `flask` command is audited, by one mechanism: `audit_commands`
wraps each command's callback (the composition root calls it once every package has
registered its commands). `cli_actor` is who runs it; `note_target` / `note_temporal_call`
let a command name what it acted on.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
from flask.cli import with_appcontext

from estuary.db import db
from estuary.services import audit


def cli_actor() -> str:
    """Who runs this command: `user@host` (the requester of what it starts, the actor of
    what it sends, and the actor of its audit event)."""
    return audit.cli_actor()


# --- every state-changing command is audited -------------------------------------------
#
# One mechanism: `audit_commands` wraps the callback of every command below app.cli that
# is not read-only, so a new command is audited without remembering to. Each invocation
# writes one event like a console action: actor user@host, role and client "cli", the
# command's arguments as parameters (redacted and bounded by the audit writer), the
# workflow it reached as target, outcome success / invalid (refused before anything was
# sent) / error (Temporal or something else failed).

# Commands that change nothing (run paths as typed after `flask`).
READ_ONLY_COMMANDS = frozenset(
    {
        "list-workflows",
        "start-worker",
        "start-all-workers",
        "ledger check",
        "audit verify",
        "schedules list",
        "trigger-booking-workflows progress",
        "trigger-practitioner-workflows progress",
    }
)
# Groups owned by extensions (flask-migrate's `db`): their commands are not ours.
FOREIGN_GROUPS = frozenset({"db"})


@dataclass
class _CommandTrail:
    targets: list[str] = dataclasses.field(default_factory=list)
    sent: bool = False


_trail: contextvars.ContextVar[_CommandTrail | None] = contextvars.ContextVar(
    "cli_trail", default=None
)


def note_target(target: str, *, sent: bool = False) -> None:
    """Name what the running command acts on (the audit event's target); `sent` marks
    that something left for Temporal, so a later failure is an "error", not "invalid"."""
    trail = _trail.get()
    if trail is not None:
        trail.sent = trail.sent or sent
        if target not in trail.targets:
            trail.targets.append(target)


def note_temporal_call(target: str) -> None:
    """Called just before a command sends something to Temporal."""
    note_target(target, sent=True)


def _audited(path: str, callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    @with_appcontext
    def run(*args: Any, **kwargs: Any) -> Any:
        trail = _CommandTrail()
        token = _trail.set(trail)
        params = {"command": path, **{k: _param(v) for k, v in kwargs.items()}}
        reason = str(kwargs.get("reason") or "")

        def write(outcome: str, detail: str = "") -> None:
            if outcome != "success":
                db.session.rollback()  # a failed command's half-done work is not kept
            # on success the event commits together with anything the command left open
            audit.record(
                action=f"cli.{path.replace(' ', '.')}"[:80],
                target=", ".join(trail.targets)[:300] or f"command:{path}",
                outcome=outcome,
                params=params,
                reason=reason,
                detail=detail,
            )

        try:
            result = callback(*args, **kwargs)
        except click.ClickException as exc:
            write("error" if trail.sent else "invalid", exc.format_message())
            raise
        except (KeyboardInterrupt, SystemExit) as exc:
            code = getattr(exc, "code", 1)
            if code not in (0, None):
                write("error", f"stopped ({type(exc).__name__} {code})")
            else:
                write("success")
            raise
        except Exception as exc:
            write("error", f"{type(exc).__name__}: {exc}")
            raise
        else:
            write("success")
            return result
        finally:
            _trail.reset(token)

    run.__estuary_audited__ = True  # type: ignore[attr-defined]
    return run


def _param(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [str(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def audit_commands(group: click.Group, prefix: str = "") -> None:
    """Wrap every state-changing command under `group` (once: commands are module-level
    objects shared by every app the process creates)."""
    for name, command in group.commands.items():
        path = f"{prefix} {name}".strip()
        if path in READ_ONLY_COMMANDS or path in FOREIGN_GROUPS:
            continue
        if isinstance(command, click.Group):
            audit_commands(command, path)
            continue
        callback = command.callback
        if callback is None or getattr(callback, "__estuary_audited__", False):
            continue
        command.callback = _audited(path, callback)
